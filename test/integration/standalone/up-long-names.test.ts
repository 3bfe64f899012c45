/**
 * Issue 9 part 1 end to end on a single host: a VM whose name and namespace are both 63
 * characters (the Kubernetes maximum) runs under a 64-byte state dir (the longest allowed),
 * with the real `virtops up`, launcher processes and libvirt's test:///default driver; the
 * console socket is where `describe` says, and pruning leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareVm, gitFixture, type GitFixture } from './fixture.js';
import { cleanupStateDir, launcherPids, listVms, startUp, waitFor, type UpProcess } from './harness.js';

const NAME = `n${'a'.repeat(61)}z`; // 63
const NAMESPACE = `s${'b'.repeat(61)}y`; // 63

describe('virtops up: any valid name runs', () => {
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;

  beforeAll(async () => {
    git = await gitFixture();
    const prefix = `/tmp/vo-long-${randomBytes(4).toString('hex')}-`;
    stateDir = prefix + 'x'.repeat(64 - prefix.length);
    expect(Buffer.byteLength(stateDir)).toBe(64);
    await mkdir(stateDir, { recursive: true });
  });

  afterAll(async () => {
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    await git?.cleanup();
  });

  it('a 63-character VM in a 63-character namespace under a 64-byte state dir reaches Running and is pruned cleanly', async () => {
    const vm = bareVm(NAME);
    vm.metadata.namespace = NAMESPACE;
    await git.commitVms([vm], 'long names');
    up = await startUp(['--repo', git.bare, '--libvirt-uri', 'test:///default', '--interval', '2s'], stateDir);
    const running = await waitFor('long-named VM Running', async () => {
      const v = (await listVms(up.server)).vms.find((x) => x.name === NAME && x.namespace === NAMESPACE);
      return v?.status?.printableStatus === 'Running' && v.instance ? v : undefined;
    }).catch(async (err: unknown) => {
      // Say why: the VM as up reports it, and up's log.
      console.error(JSON.stringify((await listVms(up.server)).vms, null, 1), up.logText().slice(-6000));
      throw err;
    });
    expect(running.instance!.domain).toBe(`${NAMESPACE}_${NAME}`);
    for (const socket of [running.instance!.socket, running.instance!.console]) expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(107);
    expect(existsSync(running.instance!.socket)).toBe(true);

    await git.commitVms([bareVm('other')], 'the long-named VM leaves git');
    await waitFor('pruned', async () => !(await listVms(up.server)).vms.some((x) => x.name === NAME));
    await waitFor('its launcher gone', async () => (await launcherPids(running.instance!.uid)).length === 0);
    expect(existsSync(running.instance!.podDir)).toBe(false);
  });
});
