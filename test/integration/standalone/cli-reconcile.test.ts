/**
 * `virtops reconcile` on a single host (the same command as in a cluster, over up's API):
 * it re-reads git at once and answers with the revision applied; KUBECONFIG in the
 * environment does not take the CLI away from an up named with --server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareVm, gitFixture, type GitFixture } from './fixture.js';
import { cleanupStateDir, cli, makeStateDir, startUp, vm, waitFor, type UpProcess } from './harness.js';

describe('virtops reconcile (single host, test:///default)', () => {
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;

  beforeAll(async () => {
    git = await gitFixture();
    stateDir = await makeStateDir();
    await git.commitVms([bareVm('alpha')], 'alpha');
    // A long poll interval: only the reconcile request (or the watcher) brings the next commit.
    up = await startUp(['--repo', git.bare, '--libvirt-uri', 'test:///default', '--interval', '10m', '--no-freshness-check'], stateDir);
    await waitFor('alpha Running', async () => (await vm(up.server, 'alpha'))?.status?.printableStatus === 'Running');
  }, 120_000);

  afterAll(async () => {
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    await git?.cleanup();
  });

  it('re-reads git and answers with the applied revision', async () => {
    const sha = await git.commitVms([bareVm('alpha'), bareVm('beta')], 'add beta');
    const r = await cli(['reconcile'], up.server, { KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`virtops up: source checked; applied revision ${sha.slice(0, 12)}`);
    await waitFor('beta Running', async () => (await vm(up.server, 'beta'))?.status?.printableStatus === 'Running');
  }, 120_000);
});
