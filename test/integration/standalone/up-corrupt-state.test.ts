/**
 * Corrupt state files under a running `virtops up` (issue 9, part 5), with real launchers on
 * libvirt's test:///default: applied.json and a VM record are truncated, `up` is restarted,
 * and the VMs keep running under the same instances and launcher processes; the corrupt files
 * are kept beside, nothing (pod dirs, emptyDisks, launchers) is deleted.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { bareVm } from './fixture.js';
import { cli, join, launcherPids, startUp, upFixture, vm, waitFor } from './harness.js';

const UP_ARGS = (bare: string) => ['--repo', bare, '--libvirt-uri', 'test:///default', '--interval', '2s'];

describe('virtops up: corrupt state files are rebuilt from what runs', () => {
  const f = upFixture();

  it('applied.json and a VM record truncated, up restarted: same instances, same launchers, nothing deleted', async () => {
    await f.git.commitVms([bareVm('alpha'), bareVm('beta')], 'alpha and beta');
    f.up = await startUp(UP_ARGS(f.git.bare), f.stateDir);
    const before = await Promise.all(['alpha', 'beta'].map((n) => waitFor(`${n} Running`, async () => {
      const v = await vm(f.up!.server, n);
      return v?.status?.printableStatus === 'Running' && v.instance?.pid ? v : undefined;
    })));
    const pids = (await launcherPids(f.stateDir)).map((p) => p.pid).sort();
    // A marker in each VM's pod dir stands for its persistent data (emptyDisks live there).
    for (const v of before) await writeFile(join(v.instance!.podDir, 'keep-me'), 'data');
    await f.up!.stop();

    for (const file of ['applied.json', 'vms/default_alpha.json']) {
      const path = join(f.stateDir, file);
      await truncate(path, Math.floor((await readFile(path)).length / 2));
    }
    f.up = await startUp(UP_ARGS(f.git.bare), f.stateDir);
    for (const b of before) {
      const v = await waitFor(`${b.name} Running again`, async () => {
        const x = await vm(f.up!.server, b.name);
        return x?.status?.printableStatus === 'Running' && x.instance ? x : undefined;
      });
      expect(v.instance!.uid).toBe(b.instance!.uid);
      expect(existsSync(join(v.instance!.podDir, 'keep-me'))).toBe(true);
    }
    expect((await launcherPids(f.stateDir)).map((p) => p.pid).sort()).toEqual(pids);
    expect((await readdir(f.stateDir)).filter((n) => n.startsWith('applied.json.corrupt-'))).toHaveLength(1);
    expect((await readdir(join(f.stateDir, 'vms'))).filter((n) => n.startsWith('default_alpha.json.corrupt-'))).toHaveLength(1);
    const d = await cli(['describe', 'vm', 'alpha'], f.up!.server);
    expect(d.stdout).toMatch(/StateRebuilt/);
    expect(d.stdout).toMatch(/Adopted/);
    expect(f.up!.logText()).toMatch(/a corrupt state file was moved aside/);
  }, 180_000);
});
