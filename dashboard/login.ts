/**
 * The login page: trades the API token for a session cookie (POST /api/v1/session, JSON).
 * The login link carries the token in the fragment (`/login#token=…`), which the browser
 * never sends to the server; it is removed from the address bar and history at once.
 */
import './styles.css';

async function signIn(token: string): Promise<void> {
  const err = document.getElementById('login-error')!;
  err.textContent = '';
  const res = await fetch('/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' });
  if (res.ok) {
    location.replace('/');
    return;
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  err.textContent = body.error ?? `sign-in failed (HTTP ${res.status})`;
}

const fromLink = /(?:^#|&)token=([^&]+)/.exec(location.hash)?.[1];
if (fromLink) {
  history.replaceState(null, '', '/login');
  void signIn(decodeURIComponent(fromLink));
}
document.getElementById('login-form')!.addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn((document.getElementById('token') as HTMLInputElement).value.trim());
});
