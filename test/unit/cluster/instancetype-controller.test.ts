/**
 * The cluster VM controller with instancetypes and preferences, against FakeKubeClient
 * (test/helpers/fake-kube.ts, a fake named as such): the VMI is expanded from the objects on
 * the API server, the launcher Pod reserves what the expanded VMI needs, a ControllerRevision
 * per object is stored at start and named in status.instancetypeRef/preferenceRef, an edit
 * of the instancetype leaves the running VMI alone with RestartRequired until a restart, and
 * an unresolvable reference is a Warning and no start, never a silent default.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { revisionName } from '../../../api/instancetype-revision.js';
import type { InstancetypeObject } from '../../../api/instancetype.js';
import { VmController } from '../../../reconciler/cluster/controller.js';
import { ANNOTATION_INSTANCETYPE_REFS, instancetypeStatusRefs, withResourcesOf } from '../../../reconciler/cluster/instances.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { computeOverhead } from '../../../synth/overhead.js';
import { MiB, parseQuantity } from '../../../synth/quantity.js';
import { FakeKubeClient } from '../../helpers/fake-kube.js';

const log = pino({ level: 'silent' });
const T0 = Date.parse('2025-01-01T00:00:00Z');
const NS = 'default';
const KV = 'kubevirt.io/v1';
const IT = 'instancetype.kubevirt.io/v1beta1';

interface Pod {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { nodeName?: string; containers: { name: string; resources?: { requests?: Record<string, string> } }[] };
}
interface Revision {
  metadata: { name: string; ownerReferences?: { kind: string; uid: string }[] };
  data: InstancetypeObject;
}

function instancetype(cpus: number, memory: string): InstancetypeObject {
  return { apiVersion: IT, kind: 'VirtualMachineInstancetype', metadata: { name: 'small', namespace: NS }, spec: { cpu: { guest: cpus }, memory: { guest: memory } } };
}
const preference: InstancetypeObject = { apiVersion: IT, kind: 'VirtualMachinePreference', metadata: { name: 'virtio', namespace: NS }, spec: { cpu: { preferredCPUTopology: 'cores' }, devices: { preferredDiskBus: 'virtio' } } };

function vmManifest(extraCpu = false): VirtualMachine {
  return {
    apiVersion: KV,
    kind: 'VirtualMachine',
    metadata: { name: 'web', namespace: NS },
    spec: {
      runStrategy: 'Always',
      instancetype: { kind: 'VirtualMachineInstancetype', name: 'small' },
      preference: { kind: 'VirtualMachinePreference', name: 'virtio' },
      template: {
        spec: {
          domain: { devices: { disks: [{ name: 'root', disk: {} }] }, ...(extraCpu ? { cpu: { cores: 4 } } : {}) },
          volumes: [{ name: 'root', containerDisk: { image: 'registry.local/tiny:1' } }],
        },
      },
    },
  };
}

const running: VmController[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});

function world() {
  const clock = { t: T0 };
  const kube = new FakeKubeClient({ now: () => clock.t });
  const controller = new VmController(kube, { log, now: () => clock.t, statusCoalesceMs: 0, resyncMs: 3_600_000 });
  running.push(controller);
  const w = {
    kube,
    controller,
    async start() {
      await controller.start();
      await controller.idle();
    },
    async settle() {
      await controller.reconcile(`${NS}/web`);
      await controller.idle();
    },
    vm: () => kube.get<VirtualMachine>(KV, 'VirtualMachine', 'web', NS)!,
    vmi: () => kube.get<VirtualMachineInstance>(KV, 'VirtualMachineInstance', 'web', NS),
    pods: () => kube.list<Pod>('v1', 'Pod', NS).filter((p) => p.metadata.labels?.['vm.kubevirt.io/name'] === 'web'),
    revisions: () => kube.list<Revision>('apps/v1', 'ControllerRevision', NS),
    condition: (type: string) => w.vm().status?.conditions?.find((c) => c.type === type),
    warnings: () => kube.events.filter((e) => e.type === 'Warning'),
    /** The node agent stopped the guest of the terminating VMI and let it go. */
    agentFinalizes() {
      kube.modify<VirtualMachineInstance>(KV, 'VirtualMachineInstance', 'web', NS, (v) => {
        v.metadata.finalizers = [];
      });
    },
  };
  return w;
}

const computeRequests = (pod: Pod) => pod.spec.containers.find((c) => c.name === 'compute')!.resources!.requests!;

