import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, Chart, JsonPatch } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import {
  Bootloader, CloudConfig, Cpu, DiskBus, DiskType, HostDiskType, InterfaceBinding, Network, RunStrategy, Size, UserData,
  VirtualMachine, Volume, type VirtualMachineProps, pointerToField, validateVirtualMachineManifest,
} from '../../../dsl/index.js';
import { testChart, validVm } from './helpers.js';

const T = 'spec.template.spec';
const DEV = `${T}.domain.devices`;

type Setup = (vm: VirtualMachine) => void;
const patch = (op: ReturnType<typeof JsonPatch.add>): Setup => (vm) => vm.apiObject.addJsonPatch(op);

/** [what, VM props, extra setup, the field named, a fragment of the problem, a fragment of the fix] */
const cases: Array<[string, VirtualMachineProps, Setup, string, string, string]> = [
  ['duplicate disk/volume names', {}, (vm) => vm.addDisk('rootdisk', Volume.fromEmptyDisk(Size.gibibytes(1))),
    `${DEV}.disks[1].name`, 'is already used by spec.template.spec.domain.devices.disks[0]', 'give each disk a unique name'],
  ['duplicate volume names', {}, (vm) => vm.addDisk('rootdisk', Volume.fromEmptyDisk(Size.gibibytes(1))),
    `${T}.volumes[1].name`, 'is already used by', 'give each volume a unique name'],
  ['duplicate interface names', {}, (vm) => { vm.addInterface('nic', Network.pod()); vm.addInterface('nic', Network.multus('x')); },
    `${DEV}.interfaces[1].name`, 'interface name "nic" is already used', 'give each interface a unique name'],
  ['a disk without a volume', {}, patch(JsonPatch.add('/spec/template/spec/domain/devices/disks/-', { name: 'orphan', disk: { bus: 'virtio' } })),
    `${DEV}.disks[1].name`, 'disk "orphan" has no volume of the same name', 'add a volume named "orphan" or remove the disk'],
  ['a volume without a disk', {}, patch(JsonPatch.add('/spec/template/spec/volumes/-', { name: 'lonely', emptyDisk: { capacity: '1Gi' } })),
    `${T}.volumes[1].name`, 'volume "lonely" has no disk of the same name', 'add a disk named "lonely"'],
  ['an interface without a network', {}, patch(JsonPatch.add('/spec/template/spec/domain/devices/interfaces/-', { name: 'eth1', bridge: {} })),
    `${DEV}.interfaces[1].name`, 'interface "eth1" has no network of the same name', 'add a network named "eth1"'],
  ['a network without an interface', {}, patch(JsonPatch.add('/spec/template/spec/networks/-', { name: 'lan', multus: { networkName: 'lan' } })),
    `${T}.networks[1].name`, 'network "lan" has no interface of the same name', 'add an interface named "lan"'],
  ['a bad memory quantity', {}, patch(JsonPatch.replace('/spec/template/spec/domain/memory/guest', 'lots')),
    `${T}.domain.memory.guest`, '"lots" is not a Kubernetes quantity', 'Size.parse'],
  ['a bad capacity', {}, (vm) => { vm.addDisk('scratch', Volume.fromEmptyDisk(Size.gibibytes(1))); vm.apiObject.addJsonPatch(JsonPatch.replace('/spec/template/spec/volumes/1/emptyDisk/capacity', '2 GB')); },
    `${T}.volumes[1].emptyDisk.capacity`, '"2 GB" is not a positive Kubernetes quantity', 'Size.gibibytes(2)'],
  ['a bad cpu quantity', { cpu: { request: Cpu.units(1) } }, patch(JsonPatch.replace('/spec/template/spec/domain/resources/requests/cpu', 'one')),
    `${T}.domain.resources.requests.cpu`, '"one" is not a Kubernetes quantity', 'Cpu.units'],
  ['cores < 1', { cpu: { cores: 0 } }, () => {}, `${T}.domain.cpu.cores`, 'is 0; it must be a whole number >= 1', 'set cores to 1 or more'],
  ['sockets < 1', { cpu: { sockets: -1 } }, () => {}, `${T}.domain.cpu.sockets`, 'is -1', 'set sockets to 1 or more'],
  ['fractional threads', { cpu: { threads: 1.5 } }, () => {}, `${T}.domain.cpu.threads`, 'is 1.5', 'set threads to 1 or more'],
  ['memory < 1Mi', { memory: { guest: Size.kibibytes(512) } }, () => {}, `${T}.domain.memory.guest`, '"512Ki" is less than 1Mi', 'at least 1Mi'],
  ['request > limit', { memory: { request: Size.gibibytes(2), limit: Size.gibibytes(1) } }, () => {}, `${T}.domain.resources.requests.memory`, 'greater than limits.memory', 'lower the request or raise the limit'],
  ['guest memory > limit (the launcher Pod could not hold the guest)', { memory: { guest: Size.gibibytes(2), limit: Size.gibibytes(1) } }, () => {}, `${T}.domain.memory.guest`, 'is greater than resources.limits.memory', 'lower memory.guest or raise the limit'],
  ['no memory at all', { memory: undefined }, () => {}, `${T}.domain.memory`, 'no guest memory is set', 'Size.mebibytes(512)'],
  ['a VM name that is not DNS-1123', { name: 'My_VM' }, () => {}, 'metadata.name', '"My_VM" must consist of lower-case letters', 'use a DNS-1123 label'],
  ['a VM name longer than a label (it becomes a Pod label value)', { name: 'a'.repeat(64) }, () => {}, 'metadata.name', 'is 64 characters long (at most 63)', 'DNS-1123 label'],
  ['a dotted VM name (a subdomain, but no label)', { name: 'web.lab' }, () => {}, 'metadata.name', '"web.lab" must consist', 'DNS-1123 label'],
  ['an unknown field (schema, via a JSON patch)', {}, patch(JsonPatch.add('/spec/template/spec/domain/devices/disks/0/bootorder', 1)), `${DEV}.disks[0].bootorder`, "unknown field 'bootorder'", "did you mean 'bootOrder'?"],
  ['a wrongly typed field (schema, via a JSON patch)', {}, patch(JsonPatch.add('/spec/template/spec/domain/devices/autoattachSerialConsole', 'yes')), `${DEV}.autoattachSerialConsole`, 'must be a boolean', 'write a boolean'],
  ['a namespace that is not a DNS label', { namespace: 'a.b' }, () => {}, 'metadata.namespace', '"a.b" must consist', 'DNS-1123 label'],
  ['a disk name that is not DNS-1123', {}, (vm) => vm.addDisk('Data_Disk', Volume.fromEmptyDisk(Size.gibibytes(1))), `${DEV}.disks[1].name`, 'disk name "Data_Disk" must consist', 'rename the disk'],
  ['an interface name that is too long', {}, (vm) => vm.addInterface('n'.repeat(64), Network.pod()), `${DEV}.interfaces[0].name`, 'is 64 characters long (at most 63)', 'rename the interface'],
  ['bootOrder collision between disks', {}, (vm) => { vm.addDisk('a', Volume.fromEmptyDisk(Size.gibibytes(1)), { bootOrder: 1 }); vm.addDisk('b', Volume.fromEmptyDisk(Size.gibibytes(1)), { bootOrder: 1 }); },
    `${DEV}.disks[2].bootOrder`, '1 is already used by spec.template.spec.domain.devices.disks[1]', 'distinct bootOrder'],
  ['bootOrder collision between a disk and an interface', {}, (vm) => { vm.addDisk('a', Volume.fromEmptyDisk(Size.gibibytes(1)), { bootOrder: 2 }); vm.addInterface('pxe', Network.pod(), { bootOrder: 2 }); },
    `${DEV}.interfaces[0].bootOrder`, '2 is already used by spec.template.spec.domain.devices.disks[1]', 'they share one sequence'],
  ['bootOrder 0', {}, (vm) => vm.addDisk('a', Volume.fromEmptyDisk(Size.gibibytes(1)), { bootOrder: 0 }), `${DEV}.disks[1].bootOrder`, 'is 0', 'use 1 for the first boot device'],
  ['running together with runStrategy', { running: true, runStrategy: RunStrategy.MANUAL }, () => {}, 'spec.running', 'is set together with spec.runStrategy (Manual)', 'set only runStrategy'],
  ['masquerade on a Multus network', {}, (vm) => vm.addInterface('lan', Network.multus('lan'), { binding: InterfaceBinding.MASQUERADE }), `${DEV}.interfaces[0].masquerade`, 'only supported on the pod network', 'use InterfaceBinding.BRIDGE'],
  ['ports with bridge', {}, (vm) => vm.addInterface('default', Network.pod(), { binding: InterfaceBinding.BRIDGE, ports: [{ port: 22 }] }), `${DEV}.interfaces[0].ports`, 'only supported with the masquerade binding', 'drop ports'],
  ['a port out of range', {}, (vm) => vm.addInterface('default', Network.pod(), { ports: [{ port: 70000 }] }), `${DEV}.interfaces[0].ports[0].port`, 'is 70000', '1 to 65535'],
  ['two pod networks', {}, (vm) => { vm.addInterface('a', Network.pod()); vm.addInterface('b', Network.pod()); }, `${T}.networks`, 'has 2 pod networks', 'Network.multus'],
  ['a bad MAC address', {}, (vm) => vm.addInterface('default', Network.pod(), { macAddress: '02:00:00' }), `${DEV}.interfaces[0].macAddress`, 'is not a MAC address', 'six hex pairs'],
  ['a virtio CD-ROM', {}, (vm) => vm.addDisk('iso', Volume.fromContainerDisk('iso'), { type: DiskType.CDROM, bus: DiskBus.VIRTIO }), `${DEV}.disks[1].cdrom.bus`, 'is virtio', 'use DiskBus.SATA'],
  ['a disk with two types', {}, patch(JsonPatch.add('/spec/template/spec/domain/devices/disks/0/cdrom', { bus: 'sata' })), `${DEV}.disks[0]`, 'sets disk and cdrom', 'choose one disk type'],
  ['a volume with two sources', {}, patch(JsonPatch.add('/spec/template/spec/volumes/0/emptyDisk', { capacity: '1Gi' })), `${T}.volumes[0]`, 'has 2 sources (containerDisk, emptyDisk)', 'give exactly one source'],
  ['hostDisk DiskOrCreate without capacity', {}, (vm) => vm.addDisk('h', Volume.fromHostDisk('/x.img', { type: HostDiskType.DISK_OR_CREATE })), `${T}.volumes[1].hostDisk.capacity`, 'is required with type DiskOrCreate', 'give the capacity'],
  ['two cloud-init user-data sources', {}, (vm) => { vm.addDisk('ci', Volume.fromCloudInitNoCloud({ userData: UserData.fromSecret({ name: 's' }) })); vm.apiObject.addJsonPatch(JsonPatch.add('/spec/template/spec/volumes/1/cloudInitNoCloud/userData', '#cloud-config\n')); },
    `${T}.volumes[1].cloudInitNoCloud`, 'sets userData and secretRef', 'give user-data from one source'],
  ['two cloud-init volumes', {}, (vm) => { vm.addDisk('ci1', Volume.fromCloudInitNoCloud({ userData: UserData.fromString('#cloud-config\n{}') })); vm.addDisk('ci2', Volume.fromCloudInitConfigDrive({ userData: UserData.fromString('#cloud-config\n{}') })); },
    `${T}.volumes`, 'has 2 cloud-init volumes', 'keep a single cloudInitNoCloud or cloudInitConfigDrive volume'],
  ['kernelArgs without kernelPath', { firmware: { kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'img', initrdPath: '/i' } } } }, () => {}, `${T}.domain.firmware.kernelBoot.kernelArgs`, 'without container.kernelPath', 'give kernelPath'],
  ['kernelBoot with neither path', { firmware: { kernelBoot: { container: { image: 'img' } } } }, () => {}, `${T}.domain.firmware.kernelBoot.container`, 'names neither kernelPath nor initrdPath', 'give kernelPath'],
  ['secure boot with SMM disabled', { firmware: { bootloader: Bootloader.efi() }, features: { smm: false } }, () => {}, `${T}.domain.features.smm`, 'EFI Secure Boot needs SMM', 'enable features.smm'],
  ['a malformed UUID', { firmware: { uuid: 'not-a-uuid' } }, () => {}, `${T}.domain.firmware.uuid`, '"not-a-uuid" is not a UUID', '8-4-4-4-12'],
  ['utc together with timezone', { clock: {} }, patch(JsonPatch.add('/spec/template/spec/domain/clock/timezone', 'UTC')), `${T}.domain.clock`, 'sets both utc and timezone', 'choose one'],
  ['a negative grace period', { terminationGracePeriodSeconds: -1 }, () => {}, `${T}.terminationGracePeriodSeconds`, 'is -1', 'whole number of seconds'],
  ['an unknown runStrategy', {}, patch(JsonPatch.replace('/spec/runStrategy', 'Sometimes')), 'spec.runStrategy', '"Sometimes" is not a run strategy', 'use one of Always, RerunOnFailure, Manual, Halted, Once'],
];

