import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { expandVm, guestTopology, instancetypeVmiAnnotations, resolverFor, formatExpansionErrors, type ExpandResult, type Expanded } from '../../../api/expand.js';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { InstancetypeObject } from '../../../api/instancetype.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../integration/instancetype/fixtures');
const load = (file: string): unknown[] =>
  parseAllDocuments(readFileSync(path.join(FIXTURES, file), 'utf8')).map((d) => d.toJS()).filter(Boolean);

function ok(r: ExpandResult): Expanded {
  if ('errors' in r) throw new Error(formatExpansionErrors(r.errors));
  return r;
}

function errorsOf(r: ExpandResult) {
  if (!('errors' in r)) throw new Error('expected errors, got an expanded VM');
  return r.errors;
}

const instancetype = (name: string, spec: object, kind = 'VirtualMachineClusterInstancetype', namespace?: string): InstancetypeObject =>
  ({ apiVersion: 'instancetype.kubevirt.io/v1beta1', kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec }) as InstancetypeObject;
const preference = (name: string, spec: object, kind = 'VirtualMachineClusterPreference', namespace?: string): InstancetypeObject =>
  ({ apiVersion: 'instancetype.kubevirt.io/v1beta1', kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec }) as InstancetypeObject;

function vm(spec: Partial<VirtualMachine['spec']>, templateSpec: object = {}, namespace?: string): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'web', ...(namespace ? { namespace } : {}) },
    spec: { runStrategy: 'Always', ...spec, template: { spec: { domain: { devices: {} }, ...templateSpec } } },
  } as VirtualMachine;
}

describe('expandVm: KubeVirt example vm-cirros-clarge-virtio', () => {
  const objects = [...load('clarge.yaml'), ...load('virtio.yaml')];
  const example = load('vm-cirros-clarge-virtio.yaml')[0] as VirtualMachine;

  it('gives 4 vCPUs (all sockets, the default topology), 2Gi and virtio buses; matchers kept', () => {
    const { vm: out, instancetype: it, preference: pref } = ok(expandVm(example, resolverFor(objects)));
    const spec = out.spec.template.spec;
    expect(spec.domain.cpu).toMatchObject({ sockets: 4, cores: 1, threads: 1 });
    expect(spec.domain.memory).toEqual({ guest: '2Gi' });
    expect(spec.domain.devices.disks?.map((d) => d.disk?.bus)).toEqual(['virtio', 'virtio']);
    expect(spec.domain.devices.interfaces).toEqual([{ name: 'default', masquerade: {}, model: 'virtio' }]);
    expect(spec.networks).toEqual([{ name: 'default', pod: {} }]);
    expect(out.spec.instancetype).toEqual({ kind: 'VirtualMachineInstancetype', name: 'clarge' });
    expect(out.spec.preference).toEqual({ kind: 'VirtualMachinePreference', name: 'virtio' });
    expect(it?.metadata.name).toBe('clarge');
    expect(pref?.metadata.name).toBe('virtio');
  });

  it('does not modify its input', () => {
    const before = structuredClone(example);
    ok(expandVm(example, resolverFor(objects)));
    expect(example).toEqual(before);
  });

  it('refuses the current upstream file (memory.guest beside the instancetype), as KubeVirt does', () => {
    const current = load('vm-cirros-clarge-virtio-current.yaml')[0] as VirtualMachine;
    const errors = errorsOf(expandVm(current, resolverFor(objects)));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.field).toBe('spec.template.spec.domain.memory.guest');
    expect(errors[0]!.message).toContain('VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type');
    expect(errors[0]!.message).toContain('spec.memory.guest');
  });
});

