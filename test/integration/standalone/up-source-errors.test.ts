/**
 * A failing git source is visible (issue 9 fault f): a repository that cannot be read and a
 * revision that cannot be recorded show as a banner above `get vms`, in `describe`, and make
 * `/readyz` answer 503 with the reason, on the API socket and on --metrics-listen; once the
 * source recovers all of it goes, and the revision that could not be applied is applied
 * (retried, not lost). libvirt's test:///default: no guest needed.
 */
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareVm, gitFixture, type GitFixture } from './fixture.js';
import { cleanupStateDir, cli, join, listVms, makeStateDir, rawRequest, startUp, vm, waitFor, type UpProcess } from './harness.js';
import { freePort } from '../../helpers/registry.js';

describe('virtops up: source errors are visible', () => {
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;
  let metricsPort: number;
  const readyz = async () => {
    const r = await rawRequest({ port: metricsPort }, 'GET', '/readyz');
    return { status: r.status, body: JSON.parse(r.body) as { ready: boolean; reason?: string } };
  };

  beforeAll(async () => {
    git = await gitFixture();
    stateDir = await makeStateDir();
    metricsPort = await freePort();
    await git.commitVms([bareVm('alpha')], 'alpha');
    up = await startUp(['--repo', git.bare, '--libvirt-uri', 'test:///default', '--interval', '1s', '--metrics-listen', `127.0.0.1:${metricsPort}`], stateDir);
    await waitFor('alpha Running', async () => (await vm(up.server, 'alpha'))?.status?.printableStatus === 'Running', 60_000);
  }, 120_000);

  afterAll(async () => {
    await rename(`${git.bare}.gone`, git.bare).catch(() => undefined);
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    await git?.cleanup();
  });

  it('an unreachable repository: banner in get vms, Source in describe, /readyz 503; all clear once it is back', async () => {
    expect(await readyz()).toEqual({ status: 200, body: { ready: true } });
    await rename(git.bare, `${git.bare}.gone`);
    try {
      const list = await waitFor('the source error', async () => {
        const l = await listVms(up.server);
        return l.sourceError ? l : undefined;
      }, 30_000);
      expect(list.sourceError).toMatchObject({ stage: 'fetch', since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      const table = await cli(['get', 'vms'], up.server);
      expect(table.exitCode).toBe(0);
      expect(table.stderr.split('\n')[0]).toMatch(new RegExp(`^warning: the git source is failing since ${list.sourceError!.since} \\(fetching\\): .+; revision \\w{12} keeps running$`));
      expect(table.stdout).toMatch(/alpha\s+\S+\s+Running/); // what runs keeps running
      const d = await cli(['describe', 'vm', 'alpha'], up.server);
      expect(d.stdout).toMatch(/Source:\s+the git source is failing since/);
      const r = await readyz();
      expect(r.status).toBe(503);
      expect(r.body.reason).toMatch(/git source is failing since .* \(fetching\)/);
      // The same on the API socket.
      expect((await rawRequest({ socketPath: up.server.slice('unix:'.length) }, 'GET', '/readyz')).status).toBe(503);
    } finally {
      await rename(`${git.bare}.gone`, git.bare);
    }
    await waitFor('/readyz 200', async () => (await readyz()).status === 200, 30_000);
    expect((await listVms(up.server)).sourceError).toBeUndefined();
    expect((await cli(['get', 'vms'], up.server)).stderr).toBe('');
  }, 90_000);

  it('a revision that cannot be recorded (applied.json cannot be written): visible, retried, applied once it can be', async () => {
    const applied = join(stateDir, 'applied.json');
    // A directory where the file goes: the atomic rename onto it fails (root ignores modes).
    await rm(applied);
    await mkdir(applied);
    let sha = '';
    try {
      sha = await git.commitVms([bareVm('alpha'), bareVm('beta')], 'beta');
      const list = await waitFor('the apply error', async () => {
        const l = await listVms(up.server);
        return l.sourceError?.stage === 'apply' ? l : undefined;
      }, 30_000);
      expect(list.sourceError!.message).toMatch(new RegExp(`revision ${sha.slice(0, 12)}: .*applied\\.json`));
      expect((await cli(['get', 'vms'], up.server)).stderr).toMatch(/failing since .* \(applying\): revision/);
      expect((await readyz()).status).toBe(503);
    } finally {
      await rmdir(applied);
    }
    await waitFor('beta Running', async () => (await vm(up.server, 'beta'))?.status?.printableStatus === 'Running', 60_000);
    expect((await listVms(up.server)).revision).toBe(sha);
    await waitFor('/readyz 200', async () => (await readyz()).status === 200, 30_000);
    expect((await listVms(up.server)).sourceError).toBeUndefined();
  }, 120_000);
});
