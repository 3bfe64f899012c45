import { describe, expect, it } from 'vitest';
import { guardRequest, hostAllowed, methodAllowed, originAllowed, parseHostHeader, RateLimiter, tokenMatches, type GuardListen, type GuardPolicy } from '../../../reconciler/standalone/api-guard.js';

const TCP: GuardListen = { kind: 'tcp', host: '127.0.0.1', port: 8686 };
const V6: GuardListen = { kind: 'tcp', host: '::1', port: 8686 };
const ANY: GuardListen = { kind: 'tcp', host: '0.0.0.0', port: 8686 };
const UNIX: GuardListen = { kind: 'unix' };
const TOKEN = 'k'.repeat(43);

describe('parseHostHeader', () => {
  it.each([
    ['127.0.0.1:8686', { hostname: '127.0.0.1', port: 8686 }],
    ['LOCALHOST:1', { hostname: 'localhost', port: 1 }],
    ['[::1]:8686', { hostname: '::1', port: 8686 }],
    ['example.com', { hostname: 'example.com', port: 80 }],
    ['a:b', undefined],
    ['::1:8686', undefined],
    ['', undefined],
  ])('%s', (h, want) => expect(parseHostHeader(h)).toEqual(want));
});

describe('hostAllowed', () => {
  it.each<[string | undefined, GuardListen, boolean]>([
    ['127.0.0.1:8686', TCP, true],
    ['localhost:8686', TCP, true],
    ['127.0.0.1:8687', TCP, false],
    ['127.0.0.1', TCP, false], // port 80 implied
    ['evil.example', TCP, false],
    ['evil.example:8686', TCP, false], // DNS rebinding: a foreign name pointing at us
    ['10.0.0.5:8686', TCP, false],
    [undefined, TCP, false],
    ['[::1]:8686', V6, true],
    ['localhost:8686', V6, true],
    ['10.0.0.5:8686', ANY, true], // wildcard: IP literals cannot be rebound
    ['[fe80::1]:8686', ANY, true],
    ['myhost:8686', ANY, true], // in hostNames
    ['evil.example:8686', ANY, false],
    ['evil.example', UNIX, true],
    [undefined, UNIX, true],
  ])('%s on %j → %s', (host, listen, want) => expect(hostAllowed(host, listen, ['MyHost'])).toBe(want));
});

describe('originAllowed', () => {
  it.each<[string | undefined, GuardListen, boolean]>([
    [undefined, TCP, true],
    ['http://127.0.0.1:8686', TCP, true],
    ['http://localhost:8686', TCP, true],
    ['http://evil.example', TCP, false],
    ['http://evil.example:8686', TCP, false],
    ['http://127.0.0.1:3000', TCP, false], // another local web app
    ['https://127.0.0.1:8686', TCP, false],
    ['null', TCP, false],
    ['http://[::1]:8686', V6, true],
    ['http://localhost', TCP, false],
    [undefined, UNIX, true],
    ['http://localhost', UNIX, false],
  ])('%s on %j → %s', (origin, listen, want) => expect(originAllowed(origin, listen)).toBe(want));
});

describe('tokenMatches', () => {
  it.each<[string | undefined, boolean]>([
    [`Bearer ${TOKEN}`, true],
    [`bearer ${TOKEN}`, true],
    [`Bearer  ${TOKEN} `, true],
    [`Bearer ${TOKEN}x`, false],
    [`Bearer ${TOKEN.slice(1)}`, false],
    [`Basic ${TOKEN}`, false],
    [TOKEN, false],
    ['Bearer ', false],
    ['', false],
    [undefined, false],
  ])('%s → %s', (auth, want) => expect(tokenMatches(auth, TOKEN)).toBe(want));
  it('an empty configured token matches nothing', () => expect(tokenMatches('Bearer ', '')).toBe(false));
});

describe('methodAllowed', () => {
  it.each<[string, string | undefined, number | true]>([
    ['GET', undefined, true],
    ['HEAD', 'text/plain', true],
    ['POST', 'application/json', true],
    ['POST', 'Application/JSON; charset=utf-8', true],
    ['POST', 'text/plain', 415], // a CORS simple request: browsers send it cross-site unasked
    ['POST', 'application/x-www-form-urlencoded', 415],
    ['POST', 'multipart/form-data; boundary=x', 415],
    ['POST', undefined, 415],
    ['POST', 'application/jsonp', 415],
    ['PUT', 'application/json', 405],
    ['DELETE', undefined, 405],
    ['OPTIONS', undefined, 405],
  ])('%s %s → %s', (method, type, want) => {
    const v = methodAllowed(method, type);
    expect(v.ok ? true : v.status).toBe(want);
  });
});