describe('synth-time validation', () => {
  it('a valid VM has no errors', () => {
    expect(validVm().node.validate()).toEqual([]);
  });

  it.each(cases)('flags %s', (_what, props, setup, field, problem, fix) => {
    const vm = validVm(props);
    setup(vm);
    const errors = vm.node.validate();
    const mine = errors.filter((e) => e.startsWith(`test/vm: ${field}: `));
    expect(mine, `errors were:\n${errors.join('\n')}`).toHaveLength(1);
    expect(mine[0]).toContain(problem);
    expect(mine[0]).toMatch(/\. Fix: /);
    expect(mine[0]!.split('. Fix: ')[1]).toContain(fix);
  });
});

describe('plain-text secrets in cloud-init', () => {
  const seedUserData = 'password: changeme\nchpasswd: { expire: False }\n';

  it('are an error pointing to secretRef', () => {
    const vm = validVm();
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromString(seedUserData) }));
    const errors = vm.node.validate();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^test\/vm: spec\.template\.spec\.volumes\[1\]\.cloudInitNoCloud\.userData: contains a plain-text password \(password\)/);
    expect(errors[0]).toContain('UserData.fromSecret');
    expect(errors[0]).toContain('secretRef');
  });

  it('are found in CloudConfig extras, config drives and base64 user-data', () => {
    const vm = validVm();
    vm.addDisk('a', Volume.fromCloudInitConfigDrive({ userData: UserData.fromCloudConfig(new CloudConfig({ users: [{ name: 'u', extra: { plain_text_passwd: 'pw' } }] })) }));
    const errors = vm.node.validate().filter((e) => e.includes('plain-text password'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('volumes[1].cloudInitConfigDrive.userData');
    expect(errors[0]).toContain('users[1].plain_text_passwd');

    const vm2 = validVm();
    vm2.addDisk('b', Volume.fromCloudInitNoCloud({ userData: UserData.fromBase64(Buffer.from(seedUserData).toString('base64')) }));
    expect(vm2.node.validate().join('\n')).toMatch(/volumes\[1\]\.cloudInitNoCloud\.userDataBase64: contains a plain-text password/);
  });

  it('are accepted when the volume allows them', () => {
    const vm = validVm();
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromString(seedUserData), allowPlaintextSecrets: true }));
    vm.addDisk('other', Volume.fromCloudInitConfigDrive({ userData: UserData.fromString(seedUserData) }));
    // Only the allowing volume is exempt (the second also trips the one-cloud-init rule).
    const secretErrors = vm.node.validate().filter((e) => e.includes('plain-text password'));
    expect(secretErrors).toHaveLength(1);
    expect(secretErrors[0]).toContain('volumes[2]');
  });

  it('are accepted when the VM allows them', () => {
    const vm = validVm({ allowPlaintextSecrets: true });
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromString(seedUserData) }));
    expect(vm.node.validate()).toEqual([]);
  });

  it('are no concern when the user-data comes from a Secret', () => {
    const vm = validVm();
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromSecret({ name: 'vm-cloudinit' }) }));
    expect(vm.node.validate()).toEqual([]);
  });
});

