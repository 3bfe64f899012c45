/** The dashboard's cookie session and CSRF rules in api-guard.ts (pure decisions, table-tested). */
import { describe, expect, it } from 'vitest';
import { cookieValue, guardRequest, isPublicPath, secretEquals, wantsLoginPage, type GuardPolicy, type GuardRequest } from '../../../reconciler/standalone/api-guard.js';

const TOKEN = 'k'.repeat(43);
const SID = 's'.repeat(43);
const CSRF = 'c'.repeat(43);
const sessions = new Map([[SID, { csrf: CSRF }]]);
const dash: GuardPolicy = { listen: { kind: 'tcp', host: '127.0.0.1', port: 8686 }, token: TOKEN, tokenHint: '/s/api.token', session: (id) => sessions.get(id) };
const noDash: GuardPolicy = { listen: { kind: 'tcp', host: '127.0.0.1', port: 8686 }, token: TOKEN };
const host = { host: '127.0.0.1:8686' };
const own = { origin: 'http://127.0.0.1:8686' };
const json = { 'content-type': 'application/json' };
const cookie = { cookie: `other=1; virtops_session=${SID}` };
const csrf = { 'x-virtops-csrf': CSRF };
const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

describe('cookieValue', () => {
  it.each<[string | undefined, string | undefined]>([
    [`virtops_session=${SID}`, SID],
    [`a=b;  virtops_session=${SID} ; c=d`, SID],
    ['virtops_session=', undefined],
    ['xvirtops_session=1', undefined],
    [undefined, undefined],
    ['garbage', undefined],
  ])('%s → %s', (h, want) => expect(cookieValue(h, 'virtops_session')).toBe(want));
});

describe('secretEquals', () => {
  it.each<[string | undefined, string, boolean]>([
    [CSRF, CSRF, true],
    ['c', CSRF, false],
    [undefined, CSRF, false],
    ['', '', false], // an empty secret never matches
  ])('%s vs %s → %s', (a, b, want) => expect(secretEquals(a, b)).toBe(want));
});

describe('isPublicPath / wantsLoginPage', () => {
  it.each<[string, string, boolean]>([
    ['GET', '/login', true],
    ['GET', '/assets/app-X1.js', true],
    ['GET', '/assets/../api.token', false],
    ['GET', '/assets/a/b.js', false],
    ['GET', '/', false],
    ['GET', '/api/v1/vms', false],
    ['GET', '/api/v1/events', false],
    ['POST', '/api/v1/session', true],
    ['GET', '/api/v1/session', false], // returns the CSRF secret: needs the cookie
    ['POST', '/login', false],
  ])('%s %s → %s', (m, p, want) => expect(isPublicPath(m, p)).toBe(want));
  it.each<[string, string, string | undefined, boolean]>([
    ['GET', '/', html.accept, true],
    ['GET', '/vms/default/a', html.accept, true],
    ['GET', '/api/v1/vms', html.accept, false],
    ['GET', '/', 'application/json', false],
    ['POST', '/', html.accept, false],
  ])('%s %s (%s) → %s', (m, p, a, want) => expect(wantsLoginPage(m, p, a)).toBe(want));
});