describe('guardRequest', () => {
  const tcp: GuardPolicy = { listen: TCP, token: TOKEN, tokenHint: '/s/api.token' };
  const unix: GuardPolicy = { listen: UNIX };
  const auth = { authorization: `Bearer ${TOKEN}` };
  const json = { 'content-type': 'application/json' };
  const host = { host: '127.0.0.1:8686' };
  it.each<[string, GuardPolicy, string, Record<string, string>, number | true]>([
    ['TCP read with the token', tcp, 'GET', { ...host, ...auth }, true],
    ['TCP action with the token', tcp, 'POST', { ...host, ...auth, ...json }, true],
    ['TCP without a token', tcp, 'GET', host, 401],
    ['TCP action without a token', tcp, 'POST', { ...host, ...json }, 401],
    ['TCP with a wrong token', tcp, 'POST', { ...host, ...json, authorization: 'Bearer nope' }, 401],
    ['foreign Host, even with the token', tcp, 'GET', { host: 'evil.example:8686', ...auth }, 403],
    ['foreign Host wins over a missing token', tcp, 'GET', { host: 'evil.example' }, 403],
    ['cross-origin action with the token', tcp, 'POST', { ...host, ...auth, ...json, origin: 'http://evil.example' }, 403],
    ['the browser attack: cross-origin text/plain, no token', tcp, 'POST', { ...host, 'content-type': 'text/plain', origin: 'http://evil.example' }, 403],
    ['text/plain with the token', tcp, 'POST', { ...host, ...auth, 'content-type': 'text/plain' }, 415],
    ['same-origin JSON action', tcp, 'POST', { ...host, ...auth, ...json, origin: 'http://127.0.0.1:8686' }, true],
    ['unix read', unix, 'GET', { host: 'localhost' }, true],
    ['unix action', unix, 'POST', { host: 'localhost', ...json }, true],
    ['unix text/plain action', unix, 'POST', { host: 'localhost', 'content-type': 'text/plain' }, 415],
    ['unix with an Origin (relayed browser traffic)', unix, 'POST', { host: 'localhost', ...json, origin: 'http://localhost' }, 403],
  ])('%s → %s', (_what, policy, method, headers, want) => {
    const v = guardRequest({ method, headers }, policy);
    expect(v.ok ? true : v.status).toBe(want);
  });
  it('tells an unauthenticated caller how to authenticate', () => {
    const v = guardRequest({ method: 'GET', headers: host }, tcp);
    expect(v.ok ? '' : v.error).toMatch(/Authorization: Bearer <token>.*\/s\/api\.token.*--token-file/);
  });
  it('a TCP policy without a token refuses everything', () => {
    const v = guardRequest({ method: 'GET', headers: { ...host, authorization: 'Bearer ' } }, { listen: TCP });
    expect(v.ok ? 0 : v.status).toBe(401);
  });
});

describe('RateLimiter', () => {
  it('allows a burst per client, then one per refill period', () => {
    const r = new RateLimiter(3, 1000);
    expect([0, 1, 2, 3].map(() => r.take('a', 0))).toEqual([0, 0, 0, 1000]);
    expect(r.take('b', 0)).toBe(0); // per client
    expect(r.take('a', 500)).toBe(500);
    expect(r.take('a', 1000)).toBe(0);
    expect(r.take('a', 1000)).toBe(1000);
    expect(r.take('a', 10_000)).toBe(0); // refilled, capped at the burst
    expect([0, 1, 2].map(() => r.take('a', 10_000))).toEqual([0, 0, 1000]);
  });
  it('forgets the least recently seen client when full', () => {
    const r = new RateLimiter(1, 1000, 2);
    r.take('a', 0);
    r.take('b', 0);
    r.take('c', 0); // drops a
    expect(r.take('a', 0)).toBe(0);
    expect(r.take('c', 0)).toBe(1000);
  });
});
