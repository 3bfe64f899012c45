/**
 * Push webhooks: a pure verifier for GitHub, GitLab and a generic HMAC scheme. A valid push
 * only *triggers* a re-check of the branch: the source still reads the ref from git itself,
 * so a forged or replayed payload can at worst cause one extra `git ls-remote`.
 *
 * - github:  `X-GitHub-Event: push` (or `ping`), `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
 * - gitlab:  `X-Gitlab-Event: Push Hook`, `X-Gitlab-Token: <secret>`
 * - generic: `X-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`; optional JSON body `{ "ref", "after" | "sha" }`
 *
 * All secret comparisons are constant-time (crypto.timingSafeEqual on equal-length digests).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type WebhookProvider = 'github' | 'gitlab' | 'generic';

export type HeaderValue = string | string[] | undefined;

export interface WebhookRequest {
  headers: Record<string, HeaderValue>;
  rawBody: Buffer | string;
}

export interface WebhookOptions {
  secret: string;
  /** Default: detected from the headers (GitHub, then GitLab, else generic). */
  provider?: WebhookProvider;
  /** Only pushes to this branch trigger; others are acknowledged and ignored. */
  branch?: string;
  /** Bodies above this are refused with 413. Default 1 MiB. */
  maxBodyBytes?: number;
}

export interface WebhookResult {
  /** True only for a verified push (to the watched branch): the caller should re-check. */
  accepted: boolean;
  /** HTTP status to answer with. */
  status: 200 | 202 | 400 | 401 | 413;
  reason: string;
  provider?: WebhookProvider;
  ref?: string;
  sha?: string;
}

export const DEFAULT_MAX_WEBHOOK_BODY = 1024 * 1024;

export function handleWebhook(req: WebhookRequest, opts: WebhookOptions): WebhookResult {
  if (!opts.secret) {
    // Refuse to run unauthenticated rather than accept anything.
    return { accepted: false, status: 401, reason: 'no webhook secret configured: set one (e.g. --webhook-secret-file)' };
  }
  const body = typeof req.rawBody === 'string' ? Buffer.from(req.rawBody) : req.rawBody;
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_WEBHOOK_BODY;
  if (body.length > max) return { accepted: false, status: 413, reason: `body of ${body.length} bytes exceeds the limit of ${max}` };

  const provider = opts.provider ?? detectProvider(req.headers);
  const verdict = verifySignature(provider, req.headers, body, opts.secret);
  if (verdict) return { accepted: false, status: 401, reason: verdict, provider };

  const event = eventName(provider, req.headers);
  if (provider === 'github' && event === 'ping') return { accepted: false, status: 200, reason: 'pong', provider };
  if (provider === 'github' && event !== 'push') return { accepted: false, status: 202, reason: `ignored GitHub event "${event ?? '(none)'}": only push triggers`, provider };
  if (provider === 'gitlab' && event !== 'Push Hook') return { accepted: false, status: 202, reason: `ignored GitLab event "${event ?? '(none)'}": only "Push Hook" triggers`, provider };

  const parsed = parsePush(body);
  if (parsed === 'invalid') {
    if (provider === 'generic' && body.length === 0) return { accepted: true, status: 202, reason: 'trigger', provider };
    return { accepted: false, status: 400, reason: 'body is not valid JSON', provider };
  }
  const { ref, sha } = parsed;
  if (opts.branch && ref && ref !== `refs/heads/${opts.branch}`) {
    return { accepted: false, status: 202, reason: `ignored push to ${ref}: watching refs/heads/${opts.branch}`, provider, ref, ...(sha ? { sha } : {}) };
  }
  return { accepted: true, status: 202, reason: 'push accepted: re-checking the branch', provider, ...(ref ? { ref } : {}), ...(sha ? { sha } : {}) };
}

export function detectProvider(headers: Record<string, HeaderValue>): WebhookProvider {
  if (header(headers, 'x-github-event') !== undefined || header(headers, 'x-hub-signature-256') !== undefined) return 'github';
  if (header(headers, 'x-gitlab-event') !== undefined || header(headers, 'x-gitlab-token') !== undefined) return 'gitlab';
  return 'generic';
}

/** undefined when valid, else why not. */
function verifySignature(provider: WebhookProvider, headers: Record<string, HeaderValue>, body: Buffer, secret: string): string | undefined {
  if (provider === 'gitlab') {
    const token = header(headers, 'x-gitlab-token');
    if (token === undefined) return 'missing X-Gitlab-Token header';
    return constantTimeEqual(token, secret) ? undefined : 'X-Gitlab-Token does not match the configured secret';
  }
  const name = provider === 'github' ? 'x-hub-signature-256' : 'x-signature-256';
  const display = provider === 'github' ? 'X-Hub-Signature-256' : 'X-Signature-256';
  const sig = header(headers, name);
  if (sig === undefined) return `missing ${display} header`;
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(sig.trim());
  if (!match) return `${display} must be "sha256=<64 hex digits>"`;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(match[1] as string, 'hex');
  return timingSafeEqual(expected, given) ? undefined : `${display} does not match the body signed with the configured secret`;
}

export function signBody(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Compare through fixed-length digests so neither content nor length leaks through timing. */
function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

function eventName(provider: WebhookProvider, headers: Record<string, HeaderValue>): string | undefined {
  if (provider === 'github') return header(headers, 'x-github-event');
  if (provider === 'gitlab') return header(headers, 'x-gitlab-event');
  return undefined;
}

function parsePush(body: Buffer): { ref?: string; sha?: string } | 'invalid' {
  if (body.length === 0) return 'invalid';
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return 'invalid';
  }
  if (json === null || typeof json !== 'object') return {};
  const o = json as Record<string, unknown>;
  const ref = typeof o.ref === 'string' ? o.ref : undefined;
  const sha = [o.after, o.checkout_sha, o.sha].find((v): v is string => typeof v === 'string' && /^[0-9a-f]{40,64}$/.test(v));
  return { ...(ref ? { ref } : {}), ...(sha ? { sha } : {}) };
}

function header(headers: Record<string, HeaderValue>, name: string): string | undefined {
  // Node lower-cases incoming header names; callers building headers by hand may not.
  let v = headers[name];
  if (v === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
    v = key === undefined ? undefined : headers[key];
  }
  return Array.isArray(v) ? v[0] : v;
}
