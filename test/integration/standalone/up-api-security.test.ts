/**
 * The control API lets no one else in (issue 9, part 2), against the real `virtops up`
 * (test:///default, one VM): the unix socket is 0600 and the CLI's default; over TCP every
 * request needs the token, and foreign Host/Origin and non-JSON POSTs to each mutating
 * endpoint are refused and change nothing; the webhook and metrics listeners serve only
 * their own paths; the socket goes on SIGTERM and a stale one is replaced.
 */
import { lstat, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMPERATIVE_ACTIONS } from '../../../reconciler/core/types.js';
import { signBody } from '../../../reconciler/source/index.js';
import { bareVm, gitFixture, type GitFixture } from './fixture.js';
import { freePort } from '../../helpers/registry.js';
import { cleanupStateDir, cli, makeStateDir, rawRequest, sleep, startUp, vm, waitFor, type UpProcess } from './harness.js';

const SECRET = 'webhook-secret-for-the-test';

describe('virtops up: an API only its owner can use', () => {
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;
  let args: string[];
  let webhookPort: number;
  let metricsPort: number;

  beforeAll(async () => {
    git = await gitFixture();
    stateDir = await makeStateDir();
    await writeFile(join(git.dir, 'secret'), `${SECRET}\n`);
    [webhookPort, metricsPort] = [await freePort(), await freePort()];
    args = ['--repo', git.bare, '--libvirt-uri', 'test:///default', '--interval', '2s', '--no-freshness-check',
      '--webhook-listen', `127.0.0.1:${webhookPort}`, '--webhook-secret-file', join(git.dir, 'secret'), '--metrics-listen', `127.0.0.1:${metricsPort}`];
    await git.commitVms([bareVm('alpha')], 'alpha');
    up = await startUp(args, stateDir, { tcp: true });
    await waitFor('alpha Running', async () => (await vm(up.server, 'alpha'))?.status?.printableStatus === 'Running');
  });

  afterAll(async () => {
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    await git?.cleanup();
  });

  const sock = () => ({ socketPath: join(stateDir, 'up.sock') });
  const tcp = () => ({ port: up.tcpPort! });
  const own = () => `127.0.0.1:${up.tcpPort}`;
  const bearer = () => ({ authorization: `Bearer ${up.token}` });
  const json = { 'content-type': 'application/json' };

  it('serves on a 0600 unix socket by default, recorded in up.json; the CLI finds it', async () => {
    const st = await lstat(join(stateDir, 'up.sock'));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await stat(join(stateDir, 'api.token'))).mode & 0o777).toBe(0o600);
    const info = JSON.parse(await readFile(join(stateDir, 'up.json'), 'utf8')) as Record<string, unknown>;
    expect(info).toMatchObject({ listen: `unix:${join(stateDir, 'up.sock')}`, tcp: own(), tokenFile: join(stateDir, 'api.token'), webhook: `127.0.0.1:${webhookPort}`, metrics: `127.0.0.1:${metricsPort}` });

    // No --server: the socket in --state-dir, or in $VIRTOPS_STATE_DIR.
    const byFlag = await cli(['get', 'vms', '--state-dir', stateDir]);
    expect(byFlag.stderr).toBe('');
    expect(byFlag.stdout).toMatch(/alpha\s+\S+\s+Running/);
    const byEnv = await cli(['describe', 'vm', 'alpha'], undefined, { VIRTOPS_STATE_DIR: stateDir });
    expect(byEnv.stdout).toMatch(/Running/);
    // Over TCP the CLI takes the token from the state dir; without one it is told how to authenticate.
    expect((await cli(['get', 'vms', '--state-dir', stateDir], `http://${own()}`)).stdout).toMatch(/alpha/);
    const anon = await cli(['get', 'vms', '--state-dir', '/nonexistent'], `http://${own()}`);
    expect(anon.exitCode).not.toBe(0);
    expect(anon.stderr).toMatch(/unauthenticated: send "Authorization: Bearer <token>" with the token in .*api\.token/);
    const wrong = await cli(['get', 'vms'], `http://${own()}`, { VIRTOPS_TOKEN: 'not-the-token' });
    expect(wrong.stderr).toMatch(/the bearer token does not match/);
  });

  it('over TCP, refuses unauthenticated, cross-origin, foreign-Host and non-JSON requests to each mutating endpoint; nothing changes', async () => {
    const before = (await vm(up.server, 'alpha'))!;
    expect(before.override).toBeUndefined();
    for (const action of IMPERATIVE_ACTIONS) {
      const path = `/api/v1/vms/default/alpha/${action}`;
      const cases: [string, Record<string, string>, number][] = [
        ['no token', { host: own(), ...json }, 401],
        ['wrong token', { host: own(), ...json, authorization: 'Bearer x' }, 401],
        ['the browser attack: cross-origin text/plain', { host: own(), 'content-type': 'text/plain', origin: 'http://evil.example' }, 403],
        ['cross-origin JSON with the token', { host: own(), ...json, ...bearer(), origin: 'http://evil.example' }, 403],
        ['another local origin', { host: own(), ...json, ...bearer(), origin: 'http://127.0.0.1:3000' }, 403],
        ['text/plain with the token', { host: own(), ...bearer(), 'content-type': 'text/plain' }, 415],
        ['form with the token', { host: own(), ...bearer(), 'content-type': 'application/x-www-form-urlencoded' }, 415],
        ['Host: evil.example with the token', { host: 'evil.example', ...json, ...bearer() }, 403],
        ['Host: evil.example:port with the token', { host: `evil.example:${up.tcpPort}`, ...json, ...bearer() }, 403],
      ];
      for (const [what, headers, status] of cases) {
        const r = await rawRequest(tcp(), 'POST', path, headers, '{}');
        expect(`${action}: ${what} → ${r.status}`).toBe(`${action}: ${what} → ${status}`);
      }
      expect((await rawRequest(tcp(), 'PUT', path, { host: own(), ...json, ...bearer() }, '{}')).status).toBe(405);
      // The socket needs no token, but the same browser-shaped requests are refused there too.
      expect((await rawRequest(sock(), 'POST', path, { host: 'localhost', 'content-type': 'text/plain' }, '{}')).status).toBe(415);
      expect((await rawRequest(sock(), 'POST', path, { host: 'localhost', ...json, origin: 'http://evil.example' }, '{}')).status).toBe(403);
    }
    // Reads too: DNS rebinding could otherwise read the API; every TCP request needs the token.
    expect((await rawRequest(tcp(), 'GET', '/api/v1/vms', { host: 'evil.example', ...bearer() })).status).toBe(403);
    const unauth = await rawRequest(tcp(), 'GET', '/healthz', { host: own() });
    expect(unauth.status).toBe(401);
    expect(unauth.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(JSON.parse(unauth.body).error).toMatch(/Authorization: Bearer <token>/);
    expect((await rawRequest(tcp(), 'GET', '/api/v1/vms', { host: `localhost:${up.tcpPort}`, ...bearer() })).status).toBe(200);

    // Nothing changed: same instance, still Running, no override (over a couple of resyncs).
    await sleep(4_000);
    const after = (await vm(up.server, 'alpha'))!;
    expect(after.instance!.uid).toBe(before.instance!.uid);
    expect(after.status!.printableStatus).toBe('Running');
    expect(after.override).toBeUndefined();
    expect(after.events.map((e) => e.reason)).toEqual(before.events.map((e) => e.reason));

    // The same request, made properly, is served: the refusals above were the guard, not the route.
    const ok = await rawRequest(tcp(), 'POST', '/api/v1/vms/default/alpha/pause', { host: own(), ...json, ...bearer() }, '{}');
    expect(ok.status).toBe(202);
    await waitFor('alpha Paused', async () => (await vm(up.server, 'alpha'))?.status?.printableStatus === 'Paused');
    const un = await cli(['unpause', 'alpha', '--state-dir', stateDir]);
    expect(un.stdout).toMatch(/unpause requested/);
    await waitFor('alpha Running', async () => (await vm(up.server, 'alpha'))?.status?.printableStatus === 'Running');
  });

  it('the webhook listener serves /hooks/* only (HMAC-verified, rate-limited); the metrics listener health and metrics only', async () => {
    const hook = { port: webhookPort };
    for (const [method, path] of [['GET', '/api/v1/vms'], ['POST', '/api/v1/vms/default/alpha/stop'], ['GET', '/metrics'], ['GET', '/healthz'], ['GET', '/']]) {
      expect(`${method} ${path} → ${(await rawRequest(hook, method!, path!, json, method === 'POST' ? '{}' : undefined)).status}`).toBe(`${method} ${path} → 404`);
    }
    expect((await rawRequest(hook, 'POST', '/hooks/other', json, '{}')).status).toBe(404);
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    expect((await rawRequest(hook, 'POST', '/hooks/git', { ...json, 'x-signature-256': 'sha256=00' }, body)).status).toBe(401);
    expect((await rawRequest(hook, 'POST', '/hooks/git', { ...json, 'x-signature-256': signBody(body, SECRET) }, body)).status).toBe(202);
    expect((await rawRequest(hook, 'POST', '/hooks/git', { ...json, 'content-length': String(2 * 1024 * 1024) })).status).toBe(413);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await rawRequest(hook, 'POST', '/hooks/git', { ...json, 'x-signature-256': 'sha256=00' }, body)).status);
    expect(statuses).toContain(429);

    const met = { port: metricsPort };
    const m = await rawRequest(met, 'GET', '/metrics', { host: 'anything.example' });
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/virtops_vms\{status="Running"\} 1/);
    expect((await rawRequest(met, 'GET', '/healthz')).status).toBe(200);
    expect((await rawRequest(met, 'GET', '/readyz')).status).toBe(200);
    expect((await rawRequest(met, 'GET', '/api/v1/vms')).status).toBe(404);
    expect((await rawRequest(met, 'POST', '/api/v1/vms/default/alpha/stop', json, '{}')).status).toBe(404);
    expect((await rawRequest(met, 'POST', '/metrics', json, '{}')).status).toBe(405);
  });

  it('SIGKILL leaves a stale socket that the next up replaces; SIGTERM removes it', async () => {
    const path = join(stateDir, 'up.sock');
    await up.kill9();
    expect((await lstat(path)).isSocket()).toBe(true);
    const token = up.token;
    up = await startUp(args, stateDir, { tcp: true });
    expect((await lstat(path)).mode & 0o777).toBe(0o600);
    expect(up.token).toBe(token); // kept across restarts
    expect((await cli(['get', 'vms', '--state-dir', stateDir])).stdout).toMatch(/alpha/);
    await up.stop();
    expect(existsSync(path), up.logText()).toBe(false);
    expect(existsSync(join(stateDir, 'up.json'))).toBe(false);
  });
});
