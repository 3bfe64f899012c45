/** The CLI side of the `virtops up` HTTP API (get, describe, console, start/stop/..., diff). */
/** Where `virtops up` serves its API unless --listen says otherwise (kept here so the CLI client loads nothing else). */
export const DEFAULT_LISTEN = '127.0.0.1:8686';

export const SERVER_ENV = 'VIRTOPS_SERVER';

export function defaultServer(): string {
  return process.env[SERVER_ENV] ?? `http://${DEFAULT_LISTEN}`;
}

/** Validates --server and returns its base URL. */
export function serverUrl(raw: string | undefined): string {
  const s = raw ?? defaultServer();
  let u: URL;
  try {
    u = new URL(s.includes('://') ? s : `http://${s}`);
  } catch {
    throw new Error(`--server "${s}" is not a URL: use e.g. --server http://127.0.0.1:8686 (or set ${SERVER_ENV})`);
  }
  if (u.protocol !== 'http:') throw new Error(`--server "${s}": only http:// is served by virtops up`);
  return u.origin;
}

export async function apiCall<T>(server: string, method: string, path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${server}${path}`, { method });
  } catch (err) {
    throw new Error(`cannot reach virtops up at ${server} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}): is it running? pass --server or set ${SERVER_ENV}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  if (!res.ok) {
    const msg = typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : text;
    throw new Error(msg || `${method} ${path}: HTTP ${res.status}`);
  }
  return body as T;
}

/** `name` or `namespace/name` → [namespace, name]. */
export function parseVmName(arg: string, namespace: string | undefined): [string, string] {
  const parts = arg.split('/');
  if (parts.length > 2 || parts.some((p) => !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p))) {
    throw new Error(`VM name "${arg}" is not NAME or NAMESPACE/NAME (lower-case DNS names)`);
  }
  return parts.length === 2 ? [parts[0]!, parts[1]!] : [namespace ?? 'default', parts[0]!];
}