describe('validation through cdk8s synth', () => {
  it('app.synth() fails with every error, each naming the construct path, and writes nothing', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-dsl-'));
    try {
      const app = new App({ outdir: path.join(outdir, 'dist') });
      const chart = new Chart(app, 'lab');
      const vm = new VirtualMachine(chart, 'web', { cpu: { cores: 0 } });
      vm.addDisk('root', Volume.fromContainerDisk('img'));
      expect(() => app.synth()).toThrow(/Validation failed[\s\S]*lab\/web: spec\.template\.spec\.domain\.cpu\.cores[\s\S]*lab\/web: spec\.template\.spec\.domain\.memory: no guest memory/);
      expect(fs.existsSync(path.join(outdir, 'dist', 'lab.k8s.yaml'))).toBe(false);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });

  it.each([
    ['/spec/template/spec/volumes/0/name', 'spec.template.spec.volumes[0].name'],
    ['/metadata/labels/app.kubernetes.io~1name', 'metadata.labels.app.kubernetes.io/name'],
    ['', ''],
  ])('pointerToField(%j) = %j', (pointer, field) => {
    expect(pointerToField(pointer)).toBe(field);
  });

  it('the validator is a pure function over manifests (usable without constructs)', () => {
    const manifest = validVm().toManifest();
    expect(validateVirtualMachineManifest(manifest)).toEqual([]);
    const broken = structuredClone(manifest);
    broken.spec.template.spec.volumes = [];
    expect(validateVirtualMachineManifest(broken)).toEqual([
      expect.objectContaining({ field: `${DEV}.disks[0].name`, problem: 'disk "rootdisk" has no volume of the same name in spec.template.spec.volumes' }),
    ]);
  });

  it('a chart with a valid VM synthesizes', () => {
    const chart = testChart();
    validVm({}, chart);
    expect(chart.toJson()).toHaveLength(1);
  });
});
