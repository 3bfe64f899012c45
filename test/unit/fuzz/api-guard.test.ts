/**
 * Fuzz: control API requests (reconciler/standalone/api-guard.ts, guardRequest: the pure
 * decision every request of `virtops up`'s API passes before routing). Arbitrary methods,
 * Host, Origin, Authorization and Content-Type values and listen policies → a verdict
 * (ok, or 401/403/405/415 with a message); never a throw, and never ok for a request that
 * lacks what the policy needs (the token on TCP, an own Host, no foreign Origin, a JSON POST
 * for anything but GET/HEAD).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { guardRequest, parseHostHeader, RateLimiter, type GuardPolicy, type GuardRequest } from '../../../reconciler/standalone/api-guard.js';
import { FUZZ, params } from './config.js';

const TOKEN = 'k3Jd9-token_Abc.123';
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const host = fc.oneof(
  fc.constantFrom('127.0.0.1:8686', 'localhost:8686', '[::1]:8686', '0.0.0.0:8686', 'evil.example:8686', 'evil.example', '127.0.0.1', 'LOCALHOST:8686', '127.0.0.1:08686', '127.0.0.1:99999', '[::1', ':8686', ' 127.0.0.1:8686 ', 'myhost:8686'),
  fc.string({ maxLength: 30 }),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 70_000 })).map(([h, p]) => `${h}:${p}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 70_000 })).map(([h, p]) => `[${h}]:${p}`),
  fc.domain().map((d) => `${d}:8686`),
);
const headers = fc.record(
  {
    host,
    origin: fc.oneof(fc.constantFrom('null', 'http://127.0.0.1:8686', 'https://127.0.0.1:8686', 'http://evil.example', 'http://localhost:8686/'), host.map((h) => `http://${h}`), fc.string({ maxLength: 30 })),
    authorization: fc.oneof(fc.constantFrom(`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `Bearer  ${TOKEN} `, `Bearer ${TOKEN}x`, 'Bearer', 'Basic abc', `Bearer\t${TOKEN}`), fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`)),
    'content-type': fc.oneof(fc.constantFrom('application/json', 'Application/JSON; charset=utf-8', 'text/plain', 'application/json-patch+json', ' application/json ', ';'), fc.string({ maxLength: 30 })),
  },
  { requiredKeys: [] },
);
const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'post', 'CONNECT', ''), fc.string({ maxLength: 10 }));
const policy: fc.Arbitrary<GuardPolicy> = fc.oneof(
  fc.constant({ listen: { kind: 'unix' } } as GuardPolicy),
  fc.record({
    listen: fc.record({ kind: fc.constant('tcp' as const), host: fc.constantFrom('127.0.0.1', '0.0.0.0', '::', '::1', 'localhost', '', 'MyHost'), port: fc.constantFrom(8686, 80, 0, 65535) }),
    token: fc.oneof(fc.constant(TOKEN), fc.constant(''), fc.string({ maxLength: 20 })),
    hostNames: opt(fc.array(fc.oneof(fc.constantFrom('myhost', 'MYHOST', ''), fc.domain()), { maxLength: 3 })),
    tokenHint: opt(fc.string({ maxLength: 20 })),
  }, { requiredKeys: ['listen', 'token'] }) as fc.Arbitrary<GuardPolicy>,
);

describe('fuzz: control API requests (guardRequest)', () => {
  it(`arbitrary method, Host, Origin, Authorization, Content-Type and policy → a verdict, never a throw, never ok without what the policy needs (${FUZZ.apiGuard.numRuns} runs, seed ${FUZZ.apiGuard.seed})`, () => {
    fc.assert(
      fc.property(method, headers, policy, (m, h, p) => {
        const req: GuardRequest = { method: m, headers: h };
        const v = guardRequest(req, p);
        if (!v.ok) {
          expect([401, 403, 405, 415]).toContain(v.status);
          expect(v.error.length).toBeGreaterThan(0);
          return;
        }
        // Reads are GET/HEAD; anything else is a JSON POST.
        if (m !== 'GET' && m !== 'HEAD') {
          expect(m).toBe('POST');
          expect((h['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()).toBe('application/json');
        }
        if (p.listen.kind === 'unix') {
          expect(h.origin).toBeUndefined(); // a unix socket has no web origin
        } else {
          // TCP: the bearer token, and Host naming this server's port.
          expect(p.token).toBeTruthy();
          const mt = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h.authorization ?? '');
          expect(mt?.[1]).toBe(p.token);
          const hh = h.host === undefined ? undefined : parseHostHeader(h.host);
          expect(hh?.port).toBe(p.listen.port);
          if (h.origin !== undefined) expect(h.origin.trim().startsWith('http://')).toBe(true);
        }
      }),
      params(FUZZ.apiGuard),
    );
  });

  it(`the webhook listener's rate limiter answers any client key and clock (also going backwards) with a finite wait ≥ 0, and its table stays bounded (${FUZZ.apiGuard.numRuns / 10} sequences, seed ${FUZZ.apiGuard.seed + 1})`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 40 }), fc.ipV4(), fc.ipV6(), fc.constantFrom('unknown', '__proto__', 'constructor', '')), fc.integer({ min: -1e6, max: 1e6 })), { maxLength: 200 }),
        fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 50 }),
        (calls, burst, refill, maxClients) => {
          const limiter = new RateLimiter(burst, refill, maxClients);
          let now = 1_700_000_000_000;
          for (const [client, dt] of calls) {
            now += dt;
            const wait = limiter.take(client, now);
            expect(Number.isFinite(wait)).toBe(true);
            expect(wait).toBeGreaterThanOrEqual(0);
          }
          expect((limiter as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(maxClients);
        },
      ),
      { ...params(FUZZ.apiGuard), numRuns: Math.max(1, Math.round(params(FUZZ.apiGuard).numRuns! / 10)), seed: params(FUZZ.apiGuard).seed! + 1 },
    );
  });
});