describe('expandVm: conflicts name both fields', () => {
  const resolve = resolverFor([instancetype('u1.medium', { cpu: { guest: 1 }, memory: { guest: '4Gi' } })]);

  it('cpu.sockets beside an instancetype', () => {
    const errors = errorsOf(expandVm(vm({ instancetype: { name: 'u1.medium' } }, { domain: { cpu: { sockets: 2 }, devices: {} } }), resolve));
    expect(errors).toEqual([{
      field: 'spec.template.spec.domain.cpu.sockets',
      message: 'VM field(s) spec.template.spec.domain.cpu.sockets conflicts with selected instance type (VirtualMachineClusterInstancetype u1.medium sets spec.cpu.guest)',
      fix: expect.stringContaining('remove spec.template.spec.domain.cpu.sockets'),
    }]);
  });

  it('every CPU conflict at once, plus memory and the rest', () => {
    const r = expandVm(vm({ instancetype: { name: 'u1.medium' } }, {
      domain: { cpu: { cores: 2, threads: 2 }, resources: { requests: { cpu: '2', memory: '1Gi' } }, devices: {} },
      schedulerName: 'mine',
    }), resolverFor([instancetype('u1.medium', { cpu: { guest: 1 }, memory: { guest: '4Gi' }, schedulerName: 'theirs' })]));
    expect(errorsOf(r).map((e) => e.field)).toEqual([
      'spec.template.spec.schedulerName',
      'spec.template.spec.domain.resources.requests.cpu',
      'spec.template.spec.domain.cpu.cores',
      'spec.template.spec.domain.cpu.threads',
      'spec.template.spec.domain.resources.requests.memory',
    ]);
  });

  it('an annotation with another value conflicts; the same value does not', () => {
    const it1 = instancetype('n1.medium', { cpu: { guest: 4 }, memory: { guest: '4Gi' }, annotations: { 'cpu-quota.crio.io': 'disable' } });
    const same = vm({ instancetype: { name: 'n1.medium' } });
    same.spec.template.metadata = { annotations: { 'cpu-quota.crio.io': 'disable' } };
    expect(ok(expandVm(same, resolverFor([it1]))).vm.spec.template.metadata?.annotations).toEqual({ 'cpu-quota.crio.io': 'disable' });
    const other = vm({ instancetype: { name: 'n1.medium' } });
    other.spec.template.metadata = { annotations: { 'cpu-quota.crio.io': 'enable' } };
    expect(errorsOf(expandVm(other, resolverFor([it1])))[0]!.field).toBe('spec.template.metadata.annotations.cpu-quota.crio.io');
  });
});

describe('expandVm: what an instancetype sets', () => {
  it('hugepages, dedicated CPUs, ioThreadsPolicy, maxSockets, nodeSelector; memory overcommit lowers the request', () => {
    const cx = instancetype('cx1.large', {
      cpu: { guest: 2, maxSockets: 2, dedicatedCPUPlacement: true, isolateEmulatorThread: true, numa: { guestMappingPassthrough: {} } },
      memory: { guest: '4Gi', hugepages: { pageSize: '2Mi' } },
      ioThreadsPolicy: 'auto',
      nodeSelector: { 'node-role.kubevirt.io/worker': '' },
    });
    const spec = ok(expandVm(vm({ instancetype: { name: 'cx1.large' } }), resolverFor([cx]))).vm.spec.template.spec;
    expect(spec.domain.cpu).toEqual({
      sockets: 2, cores: 1, threads: 1, maxSockets: 2, dedicatedCpuPlacement: true, isolateEmulatorThread: true, numa: { guestMappingPassthrough: {} },
    });
    expect(spec.domain.memory).toEqual({ guest: '4Gi', hugepages: { pageSize: '2Mi' } });
    expect(spec.domain.ioThreadsPolicy).toBe('auto');
    expect(spec.nodeSelector).toEqual({ 'node-role.kubevirt.io/worker': '' });

    const o1 = instancetype('o1.medium', { cpu: { guest: 1 }, memory: { guest: '4Gi', overcommitPercent: 50 } });
    const o = ok(expandVm(vm({ instancetype: { name: 'o1.medium' } }), resolverFor([o1]))).vm.spec.template.spec;
    expect(o.domain.resources?.requests).toEqual({ memory: '2Gi' });
  });

  it('lays vCPUs out as the preference prefers', () => {
    expect(guestTopology(8, { cpu: { preferredCPUTopology: 'cores' } })).toEqual({ sockets: 1, cores: 8, threads: 1 });
    expect(guestTopology(8, { cpu: { preferredCPUTopology: 'threads' } })).toEqual({ sockets: 1, cores: 1, threads: 8 });
    expect(guestTopology(8, { cpu: { preferredCPUTopology: 'spread' } })).toEqual({ sockets: 4, cores: 2, threads: 1 });
    expect(guestTopology(8, { cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'SocketsCoresThreads' } } })).toEqual({ sockets: 2, cores: 2, threads: 2 });
    expect(guestTopology(8, { cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'CoresThreads', ratio: 4 } } })).toEqual({ sockets: 1, cores: 2, threads: 4 });
    expect(guestTopology(1, { cpu: { preferredCPUTopology: 'cores' } })).toEqual({ sockets: 1, cores: 1, threads: 1 });
  });

  it('refuses a spread the vCPU count does not divide', () => {
    const r = expandVm(vm({ instancetype: { name: 'three' }, preference: { name: 'spread' } }),
      resolverFor([instancetype('three', { cpu: { guest: 3 }, memory: { guest: '1Gi' } }), preference('spread', { cpu: { preferredCPUTopology: 'spread' } })]));
    expect(errorsOf(r)[0]).toMatchObject({ field: 'instancetype.spec.cpu.guest', message: expect.stringContaining('3 vCPUs') });
  });
});

