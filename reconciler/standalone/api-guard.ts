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
}

export interface GuardRequest {
  method: string;
  headers: { host?: string | undefined; origin?: string | undefined; authorization?: string | undefined; 'content-type'?: string | undefined };
}

export type GuardVerdict = { ok: true } | { ok: false; status: 401 | 403 | 405 | 415; error: string };

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

/** The whole decision, in order: Host, Origin (403), token (401), method and content type (405/415). */
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
      const where = policy.tokenHint ?? 'the token file in the state dir';
      return {
        ok: false,
        status: 401,
        error: `${req.headers.authorization ? 'the bearer token does not match' : 'unauthenticated'}: send "Authorization: Bearer <token>" with the token in ${where} (virtops CLI: --state-dir, --token-file or $VIRTOPS_TOKEN; or use the unix socket)`,
      };
    }
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
