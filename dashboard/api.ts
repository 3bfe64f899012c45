/** Calls to the control API from the page: cookie-authenticated, with the CSRF header on POSTs. */

let csrf: string | undefined;

async function csrfSecret(): Promise<string> {
  if (csrf) return csrf;
  const s = await get<{ csrf: string | null }>('/api/v1/session');
  csrf = s.csrf ?? '';
  return csrf;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function check<T>(res: Response): Promise<T> {
  if (res.status === 401) {
    location.assign('/login');
    throw new ApiError(401, 'signed out');
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `HTTP ${res.status}`);
  return body;
}

export async function get<T>(path: string): Promise<T> {
  return check<T>(await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } }));
}

export async function post<T>(path: string, body: unknown = {}): Promise<T> {
  const secret = await csrfSecret();
  return check<T>(await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', 'x-virtops-csrf': secret }, body: JSON.stringify(body) }));
}

export const vmPath = (ns: string, name: string): string => `${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