describe('expandVm: preferences only default', () => {
  const pref = preference('fedora', {
    devices: { preferredDiskBus: 'sata', preferredInterfaceModel: 'e1000', preferredRng: {}, preferredCdromBus: 'scsi' },
    firmware: { preferredEfi: { secureBoot: true } },
    features: { preferredSmm: {}, preferredAcpi: { enabled: true } },
    machine: { preferredMachineType: 'pc-q35-rhel9' },
    clock: { preferredClockOffset: { utc: {} }, preferredTimer: { hpet: { present: false } } },
    preferredTerminationGracePeriodSeconds: 180,
    preferredArchitecture: 'amd64',
    cpu: { preferredCPUTopology: 'cores' },
    annotations: { 'vm.kubevirt.io/os': 'linux' },
  });

  it('fills what the VM leaves unset', () => {
    const input = vm({ preference: { name: 'fedora' } }, {
      domain: { devices: { disks: [{ name: 'root' }, { name: 'iso', cdrom: {} }] } },
      volumes: [{ name: 'root', containerDisk: { image: 'x' } }, { name: 'iso', containerDisk: { image: 'y' } }, { name: 'extra', emptyDisk: { capacity: '1Gi' } }],
    });
    const spec = ok(expandVm(input, resolverFor([pref]))).vm.spec.template.spec as unknown as Record<string, any>;
    expect(spec.domain.devices.disks).toEqual([
      { name: 'root', disk: { bus: 'sata' } },
      { name: 'iso', cdrom: { bus: 'scsi' } },
      { name: 'extra', disk: { bus: 'sata' } }, // a volume without a disk gets one, as KubeVirt's expand does
    ]);
    expect(spec.domain.devices.interfaces).toEqual([{ name: 'default', masquerade: {}, model: 'e1000' }]);
    expect(spec.domain.devices.rng).toEqual({});
    expect(spec.domain.firmware).toEqual({ bootloader: { efi: { secureBoot: true } } });
    expect(spec.domain.features).toEqual({ smm: {}, acpi: { enabled: true } });
    expect(spec.domain.machine).toEqual({ type: 'pc-q35-rhel9' });
    expect(spec.domain.clock).toEqual({ utc: {}, timer: { hpet: { present: false } } });
    expect(spec.terminationGracePeriodSeconds).toBe(180);
    expect(spec.architecture).toBe('amd64');
  });

  it('never overrides what the VM sets', () => {
    const input = vm({ preference: { name: 'fedora' } }, {
      domain: {
        devices: { disks: [{ name: 'root', disk: { bus: 'scsi' } }], interfaces: [{ name: 'n', bridge: {}, model: 'virtio' }], rng: {} },
        firmware: { bootloader: { bios: {} } },
        features: { smm: { enabled: false }, acpi: { enabled: false } },
        machine: { type: 'q35' },
        clock: { timezone: 'Europe/Berlin', timer: { rtc: { present: true } } },
      },
      networks: [{ name: 'n', pod: {} }],
      volumes: [{ name: 'root', containerDisk: { image: 'x' } }],
      terminationGracePeriodSeconds: 5,
      architecture: 'arm64',
    });
    input.spec.template.metadata = { annotations: { 'vm.kubevirt.io/os': 'windows' } };
    const out = ok(expandVm(input, resolverFor([pref]))).vm;
    const spec = out.spec.template.spec as unknown as Record<string, any>;
    expect(spec.domain.devices.disks).toEqual([{ name: 'root', disk: { bus: 'scsi' } }]);
    expect(spec.domain.devices.interfaces).toEqual([{ name: 'n', bridge: {}, model: 'virtio' }]);
    expect(spec.domain.firmware).toEqual({ bootloader: { bios: {} } });
    expect(spec.domain.features).toEqual({ smm: { enabled: false }, acpi: { enabled: false } });
    expect(spec.domain.machine).toEqual({ type: 'q35' });
    expect(spec.domain.clock).toEqual({ timezone: 'Europe/Berlin', timer: { rtc: { present: true } } });
    expect(spec.terminationGracePeriodSeconds).toBe(5);
    expect(spec.architecture).toBe('arm64');
    expect(out.spec.template.metadata?.annotations).toEqual({ 'vm.kubevirt.io/os': 'windows' });
  });

  it('requirements: an instancetype too small for the preference is refused', () => {
    const r = expandVm(vm({ instancetype: { name: 'u1.nano' }, preference: { name: 'windows.11' } }), resolverFor([
      instancetype('u1.nano', { cpu: { guest: 1 }, memory: { guest: '512Mi' } }),
      preference('windows.11', { requirements: { cpu: { guest: 2 }, memory: { guest: '4Gi' } } }),
    ]));
    const errors = errorsOf(r);
    expect(errors.map((e) => e.field)).toEqual(['spec.instancetype', 'spec.instancetype']);
    expect(errors[0]!.message).toContain('insufficient CPU resources of 1 vCPU');
    expect(errors[1]!.message).toContain('insufficient Memory resources of 512Mi');
  });
});

