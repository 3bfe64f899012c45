/**
 * Instancetypes on a single host (`virtops up`), StandaloneBackend driven directly: the VM
 * expands against the applied revision's instancetypes and preferences when it starts; an
 * instancetype edit in git changes no running VM and shows RestartRequired until a restart
 * applies it; status.instancetypeRef/preferenceRef name the recorded revisions; a failed
 * expansion is a condition and an event, not a crash.
 *
 *   launchers  FakeInstanceHandler (test/helpers/fake-node.ts, a fake named as such)
 *   state dir  a real StateStore in a temp dir
 *   clock      injected
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { KubeObject, Revision } from '../../../reconciler/core/index.js';
import { revisionsDir, StandaloneBackend, type VmView } from '../../../reconciler/standalone/backend.js';
import { ReconcilerMetrics } from '../../../reconciler/standalone/metrics.js';
import { StateStore } from '../../../reconciler/standalone/state-store.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { FakeInstanceHandler } from '../../helpers/fake-node.js';

const log = pino({ level: process.env.DBG ? 'debug' : 'silent' });
const T0 = Date.parse('2025-01-01T00:00:00Z');

const clarge = (vcpus: number, memory = '2Gi'): KubeObject => ({
  apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineInstancetype',
  metadata: { name: 'clarge', namespace: 'default' }, spec: { cpu: { guest: vcpus }, memory: { guest: memory } },
}) as unknown as KubeObject;
const virtio: KubeObject = {
  apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachinePreference',
  metadata: { name: 'virtio', namespace: 'default' }, spec: { devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio' } },
} as unknown as KubeObject;

function vm(extraDomain: Record<string, unknown> = {}): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'cirros', namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      instancetype: { kind: 'VirtualMachineInstancetype', name: 'clarge' },
      preference: { kind: 'VirtualMachinePreference', name: 'virtio' },
      template: {
        spec: {
          domain: { devices: { disks: [{ name: 'root', disk: {} }] }, ...extraDomain },
          volumes: [{ name: 'root', containerDisk: { image: 'registry.local/tiny:1' } }],
        },
      },
    },
  } as VirtualMachine;
}

interface Harness {
  dir: string;
  node: FakeInstanceHandler;
  backend: StandaloneBackend;
  apply(objects: KubeObject[], vms: VirtualMachine[]): Promise<void>;
  settle(): Promise<void>;
  view(): VmView;
  restartUp(): Promise<void>;
  close(): Promise<void>;
}

let current: Harness | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function harness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-instancetype-'));
  const clock = { t: T0 };
  const node = new FakeInstanceHandler();
  node.now = () => clock.t;
  let seq = 0;
  const make = async () => {
    const b = new StandaloneBackend({
      store: new StateStore(dir), agent: node, domains: { exists: () => Promise.resolve(false) }, log,
      metrics: new ReconcilerMetrics({ defaultMetrics: false }), resyncMs: 3_600_000, now: () => clock.t,
    });
    await b.start();
    return b;
  };
  const h: Harness = {
    dir,
    node,
    backend: await make(),
    async apply(objects, vms) {
      const manifests: KubeObject[] = [...objects];
      for (const v of vms) manifests.push(v as unknown as KubeObject, renderLauncherPod(v) as unknown as KubeObject);
      const rev: Revision = { sha: `beef${++seq}`.padEnd(40, '0'), manifests };
      clock.t += 1000;
      await h.backend.applyRevision(rev);
      await h.settle();
    },
    async settle() {
      for (let i = 0; i < 3; i++) {
        h.backend.resync();
        await h.backend.idle();
      }
    },
    view() {
      const v = h.backend.get('default', 'cirros');
      if (!v) throw new Error('no VM cirros');
      return v;
    },
    async restartUp() {
      await h.backend.stop();
      h.backend = await make();
      await h.settle();
    },
    async close() {
      await h.backend.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  current = h;
  return h;
}

const condition = (v: VmView, type: string) => v.status?.conditions?.find((c) => c.type === type);
const liveSpec = (h: Harness) => h.node.live().record.spec;

describe('single host: instancetypes and preferences', () => {
  it('starts the VM expanded (4 vCPUs, 2Gi, virtio) and records the revisions it started from', async () => {
    const h = await harness();
    await h.apply([clarge(4), virtio], [vm()]);
    const v = h.view();
    expect(v.status?.printableStatus).toBe('Running');
    expect(liveSpec(h).domain.cpu).toMatchObject({ sockets: 4, cores: 1, threads: 1 });
    expect(liveSpec(h).domain.memory).toEqual({ guest: '2Gi' });
    expect(liveSpec(h).domain.devices.disks).toEqual([{ name: 'root', disk: { bus: 'virtio' } }]);
    expect(h.node.live().vmi?.metadata.annotations).toMatchObject({ 'kubevirt.io/instancetype-name': 'clarge', 'kubevirt.io/preference-name': 'virtio' });
    expect(condition(v, 'RestartRequired')).toBeUndefined();
    expect(v.status?.instancetypeRef).toMatchObject({ kind: 'VirtualMachineInstancetype', name: 'clarge', controllerRevisionRef: { name: expect.stringMatching(/^cirros-clarge-v1beta1-[0-9a-f]{12}$/) } });
    expect(v.status?.preferenceRef).toMatchObject({ kind: 'VirtualMachinePreference', name: 'virtio' });
    const files = await readdir(revisionsDir(h.dir, 'default', 'cirros'));
    expect(files.sort()).toEqual([`${v.status!.instancetypeRef!.controllerRevisionRef!.name}.json`, `${v.status!.preferenceRef!.controllerRevisionRef!.name}.json`].sort());
    const stored = JSON.parse(await readFile(join(revisionsDir(h.dir, 'default', 'cirros'), files.find((f) => f.includes('clarge'))!), 'utf8'));
    expect(stored).toMatchObject({ apiVersion: 'apps/v1', kind: 'ControllerRevision', data: { kind: 'VirtualMachineInstancetype', spec: { cpu: { guest: 4 } } } });
  });

  it('an instancetype edit in git changes no running VM, shows RestartRequired, and applies after a restart', async () => {
    const h = await harness();
    await h.apply([clarge(4), virtio], [vm()]);
    const before = h.view();
    const uid = before.instance!.uid;
    const firstRevision = before.status!.instancetypeRef!.controllerRevisionRef!.name;

    await h.apply([clarge(8, '4Gi'), virtio], [vm()]);
    let v = h.view();
    expect(v.instance?.uid).toBe(uid);
    expect(liveSpec(h).domain.cpu).toMatchObject({ sockets: 4 });
    expect(condition(v, 'RestartRequired')).toMatchObject({ status: 'True' });
    expect(v.events.filter((e) => e.reason === 'RestartRequired').at(-1)?.message).toContain(`instancetype VirtualMachineInstancetype clarge (revision ${firstRevision} → cirros-clarge-v1beta1-`);
    expect(v.status?.instancetypeRef?.controllerRevisionRef?.name).toBe(firstRevision);

    // `up` restarts: nothing changes for the running VM
    await h.restartUp();
    v = h.view();
    expect(v.instance?.uid).toBe(uid);
    expect(v.status?.instancetypeRef?.controllerRevisionRef?.name).toBe(firstRevision);
    expect(condition(v, 'RestartRequired')).toMatchObject({ status: 'True' });

    await h.backend.requestAction('default', 'cirros', 'restart');
    await h.settle();
    v = h.view();
    expect(v.instance?.uid).not.toBe(uid);
    expect(liveSpec(h).domain.cpu).toMatchObject({ sockets: 8 });
    expect(liveSpec(h).domain.memory).toEqual({ guest: '4Gi' });
    expect(condition(v, 'RestartRequired')).toBeUndefined();
    expect(v.status?.instancetypeRef?.controllerRevisionRef?.name).not.toBe(firstRevision);
  });

  it('an unresolvable reference is a Failure condition and a Warning event; nothing starts', async () => {
    const h = await harness();
    await h.apply([virtio], [vm()]);
    const v = h.view();
    expect(v.instance).toBeUndefined();
    expect(h.node.launchers.size).toBe(0);
    expect(condition(v, 'Failure')).toMatchObject({ status: 'True', reason: 'InstancetypeExpansionFailed', message: expect.stringContaining('spec.instancetype.name: VirtualMachineInstancetype "clarge" in namespace "default" not found') });
    expect(v.events.filter((e) => e.reason === 'InstancetypeExpansionFailed')).toHaveLength(1);
  });

  it('a VM setting CPU beside its instancetype is refused naming both fields', async () => {
    const h = await harness();
    await h.apply([clarge(4), virtio], [vm({ cpu: { sockets: 2 } })]);
    const v = h.view();
    expect(v.instance).toBeUndefined();
    expect(condition(v, 'Failure')?.message).toContain('VM field(s) spec.template.spec.domain.cpu.sockets conflicts with selected instance type (VirtualMachineInstancetype clarge sets spec.cpu.guest)');
  });

  it('the instancetype removed from git while the VM runs: it keeps running, unchanged, and an event says why', async () => {
    const h = await harness();
    await h.apply([clarge(4), virtio], [vm()]);
    const uid = h.view().instance!.uid;
    await h.apply([virtio], [vm()]);
    const v = h.view();
    expect(v.instance?.uid).toBe(uid);
    expect(v.status?.printableStatus).toBe('Running');
    expect(condition(v, 'RestartRequired')).toBeUndefined();
    expect(v.events.find((e) => e.reason === 'InstancetypeExpansionFailed')?.message).toContain('the running instance keeps the spec it started with');
    // put back: all quiet again
    await h.apply([clarge(4), virtio], [vm()]);
    expect(h.view().instance?.uid).toBe(uid);
    expect(condition(h.view(), 'RestartRequired')).toBeUndefined();
  });

  it('diff expands too: a running instancetype VM shows no spurious change', async () => {
    const h = await harness();
    await h.apply([clarge(4), virtio], [vm()]);
    const d = await h.backend.diff();
    expect(d.entries).toEqual([{ vm: 'default/cirros', change: 'unchanged', actions: [{ type: 'none', reason: expect.not.stringContaining('RestartRequired') }] }]);
  });
});