describe('cluster controller: a VM with an instancetype and a preference', () => {
  it('starts a VMI expanded from the API server objects, a Pod sized by it, and one revision per object named in status', async () => {
    const w = world();
    w.kube.seed(instancetype(2, '256Mi'));
    w.kube.seed(preference);
    const vm = w.kube.seed<VirtualMachine>(vmManifest());
    await w.start();

    const vmi = w.vmi()!;
    expect(vmi.spec.domain.cpu).toMatchObject({ sockets: 1, cores: 2, threads: 1 });
    expect(vmi.spec.domain.memory?.guest).toBe('256Mi');
    expect(vmi.spec.domain.devices.disks?.[0]?.disk?.bus).toBe('virtio');
    expect(vmi.metadata.annotations).toMatchObject({ 'kubevirt.io/instancetype-name': 'small', 'kubevirt.io/preference-name': 'virtio' });

    const [pod] = w.pods();
    const overhead = computeOverhead(vmi.spec).total;
    expect(parseQuantity(computeRequests(pod!).memory!)).toBe(256 * MiB + overhead);

    const revs = w.revisions();
    expect(revs.map((r) => r.data.kind).sort()).toEqual(['VirtualMachineInstancetype', 'VirtualMachinePreference']);
    for (const r of revs) expect(r.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'VirtualMachine', uid: vm.metadata.uid })]);
    const itRev = revs.find((r) => r.data.kind === 'VirtualMachineInstancetype')!;
    expect(w.vm().status?.instancetypeRef).toEqual({ kind: 'VirtualMachineInstancetype', name: 'small', controllerRevisionRef: { name: itRev.metadata.name } });
    expect(w.vm().status?.preferenceRef?.controllerRevisionRef?.name).toBe(revs.find((r) => r.data.kind === 'VirtualMachinePreference')!.metadata.name);
  });

  it('sizes the Pod from the expanded VMI when the template in git was rendered from the unexpanded VM', async () => {
    const w = world();
    w.kube.seed(instancetype(2, '256Mi'));
    w.kube.seed(preference);
    w.kube.seed<VirtualMachine>(vmManifest());
    const template = renderLauncherPod(vmManifest(), { emulation: 'kvm' });
    w.controller.setTemplates('abc123', new Map([[`${NS}/web`, template]]));
    await w.start();

    const vmi = w.vmi()!;
    const [pod] = w.pods();
    expect(parseQuantity(computeRequests(pod!).memory!)).toBe(256 * MiB + computeOverhead(vmi.spec, { emulation: 'kvm' }).total);
    expect(JSON.parse(pod!.metadata.annotations!['virtops.io/memory-overhead']!)).not.toHaveProperty('tcg');
  });

  it('an instancetype edit leaves the running VMI alone with RestartRequired; the next VMI has the new size and revision', async () => {
    const w = world();
    w.kube.seed(instancetype(2, '256Mi'));
    w.kube.seed(preference);
    w.kube.seed<VirtualMachine>(vmManifest());
    await w.start();
    const first = w.vmi()!;
    const firstRef = w.vm().status?.instancetypeRef?.controllerRevisionRef?.name;

    w.kube.modify<InstancetypeObject>(IT, 'VirtualMachineInstancetype', 'small', NS, (o) => {
      (o.spec as { memory: { guest: string } }).memory.guest = '512Mi';
    });
    await w.controller.idle();
    expect(w.vmi()!.metadata.uid).toBe(first.metadata.uid);
    expect(w.vmi()!.spec).toEqual(first.spec);
    expect(w.condition('RestartRequired')?.status).toBe('True');
    expect(w.kube.events.find((e) => e.reason === 'RestartRequired')?.message).toMatch(new RegExp(`instancetype VirtualMachineInstancetype small \\(revision ${firstRef} → `));
    expect(w.vm().status?.instancetypeRef?.controllerRevisionRef?.name).toBe(firstRef);

    // A restart: the VMI goes (the agent finalises it), the controller starts a new one.
    await w.kube.delete({ apiVersion: KV, kind: 'VirtualMachineInstance', metadata: { name: 'web', namespace: NS } });
    w.agentFinalizes();
    await w.settle();
    await w.settle();
    const second = w.vmi()!;
    expect(second.metadata.uid).not.toBe(first.metadata.uid);
    expect(second.spec.domain.memory?.guest).toBe('512Mi');
    const newRef = w.vm().status?.instancetypeRef?.controllerRevisionRef?.name;
    expect(newRef).toBe(revisionName('web', w.kube.get<InstancetypeObject>(IT, 'VirtualMachineInstancetype', 'small', NS)!));
    expect(newRef).not.toBe(firstRef);
    // The old instancetype revision went with the VMI that started from it; the preference's is unchanged.
    expect(w.revisions().map((r) => r.metadata.name)).not.toContain(firstRef);
    expect(w.revisions()).toHaveLength(2);
    expect(w.condition('RestartRequired')).toBeUndefined();
  });

  it('an instancetype that does not exist: no VMI, a Warning naming the matcher; started once it is applied', async () => {
    const w = world();
    w.kube.seed(preference);
    w.kube.seed<VirtualMachine>(vmManifest());
    await w.start();
    expect(w.vmi()).toBeUndefined();
    const warning = w.warnings().find((e) => e.reason === 'InstancetypeExpansionFailed');
    expect(warning?.message).toMatch(/spec\.instancetype/);
    expect(warning?.message).toMatch(/small/);
    expect(w.condition('Failure')?.status).toBe('True');

    w.kube.seed(instancetype(1, '128Mi'));
    await w.controller.idle();
    await w.settle();
    expect(w.vmi()?.spec.domain.memory?.guest).toBe('128Mi');
  });

  it('cluster-scoped kinds (the matcher default) resolve without a namespace, from the cache or a live read', async () => {
    const w = world();
    w.kube.seed({ apiVersion: IT, kind: 'VirtualMachineClusterInstancetype', metadata: { name: 'u1.small' }, spec: { cpu: { guest: 1 }, memory: { guest: '2Gi' } } });
    w.kube.seed({ apiVersion: IT, kind: 'VirtualMachineClusterPreference', metadata: { name: 'fedora' }, spec: { devices: { preferredDiskBus: 'sata' } } });
    const m = vmManifest();
    m.spec.instancetype = { name: 'u1.small' };
    m.spec.preference = { name: 'fedora' };
    w.kube.seed<VirtualMachine>(m);
    await w.start();
    const vmi = w.vmi()!;
    expect(vmi.spec.domain.memory?.guest).toBe('2Gi');
    expect(vmi.spec.domain.devices.disks?.[0]?.disk?.bus).toBe('sata');
    expect(vmi.metadata.annotations).toMatchObject({ 'kubevirt.io/cluster-instancetype-name': 'u1.small', 'kubevirt.io/cluster-preference-name': 'fedora' });
    expect(w.vm().status?.instancetypeRef).toMatchObject({ kind: 'VirtualMachineClusterInstancetype', name: 'u1.small' });
    // The revisions live in the VM's namespace, whatever the object's scope.
    expect(w.revisions()).toHaveLength(2);
  });

  it('a VM setting CPU beside its instancetype is refused naming both fields', async () => {
    const w = world();
    w.kube.seed(instancetype(2, '256Mi'));
    w.kube.seed(preference);
    w.kube.seed<VirtualMachine>(vmManifest(true));
    await w.start();
    expect(w.vmi()).toBeUndefined();
    const message = w.warnings().find((e) => e.reason === 'InstancetypeExpansionFailed')?.message ?? '';
    expect(message).toMatch(/spec\.template\.spec\.domain\.cpu/);
    expect(message).toMatch(/cpu\.guest/);
  });
});