describe('expandVm: resolution', () => {
  const nsIt = instancetype('small', { cpu: { guest: 2 }, memory: { guest: '1Gi' } }, 'VirtualMachineInstancetype', 'lab');
  const clusterIt = instancetype('small', { cpu: { guest: 8 }, memory: { guest: '8Gi' } });

  it('no kind means the cluster kind; a namespaced kind is looked up in the VM namespace', () => {
    const resolve = resolverFor([nsIt, clusterIt]);
    expect(ok(expandVm(vm({ instancetype: { name: 'small' } }, {}, 'lab'), resolve)).vm.spec.template.spec.domain.memory?.guest).toBe('8Gi');
    expect(ok(expandVm(vm({ instancetype: { name: 'small', kind: 'VirtualMachineInstancetype' } }, {}, 'lab'), resolve)).vm.spec.template.spec.domain.memory?.guest).toBe('1Gi');
    // KubeVirt takes the kind in any case, singular or plural resource name
    expect(ok(expandVm(vm({ instancetype: { name: 'small', kind: 'virtualmachineinstancetypes' } }, {}, 'lab'), resolve)).vm.spec.template.spec.domain.memory?.guest).toBe('1Gi');
  });

  it('a namespaced instancetype in another namespace is not found', () => {
    const errors = errorsOf(expandVm(vm({ instancetype: { name: 'small', kind: 'VirtualMachineInstancetype' } }, {}, 'prod'), resolverFor([nsIt])));
    expect(errors).toEqual([{ field: 'spec.instancetype.name', message: 'VirtualMachineInstancetype "small" in namespace "prod" not found', fix: expect.stringContaining('add a VirtualMachineInstancetype named "small"') }]);
  });

  it('unknown names, unknown kinds, inferFromVolume and a missing name are errors, never defaults', () => {
    const resolve = resolverFor([]);
    expect(errorsOf(expandVm(vm({ instancetype: { name: 'u1.huge' } }), resolve))[0]).toMatchObject({ field: 'spec.instancetype.name', message: 'VirtualMachineClusterInstancetype "u1.huge" not found' });
    expect(errorsOf(expandVm(vm({ preference: { name: 'nope' } }), resolve))[0]).toMatchObject({ field: 'spec.preference.name', message: 'VirtualMachineClusterPreference "nope" not found' });
    expect(errorsOf(expandVm(vm({ instancetype: { name: 'x', kind: 'Flavor' } }), resolve))[0]).toMatchObject({ field: 'spec.instancetype.kind' });
    expect(errorsOf(expandVm(vm({ instancetype: { inferFromVolume: 'root' } }), resolve))[0]).toMatchObject({ field: 'spec.instancetype.inferFromVolume' });
    expect(errorsOf(expandVm(vm({ preference: {} }), resolve))[0]).toMatchObject({ field: 'spec.preference.name' });
  });

  it('VMI annotations name what sized the VM, as KubeVirt sets them', () => {
    expect(instancetypeVmiAnnotations(vm({ instancetype: { name: 'u1.small' }, preference: { name: 'virtio', kind: 'VirtualMachinePreference' } }))).toEqual({
      'kubevirt.io/cluster-instancetype-name': 'u1.small', 'kubevirt.io/preference-name': 'virtio',
    });
    expect(instancetypeVmiAnnotations(vm({}))).toEqual({});
  });

  it('a VM without matchers comes back as it is', () => {
    const plain = vm({}, { domain: { memory: { guest: '1Gi' }, devices: {} } });
    expect(ok(expandVm(plain, resolverFor([]))).vm).toBe(plain);
  });
});
