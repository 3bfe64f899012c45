import { App, Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { unwrittenApp } from '../dsl/helpers.js';
import { expandVm, resolverFor } from '../../../api/expand.js';
import type { VirtualMachine as VmManifest } from '../../../api/kubevirt.js';
import { validateManifest } from '../../../api/validate.js';
import {
  allCommonInstancetypes, CommonInstancetypes, commonInstancetypes, commonPreferences, Size, VirtualMachine,
  VirtualMachineClusterInstancetype, VirtualMachineClusterPreference, VirtualMachineInstancetype, VirtualMachinePreference, Volume,
} from '../../../dsl/index.js';

function vmWithDisk(chart: Chart, id: string, props: ConstructorParameters<typeof VirtualMachine>[2]): VirtualMachine {
  const vm = new VirtualMachine(chart, id, props);
  vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/kubevirt/cirros-container-disk-demo'));
  return vm;
}

const errorsOf = (c: Chart): string[] => c.node.findAll().flatMap((n) => n.node.validate());

describe('DSL: instancetype and preference constructs', () => {
  it('a namespaced instancetype and preference, used by a VM in their namespace, synthesize and expand', () => {
    const chart = new Chart(unwrittenApp(), 'lab', { namespace: 'lab' });
    const clarge = new VirtualMachineInstancetype(chart, 'clarge', { cpu: { guest: 4 }, memory: { guest: Size.gibibytes(2) } });
    const virtio = new VirtualMachinePreference(chart, 'virtio', { spec: { devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio' } } });
    const vm = vmWithDisk(chart, 'cirros', { instancetype: clarge, preference: virtio });
    expect(errorsOf(chart)).toEqual([]);
    const objects = Testing.synth(chart);
    expect(objects.find((o) => o.kind === 'VirtualMachineInstancetype')).toEqual({
      apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineInstancetype',
      metadata: { name: 'clarge', namespace: 'lab' }, spec: { cpu: { guest: 4 }, memory: { guest: '2Gi' } },
    });
    const manifest = vm.toManifest();
    expect(manifest.spec.instancetype).toEqual({ name: 'clarge', kind: 'VirtualMachineInstancetype' });
    expect(manifest.spec.preference).toEqual({ name: 'virtio', kind: 'VirtualMachinePreference' });
    const r = expandVm(manifest, resolverFor(objects));
    if ('errors' in r) throw new Error(JSON.stringify(r.errors));
    expect(r.vm.spec.template.spec.domain.cpu).toMatchObject({ sockets: 4 });
    expect(r.vm.spec.template.spec.domain.memory?.guest).toBe('2Gi');
  });

  it('cluster kinds carry no namespace even in a namespaced chart; .ref() names one defined elsewhere', () => {
    const chart = new Chart(unwrittenApp(), 'c', { namespace: 'lab' });
    new VirtualMachineClusterInstancetype(chart, 'big', { cpu: { guest: 8, dedicatedCpuPlacement: true }, memory: { guest: Size.gibibytes(16), hugepagesPageSize: '2Mi' }, ioThreadsPolicy: 'auto' });
    new VirtualMachineClusterPreference(chart, 'pref', { name: 'windows-ish', spec: { cpu: { preferredCPUTopology: 'cores' } } });
    expect(errorsOf(chart)).toEqual([]);
    const [it1, pref] = Testing.synth(chart);
    expect(it1!.metadata).toEqual({ name: 'big' });
    expect(it1!.spec).toEqual({ cpu: { guest: 8, dedicatedCPUPlacement: true }, memory: { guest: '16Gi', hugepages: { pageSize: '2Mi' } }, ioThreadsPolicy: 'auto' });
    expect(pref!.metadata).toEqual({ name: 'windows-ish' });
    expect(VirtualMachineClusterInstancetype.ref('u1.medium')).toEqual({ name: 'u1.medium', kind: 'VirtualMachineClusterInstancetype' });
    expect(VirtualMachineClusterPreference.ref('fedora')).toEqual({ name: 'fedora', kind: 'VirtualMachineClusterPreference' });
  });

  it('invalid props are reported at synth with the field and the fix', () => {
    const chart = new Chart(unwrittenApp(), 'bad');
    new VirtualMachineInstancetype(chart, 'zero', { cpu: { guest: 0 }, memory: { guest: Size.gibibytes(1), overcommitPercent: 120 } });
    new VirtualMachinePreference(chart, 'typo', { spec: { devices: { preferedDiskBus: 'virtio' } } as never });
    const errors = errorsOf(chart);
    expect(errors).toEqual(expect.arrayContaining([
      expect.stringMatching(/^bad\/zero: spec\.cpu\.guest: must be at least 1, got 0\. Fix: /),
      expect.stringMatching(/^bad\/zero: spec\.memory\.overcommitPercent: must be between 0 and 100/),
      expect.stringMatching(/^bad\/typo: spec\.devices\.preferedDiskBus: unknown field 'preferedDiskBus'\. Fix: did you mean 'preferredDiskBus'\?/),
    ]));
  });
});

describe('DSL: the common-instancetypes catalogue', () => {
  it('has the upstream series and sizes', () => {
    expect(commonInstancetypes.u1.medium.manifest.spec).toEqual({ cpu: { guest: 1 }, memory: { guest: '4Gi' } });
    expect(commonInstancetypes.u1['2xlarge'].manifest.spec).toEqual({ cpu: { guest: 8 }, memory: { guest: '32Gi' } });
    expect(commonInstancetypes.o1.large.manifest.spec.memory).toEqual({ guest: '8Gi', overcommitPercent: 50 });
    expect(commonInstancetypes.cx1.xlarge1gi.manifest.spec).toEqual({
      cpu: { guest: 4, maxSockets: 4, dedicatedCPUPlacement: true, isolateEmulatorThread: true, numa: { guestMappingPassthrough: {} } },
      memory: { guest: '8Gi', hugepages: { pageSize: '1Gi' } }, ioThreadsPolicy: 'auto',
    });
    expect(commonInstancetypes.m1.large.manifest.spec.memory).toEqual({ guest: '16Gi', hugepages: { pageSize: '2Mi' } });
    expect(commonInstancetypes.n1.medium.manifest.spec.cpu.guest).toBe(4);
    expect(commonInstancetypes.rt1.small.manifest.spec.cpu.realtime).toEqual({});
    const names = allCommonInstancetypes().map((e) => e.name);
    expect(names).toHaveLength(10 + 9 + 12 + 10 + 6 + 10 + 8);
    expect(new Set(names).size).toBe(names.length);
  });

  it('every entry passes the manifest validator', () => {
    for (const e of [...allCommonInstancetypes(), ...Object.values(commonPreferences)]) expect(validateManifest(e.manifest), e.name).toEqual([]);
  });

  it('CommonInstancetypes writes exactly the entries the app\'s VMs refer to (cluster kinds), plus include', () => {
    const app = unwrittenApp();
    const chart = new Chart(app, 'vms', { namespace: 'lab' });
    vmWithDisk(chart, 'web', { instancetype: commonInstancetypes.u1.small, preference: commonPreferences.fedora });
    vmWithDisk(chart, 'db', { instancetype: VirtualMachineClusterInstancetype.ref('cx1.large') });
    vmWithDisk(chart, 'own', { instancetype: VirtualMachineClusterInstancetype.ref('u1.micro') });
    new VirtualMachineClusterInstancetype(chart, 'u1.micro', { cpu: { guest: 2 }, memory: { guest: Size.gibibytes(1) } }); // the app's own wins
    vmWithDisk(chart, 'plain', { memory: { guest: Size.mebibytes(256) } });
    const catalogue = new CommonInstancetypes(app, 'common-instancetypes', { include: [commonPreferences.cirros] });
    expect(catalogue.entries.map((e) => e.name)).toEqual(['cx1.large', 'u1.small', 'cirros', 'fedora']);
    const objects = Testing.synth(catalogue);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.namespace ?? '-'}`)).toEqual([
      'VirtualMachineClusterInstancetype/cx1.large/-', 'VirtualMachineClusterInstancetype/u1.small/-',
      'VirtualMachineClusterPreference/cirros/-', 'VirtualMachineClusterPreference/fedora/-',
    ]);
    // what git holds is what the VM expands against
    const web = (app.node.findChild('vms').node.findChild('web') as VirtualMachine).toManifest() as VmManifest;
    const r = expandVm(web, resolverFor(objects));
    if ('errors' in r) throw new Error(JSON.stringify(r.errors));
    expect(r.vm.spec.template.spec.domain.memory?.guest).toBe('2Gi');
    expect(r.vm.spec.template.spec.domain.firmware).toEqual({ bootloader: { efi: { secureBoot: true } } });
  });

  it('synth fails when a VM conflicts with its instancetype or misses a preference requirement, naming both fields', () => {
    const app = unwrittenApp();
    const chart = new Chart(app, 'vms');
    vmWithDisk(chart, 'web', { instancetype: commonInstancetypes.u1.small, cpu: { cores: 2 } });
    vmWithDisk(chart, 'win', { instancetype: commonInstancetypes.u1.nano, preference: commonPreferences.ubuntu });
    vmWithDisk(chart, 'elsewhere', { instancetype: VirtualMachineClusterInstancetype.ref('on-the-cluster-only') });
    const catalogue = new CommonInstancetypes(app, 'common-instancetypes');
    expect(catalogue.node.validate()).toEqual([
      expect.stringMatching(/^vms\/web: spec\.template\.spec\.domain\.cpu\.cores: VM field\(s\) spec\.template\.spec\.domain\.cpu\.cores conflicts with selected instance type \(VirtualMachineClusterInstancetype u1\.small sets spec\.cpu\.guest\)\. Fix: /),
      expect.stringMatching(/^vms\/win: spec\.instancetype: insufficient Memory resources of 512Mi provided by instance type, VirtualMachineClusterPreference ubuntu requires 2Gi/),
    ]);
  });

  it('all: true writes the whole catalogue', () => {
    const app = new App({ outdir: '/nonexistent/virtops-never-written' });
    const catalogue = new CommonInstancetypes(app, 'catalogue', { all: true });
    expect(catalogue.entries).toHaveLength(allCommonInstancetypes().length + Object.keys(commonPreferences).length);
  });
});
