/**
 * Corrupt state files are rebuilt, not trusted or fatal (issue 9, part 5): a truncated
 * applied.json or VM record is moved aside (kept), the backend starts, what runs is adopted,
 * and nothing is pruned or deleted before git says so. StandaloneBackend over a real state
 * dir (tmp); launchers on the in-memory FakeInstanceHandler.
 */
import { mkdtemp, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { KubeObject, Revision } from '../../../reconciler/core/index.js';
import { StandaloneBackend } from '../../../reconciler/standalone/backend.js';
import { ReconcilerMetrics } from '../../../reconciler/standalone/metrics.js';
import { StateStore } from '../../../reconciler/standalone/state-store.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { FakeInstanceHandler } from '../../helpers/fake-node.js';

const vm = (name: string): VirtualMachine => ({
  apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace: 'default' },
  spec: { runStrategy: 'Always', template: { spec: { domain: { resources: { requests: { memory: '128Mi' } }, devices: { disks: [{ name: 'data', disk: { bus: 'virtio' } }] } }, volumes: [{ name: 'data', emptyDisk: { capacity: '1Gi' } }] } } },
});
const revision = (sha: string, names: string[]): Revision => ({ sha: sha.padEnd(40, '0'), manifests: names.flatMap((n) => [vm(n) as unknown as KubeObject, renderLauncherPod(vm(n)) as unknown as KubeObject]) });

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function world() {
  dir = await mkdtemp(join(tmpdir(), 'vo-corrupt-'));
  const node = new FakeInstanceHandler();
  const make = async () => {
    const b = new StandaloneBackend({ store: new StateStore(dir!), agent: node, domains: { exists: async () => false }, log: pino({ level: 'silent' }), metrics: new ReconcilerMetrics({ defaultMetrics: false }), resyncMs: 3_600_000 });
    await b.start();
    return b;
  };
  const settle = async (b: StandaloneBackend) => {
    for (let i = 0; i < 3; i++) {
      b.resync();
      await b.idle();
    }
  };
  return { node, make, settle, dir: dir! };
}

describe('corrupt state files: moved aside, rebuilt from what runs and from git, nothing deleted', () => {
  it.each([
    ['applied.json truncated to half', 'applied.json', 0.5],
    ['applied.json emptied', 'applied.json', 0],
    ['a VM record truncated', 'vms/default_web.json', 0.5],
    ['a VM record emptied', 'vms/default_web.json', 0],
    ['a VM record deleted', 'vms/default_web.json', -1],
  ])('%s: up starts, the VMs keep running under the same instance, nothing pruned', async (_name, file, fraction) => {
    const w = await world();
    let b = await w.make();
    await b.applyRevision(revision('c1', ['web', 'db']));
    await w.settle(b);
    const uids = Object.fromEntries(['web', 'db'].map((n) => [n, b.get('default', n)!.instance!.uid]));
    expect(b.get('default', 'web')?.status?.printableStatus).toBe('Running');
    await b.stop();

    const path = join(w.dir, file);
    const size = (await readFile(path)).length;
    if (fraction < 0) await rm(path);
    else await truncate(path, Math.floor(size * fraction));
    b = await w.make(); // no throw
    const kept = (await readdir(join(w.dir, file.includes('/') ? 'vms' : '.'))).filter((n) => n.includes('.corrupt-'));
    expect(kept).toHaveLength(fraction < 0 ? 0 : 1);
    await w.settle(b);
    // Before git speaks again: nothing stopped, nothing removed.
    expect(w.node.stops).toEqual([]);
    expect(w.node.removedDirs).toEqual([]);

    // The source yields its newest good revision again: the same VMs, adopted, not restarted.
    await b.applyRevision(revision('c1', ['web', 'db']));
    await w.settle(b);
    for (const n of ['web', 'db']) {
      const v = b.get('default', n)!;
      expect(v.status?.printableStatus).toBe('Running');
      expect(v.instance?.uid).toBe(uids[n]);
    }
    expect(w.node.launchers.size).toBe(2); // none started twice
    expect(w.node.stops).toEqual([]);
    expect(w.node.removedDirs).toEqual([]);
    if (fraction >= 0) expect(b.get('default', 'web')!.events.map((e) => e.reason)).toContain('StateRebuilt');
    if (file.startsWith('vms/')) expect(b.get('default', 'web')!.events.map((e) => e.reason)).toContain('Adopted');
    await b.stop();
  });

  it('garbage in up.json does not stop up from starting', async () => {
    const w = await world();
    const store = new StateStore(w.dir);
    await store.init();
    await store.writeUp({ pid: 1, listen: 'x', repo: 'r', branch: 'main', startedAt: '' });
    await truncate(join(w.dir, 'up.json'), 3);
    expect(await store.readUp()).toBeNull();
    expect(store.recovered.map((r) => r.file)).toEqual([join(w.dir, 'up.json')]);
  });
});
