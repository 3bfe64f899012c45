/**
 * Who may use the control API of `virtops up`: pure decisions (no I/O) on a request's
 * method, path and headers, so every rule is table-tested (test/unit/standalone/api-guard.test.ts).
 *
 * - Unix socket (the default): the socket's mode (0600) is the authentication, as for
 *   libvirt's and Docker's sockets. A browser cannot reach it, but a request that carries an
 *   `Origin` came through something that relays browser traffic, so it is refused.
 * - TCP (`--listen HOST:PORT`): every request needs `Authorization: Bearer <token>`; `Host`
 *   must name this server (the listen address or localhost: a DNS-rebound name is refused
 *   even before the token is looked at), and `Origin`, when present, must be this server's.
 * - Either way, anything but GET/HEAD must be `POST` with `Content-Type: application/json`:
 *   browsers send a cross-origin `text/plain` POST without asking, never a JSON one (that
 *   needs a CORS preflight, which this server does not answer).
 * - The dashboard (TCP only, dashboard-server.ts): a browser trades the token once
 *   (`POST /api/v1/session`, JSON) for an HttpOnly, SameSite=Strict session cookie. A request
 *   authenticated by that cookie alone and not GET/HEAD must also carry the session's CSRF
 *   secret in `X-Virtops-CSRF` (which only a page of this origin can read and set), on top of
 *   the JSON-only and Origin rules. The login page and the static assets are public (no data);
 *   an unauthenticated browser GET of a page is sent to /login instead of a 401 body.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export type GuardListen = { kind: 'unix' } | { kind: 'tcp'; host: string; port: number };

export interface GuardPolicy {
  listen: GuardListen;
  /** Required on TCP: the bearer token every request must carry. */
  token?: string;
  /** Told to unauthenticated callers: where the token is. */
  tokenHint?: string;
  /** More names that reach this host (a wildcard listen accepts IP literals, localhost and these). */
  hostNames?: readonly string[];
  /** TCP with the dashboard: the live session of a session id (from the cookie), if any. */
  session?: (id: string) => { csrf: string } | undefined;
}

export interface GuardRequest {
  method: string;
  /** The URL path (no query): decides what is public (the login page, static assets). */
  path?: string;
  headers: {
    host?: string | undefined;
    origin?: string | undefined;
    authorization?: string | undefined;
    'content-type'?: string | undefined;
    cookie?: string | undefined;
    accept?: string | undefined;
    'x-virtops-csrf'?: string | undefined;
  };
}

/** `login`: an unauthenticated browser asked for a page; send it to /login rather than a 401 body. */
export type GuardVerdict = { ok: true; via?: 'token' | 'session' | 'public' } | { ok: false; status: 401 | 403 | 405 | 415; error: string; login?: true };

/** The dashboard's session cookie (HttpOnly, SameSite=Strict; see dashboard-server.ts). */
export const SESSION_COOKIE = 'virtops_session';
/** The header a cookie-authenticated mutation must carry, holding the session's CSRF secret. */
export const CSRF_HEADER = 'x-virtops-csrf';

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** Splits a Host header value into hostname (brackets removed) and port (80 when absent). */
export function parseHostHeader(value: string): { hostname: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  return { hostname: m[1]!.replace(/^\[|\]$/g, '').toLowerCase(), port: m[2] === undefined ? 80 : Number(m[2]) };
}

/**
 * Is `host` (a Host header) this server? On a unix socket any value is (nothing but a local
 * process with the socket's permission gets here). On TCP: the port must be ours and the name
 * the listen address or localhost; a wildcard listen also takes IP literals (DNS rebinding
 * needs a name) and `hostNames`.
 */
export function hostAllowed(host: string | undefined, listen: GuardListen, hostNames: readonly string[] = []): boolean {
  if (listen.kind === 'unix') return true;
  if (host === undefined) return false;
  const h = parseHostHeader(host);
  if (!h || h.port !== listen.port) return false;
  const own = listen.host.toLowerCase();
  if (h.hostname === own || h.hostname === 'localhost') return true;
  if (WILDCARDS.has(own)) return isIP(h.hostname) !== 0 || hostNames.some((n) => n.toLowerCase() === h.hostname);
  return false;
}

/** Absent is fine (not a browser); present, it must be `http://` + an allowed host. A unix socket has no web origin. */
export function originAllowed(origin: string | undefined, listen: GuardListen, hostNames: readonly string[] = []): boolean {
  if (origin === undefined) return true;
  if (listen.kind === 'unix') return false;
  const m = /^http:\/\/([^/]+)$/.exec(origin.trim());
  if (!m) return false; // includes "null" (sandboxed frames, file://) and https:// (we serve none)
  const host = m[1]!.includes(':') && !m[1]!.endsWith(']') ? m[1]! : `${m[1]!}:80`;
  return hostAllowed(host, listen, hostNames);
}

/** Compares through fixed-length digests, so neither the token's content nor its length leaks through timing. */
export function tokenMatches(authorization: string | undefined, token: string): boolean {
  if (!token) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  const given = createHash('sha256').update(m ? m[1]! : '').digest();
  const expected = createHash('sha256').update(token).digest();
  // Evaluate the comparison either way so a missing header takes the same path.
  return timingSafeEqual(given, expected) && m !== null;
}