describe('guardRequest with dashboard sessions', () => {
  it.each<[string, GuardPolicy, Omit<GuardRequest, 'headers'>, Record<string, string>, number | string]>([
    ['page with the session cookie', dash, { method: 'GET', path: '/' }, { ...host, ...cookie }, 'session'],
    ['API read with the session cookie', dash, { method: 'GET', path: '/api/v1/vms' }, { ...host, ...cookie }, 'session'],
    ['action with cookie + CSRF header, same origin', dash, { method: 'POST', path: '/api/v1/vms/default/a/stop' }, { ...host, ...own, ...json, ...cookie, ...csrf }, 'session'],
    ['action with cookie, no CSRF header', dash, { method: 'POST', path: '/api/v1/vms/default/a/stop' }, { ...host, ...own, ...json, ...cookie }, 403],
    ['action with cookie, wrong CSRF header', dash, { method: 'POST', path: '/api/v1/vms/default/a/stop' }, { ...host, ...json, ...cookie, 'x-virtops-csrf': 'nope' }, 403],
    ['action with cookie + CSRF but text/plain', dash, { method: 'POST', path: '/api/v1/vms/default/a/stop' }, { ...host, ...cookie, ...csrf, 'content-type': 'text/plain' }, 415],
    ['cross-site action riding the cookie', dash, { method: 'POST', path: '/api/v1/vms/default/a/stop' }, { ...host, ...json, ...cookie, ...csrf, origin: 'http://evil.example' }, 403],
    ['cross-site WebSocket (GET) riding the cookie', dash, { method: 'GET', path: '/api/v1/vms/default/a/console' }, { ...host, ...cookie, origin: 'http://evil.example' }, 403],
    ['unknown session id', dash, { method: 'GET', path: '/api/v1/vms' }, { ...host, cookie: 'virtops_session=forged' }, 401],
    ['no cookie, API read', dash, { method: 'GET', path: '/api/v1/vms' }, host, 401],
    ['no cookie, SSE', dash, { method: 'GET', path: '/api/v1/events' }, { ...host, accept: 'text/event-stream' }, 401],
    ['login page', dash, { method: 'GET', path: '/login' }, host, 'public'],
    ['static asset', dash, { method: 'GET', path: '/assets/app.js' }, host, 'public'],
    ['token exchange (JSON)', dash, { method: 'POST', path: '/api/v1/session' }, { ...host, ...own, ...json }, 'public'],
    ['token exchange as a form post', dash, { method: 'POST', path: '/api/v1/session' }, { ...host, 'content-type': 'application/x-www-form-urlencoded' }, 415],
    ['token exchange cross-site', dash, { method: 'POST', path: '/api/v1/session' }, { ...host, ...json, origin: 'http://evil.example' }, 403],
    ['bearer token still works, no CSRF needed', dash, { method: 'POST', path: '/api/v1/vms/default/a/stop' }, { ...host, ...json, authorization: `Bearer ${TOKEN}` }, 'token'],
    ['a wrong bearer token is not rescued by a cookie', dash, { method: 'GET', path: '/api/v1/vms' }, { ...host, ...cookie, authorization: 'Bearer nope' }, 401],
    ['without the dashboard, cookies mean nothing', noDash, { method: 'GET', path: '/api/v1/vms' }, { ...host, ...cookie }, 401],
    ['without the dashboard, nothing is public', noDash, { method: 'GET', path: '/login' }, host, 401],
    ['foreign Host, even with the cookie', dash, { method: 'GET', path: '/' }, { host: 'evil.example:8686', ...cookie }, 403],
  ])('%s → %s', (_what, policy, req, headers, want) => {
    const v = guardRequest({ ...req, headers }, policy);
    expect(v.ok ? v.via : v.status).toBe(want);
  });

  it('an unauthenticated browser page load is sent to the login page; an API call gets 401 JSON', () => {
    const page = guardRequest({ method: 'GET', path: '/', headers: { ...host, ...html } }, dash);
    expect(page).toMatchObject({ ok: false, status: 401, login: true });
    const api = guardRequest({ method: 'GET', path: '/api/v1/vms', headers: { ...host, ...html } }, dash);
    expect(api).toMatchObject({ ok: false, status: 401 });
    expect('login' in api).toBe(false);
  });

  it('names the CSRF header and where its value comes from', () => {
    const v = guardRequest({ method: 'POST', path: '/api/v1/vms/default/a/stop', headers: { ...host, ...json, ...cookie } }, dash);
    expect(v.ok ? '' : v.error).toMatch(/X-Virtops-CSRF.*GET \/api\/v1\/session/);
  });
});