describe('cluster instances: instancetype helpers (pure)', () => {
  const vm = vmManifest();
  it('status refs come from the VMI, else stay as the status shows them', () => {
    const refs = { instancetypeRef: { kind: 'VirtualMachineInstancetype', name: 'small', controllerRevisionRef: { name: 'web-small-v1beta1-aaa' } } };
    const vmi = { apiVersion: KV, kind: 'VirtualMachineInstance', metadata: { name: 'web', annotations: { [ANNOTATION_INSTANCETYPE_REFS]: JSON.stringify(refs) } }, spec: vm.spec.template.spec } as VirtualMachineInstance;
    expect(instancetypeStatusRefs(vm, vmi, undefined)).toEqual(refs);
    const previous = { preferenceRef: { kind: 'VirtualMachinePreference', name: 'virtio' } };
    expect(instancetypeStatusRefs(vm, undefined, previous)).toEqual(previous);
    const plain = { ...vm, spec: { ...vm.spec } };
    delete plain.spec.instancetype;
    delete plain.spec.preference;
    expect(instancetypeStatusRefs(plain, vmi, previous)).toEqual({});
  });

  it('withResourcesOf recomputes only the compute container and the overhead annotation', () => {
    const template = renderLauncherPod(vm);
    const vmi = { apiVersion: KV, kind: 'VirtualMachineInstance', metadata: { name: 'web' }, spec: { ...structuredClone(vm.spec.template.spec), domain: { ...vm.spec.template.spec.domain, cpu: { cores: 2 }, memory: { guest: '1Gi' } } } } as VirtualMachineInstance;
    const pod = withResourcesOf(template, vmi);
    const requests = pod.spec.containers.find((c) => c.name === 'compute')!.resources!.requests!;
    expect(parseQuantity(requests.memory!)).toBe(1024 * MiB + computeOverhead(vmi.spec).total);
    expect(pod.spec.containers.filter((c) => c.name !== 'compute')).toEqual(template.spec.containers.filter((c) => c.name !== 'compute'));
  });

  it('synth renders the launcher Pod of an instancetype VM from its expansion against the given manifests', () => {
    const pod = renderLauncherPod(vm, {}, [instancetype(2, '256Mi'), preference]);
    const requests = pod.spec.containers.find((c) => c.name === 'compute')!.resources!.requests!;
    const expandedSpec = { ...vm.spec.template.spec, domain: { ...vm.spec.template.spec.domain, cpu: { sockets: 1, cores: 2, threads: 1 }, memory: { guest: '256Mi' } } };
    expect(parseQuantity(requests.memory!)).toBe(256 * MiB + computeOverhead(expandedSpec).total);
    // Not resolvable here (it may be on the cluster): rendered as is.
    expect(() => renderLauncherPod(vm, {}, [preference])).not.toThrow();
  });
});