/** GET/HEAD read; anything else must be a JSON POST (a CORS "simple request" can never be one). */
export function methodAllowed(method: string, contentType: string | undefined): GuardVerdict {
  if (method === 'GET' || method === 'HEAD') return { ok: true };
  if (method !== 'POST') return { ok: false, status: 405, error: `${method} is not served: reads are GET, actions are POST` };
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return { ok: false, status: 415, error: `POST needs Content-Type: application/json (got ${contentType ? `"${contentType}"` : 'none'}); the virtops CLI sends it` };
  }
  return { ok: true };
}

/** The value of cookie `name` in a Cookie header (the first one; browsers send the most specific first). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      const v = part.slice(i + 1).trim();
      return v === '' ? undefined : v;
    }
  }
  return undefined;
}

/** Equal secrets, compared through fixed-length digests (no timing leak of content or length). */
export function secretEquals(given: string | undefined, expected: string): boolean {
  const a = createHash('sha256').update(given ?? '').digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given !== undefined && expected !== '';
}

/**
 * What an unauthenticated caller may fetch: the login page and the bundled static assets
 * (no data in either), and the token-for-cookie exchange (which checks the token itself).
 */
export function isPublicPath(method: string, path: string | undefined): boolean {
  if (path === undefined) return false;
  if (method === 'GET' || method === 'HEAD') return path === '/login' || path === '/favicon.ico' || /^\/assets\/[\w.-]+$/.test(path);
  return method === 'POST' && path === '/api/v1/session';
}

/** A browser navigating to a page (not an API or asset fetch): it gets the login page, not a 401 body. */
export function wantsLoginPage(method: string, path: string | undefined, accept: string | undefined): boolean {
  return (method === 'GET' || method === 'HEAD') && !!path && !path.startsWith('/api/') && /\btext\/html\b/.test(accept ?? '');
}

/** The whole decision, in order: Host, Origin (403), token or session + CSRF (401/403), method and content type (405/415). */
export function guardRequest(req: GuardRequest, policy: GuardPolicy): GuardVerdict {
  const { listen } = policy;
  const names = policy.hostNames ?? [];
  if (!hostAllowed(req.headers.host, listen, names)) {
    const own = listen.kind === 'tcp' ? `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port} or localhost:${listen.port}` : '';
    return { ok: false, status: 403, error: `Host "${req.headers.host ?? ''}" is not this server (${own}): refused as a possible DNS-rebinding request; address the API by its listen address` };
  }
  if (!originAllowed(req.headers.origin, listen, names)) {
    return { ok: false, status: 403, error: `Origin "${req.headers.origin}" is not this server: cross-site requests are refused` };
  }
  if (listen.kind === 'tcp') {
    if (!policy.token || !tokenMatches(req.headers.authorization, policy.token)) {
      // No (valid) bearer token: a dashboard session cookie, or a public path, or nothing.
      const sid = policy.session && !req.headers.authorization ? cookieValue(req.headers.cookie, SESSION_COOKIE) : undefined;
      const session = sid !== undefined ? policy.session!(sid) : undefined;
      if (session) {
        if (req.method !== 'GET' && req.method !== 'HEAD' && !secretEquals(req.headers[CSRF_HEADER], session.csrf)) {
          return { ok: false, status: 403, error: `a ${req.method} authenticated by the session cookie needs the session's CSRF secret in the X-Virtops-CSRF header (the dashboard sends it; GET /api/v1/session returns it)` };
        }
        const m = methodAllowed(req.method, req.headers['content-type']);
        return m.ok ? { ok: true, via: 'session' } : m;
      }
      if (policy.session && isPublicPath(req.method, req.path)) {
        const m = methodAllowed(req.method, req.headers['content-type']);
        return m.ok ? { ok: true, via: 'public' } : m;
      }
      const where = policy.tokenHint ?? 'the token file in the state dir';
      return {
        ok: false,
        status: 401,
        error: `${req.headers.authorization ? 'the bearer token does not match' : sid !== undefined ? 'the dashboard session has expired or is unknown (virtops up restarted?)' : 'unauthenticated'}: send "Authorization: Bearer <token>" with the token in ${where} (virtops CLI: --state-dir, --token-file or $VIRTOPS_TOKEN; or use the unix socket)${policy.session ? '; in a browser, open the login link virtops up printed' : ''}`,
        ...(policy.session && wantsLoginPage(req.method, req.path, req.headers.accept) ? { login: true as const } : {}),
      };
    }
    const m = methodAllowed(req.method, req.headers['content-type']);
    return m.ok ? { ok: true, via: 'token' } : m;
  }
  return methodAllowed(req.method, req.headers['content-type']);
}

/**
 * Per-client token bucket for the webhook listener: `burst` requests at once, then one per
 * `refillMs`. Pure apart from the clock it is given; the map is bounded (oldest dropped).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly burst = 10, private readonly refillMs = 2_000, private readonly maxClients = 10_000) {}

  /** 0 when allowed, else milliseconds until the client may try again. */
  take(client: string, now: number): number {
    let b = this.buckets.get(client);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillMs);
      b.at = now;
      this.buckets.delete(client); // re-insert: the map stays in least-recently-seen order
    } else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) * this.refillMs);
  }
}
