/**
 * Fuzz: push webhook payloads and headers (reconciler/source/webhook.ts, handleWebhook).
 * Arbitrary bodies, signatures, header names in any casing, repeated headers, sizes and
 * providers → a verdict with an HTTP status and a reason; never a throw, and never `accepted`
 * without a valid signature (or token) for the exact body.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handleWebhook, signBody, type HeaderValue, type WebhookOptions } from '../../../reconciler/source/webhook.js';
import { FUZZ, params } from './config.js';

const KNOWN = ['x-github-event', 'x-hub-signature-256', 'x-gitlab-event', 'x-gitlab-token', 'x-signature-256', 'content-type', 'content-length'];
const STATUSES = new Set([200, 202, 400, 401, 413]);

/** A header name: a known one in random casing, or anything. */
const headerName = fc.oneof(
  fc.tuple(fc.constantFrom(...KNOWN), fc.array(fc.boolean(), { minLength: 32, maxLength: 32 }))
    .map(([n, up]) => [...n].map((c, i) => (up[i] ? c.toUpperCase() : c)).join('')),
  fc.string({ maxLength: 20 }),
);
const hex64 = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
const headerValue: fc.Arbitrary<HeaderValue> = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  hex64.map((h) => `sha256=${h}`),
  fc.constantFrom('push', 'ping', 'Push Hook', 'Tag Push Hook', 'sha256=', ' sha256=' + '0'.repeat(64) + ' '),
  fc.array(fc.string({ maxLength: 40 }), { maxLength: 3 }),
);
const headers = fc.dictionary(headerName, headerValue, { maxKeys: 8 });

const body: fc.Arbitrary<Buffer | string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.json({ maxDepth: 4 }),
  fc.record({ ref: fc.oneof(fc.string(), fc.constant('refs/heads/main'), fc.integer()), after: fc.oneof(fc.stringMatching(/^[0-9a-f]{40}$/), fc.string(), fc.constant(null)) }, { requiredKeys: [] })
    .map((o) => JSON.stringify(o)),
  fc.integer({ min: 0, max: 3 * 1024 * 1024 }).map((n) => Buffer.alloc(n, 0x7b)), // up to 3 MiB of '{'
);
const options: fc.Arbitrary<WebhookOptions> = fc.record(
  {
    secret: fc.oneof(fc.constant(''), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })),
    provider: fc.constantFrom('github', 'gitlab', 'generic') as fc.Arbitrary<WebhookOptions['provider']>,
    branch: fc.oneof(fc.constant('main'), fc.string({ maxLength: 20 })),
    maxBodyBytes: fc.oneof(fc.integer({ min: 0, max: 4 * 1024 * 1024 }), fc.constantFrom(0, -1, Number.NaN, Infinity)),
  },
  { requiredKeys: ['secret'] },
);

function checkVerdict(r: ReturnType<typeof handleWebhook>): void {
  expect(STATUSES.has(r.status), `status ${r.status}`).toBe(true);
  expect(typeof r.reason).toBe('string');
  expect(r.reason.length).toBeGreaterThan(0);
  if (r.accepted) expect(r.status).toBe(202);
}

describe('fuzz: webhook payloads and headers', () => {
  it(`arbitrary headers, bodies, secrets and options → a verdict, never a throw (${FUZZ.webhook.numRuns} runs, seed ${FUZZ.webhook.seed})`, () => {
    fc.assert(
      fc.property(headers, body, options, (h, b, o) => {
        const r = handleWebhook({ headers: h, rawBody: b }, o);
        checkVerdict(r);
        // Accepting needs the secret: with random headers, only a gitlab token equal to the secret or a matching HMAC does it.
        if (r.accepted) {
          const buf = typeof b === 'string' ? Buffer.from(b) : b;
          const sig = signBody(buf, o.secret);
          const values = Object.values(h).flatMap((v) => (Array.isArray(v) ? v : [v]));
          expect(values.some((v) => v === o.secret || v?.trim().toLowerCase() === sig)).toBe(true);
        }
      }),
      params(FUZZ.webhook),
    );
  });

  it(`correctly signed pushes in any header casing are never refused as unauthenticated; a changed body or signature never passes (${FUZZ.webhookSigned.numRuns} runs, seed ${FUZZ.webhookSigned.seed})`, () => {
    const casing = fc.array(fc.boolean(), { minLength: 32, maxLength: 32 });
    const recase = (name: string, up: boolean[]): string => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c)).join('');
    fc.assert(
      fc.property(
        fc.constantFrom('github', 'generic') as fc.Arbitrary<'github' | 'generic'>,
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.json({ maxDepth: 3 })),
        casing,
        fc.nat(),
        (provider, secret, text, up, flip) => {
          const sigName = recase(provider === 'github' ? 'x-hub-signature-256' : 'x-signature-256', up);
          const h: Record<string, HeaderValue> = { [sigName]: signBody(text, secret) };
          if (provider === 'github') h[recase('x-github-event', up)] = 'push';
          const ok = handleWebhook({ headers: h, rawBody: text }, { secret });
          checkVerdict(ok);
          expect(ok.status, ok.reason).not.toBe(401);
          expect(ok.provider).toBe(provider);
          // One byte changed in the body: refused as unauthenticated.
          const buf = Buffer.from(text);
          const tampered = buf.length > 0 ? Buffer.from(buf) : Buffer.from('x');
          if (buf.length > 0) tampered[flip % buf.length] = tampered[flip % buf.length]! ^ 0x01;
          const bad = handleWebhook({ headers: h, rawBody: tampered }, { secret });
          checkVerdict(bad);
          expect(bad.accepted).toBe(false);
          expect(bad.status).toBe(401);
        },
      ),
      params(FUZZ.webhookSigned),
    );
  });
});
