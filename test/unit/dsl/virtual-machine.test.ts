import { App, Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import { describe, expect, it } from 'vitest';
import * as api from '../../../api/kubevirt.js';
import {
  Bootloader, ClockOffset, CloudConfig, Cpu, DiskBus, DiskCache, DiskErrorPolicy, DiskIO, DiskType, EvictionStrategy,
  HostDiskType, ImagePullPolicy, InstancetypeKind, InterfaceBinding, InterfaceModel, Network, NetworkConfig, NetworkData,
  PreferenceKind, Protocol, RunStrategy, Size, UserData, VirtualMachine, Volume, type VirtualMachineProps,
} from '../../../dsl/index.js';
import { at, testChart, validVm } from './helpers.js';

const T = 'spec.template.spec';
const AFFINITY = {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-1'] }] }],
    },
  },
};
const D = `${T}.domain`;

describe('VirtualMachine defaults', () => {
  const vm = validVm();
  const m = vm.toManifest();

  it('is a kubevirt.io/v1 VirtualMachine named after the construct id in namespace default', () => {
    expect(m.apiVersion).toBe(api.API_VERSION);
    expect(m.kind).toBe('VirtualMachine');
    expect(m.metadata).toEqual({ name: 'vm', namespace: 'default' });
    expect(vm.name).toBe('vm');
    expect(vm.namespace).toBe('default');
  });

  it.each([
    ['spec.runStrategy', 'Always'],
    ['spec.running', undefined],
    [`${D}.machine`, { type: 'q35' }],
    [`${D}.devices.interfaces`, [{ name: 'default', masquerade: {} }]],
    [`${T}.networks`, [{ name: 'default', pod: {} }]],
    [`${D}.devices.disks`, [{ name: 'rootdisk', disk: { bus: 'virtio' } }]],
    [`${D}.cpu`, undefined],
    [`${D}.firmware`, undefined],
    [`${D}.features`, undefined],
    [`${D}.devices.rng`, undefined],
    [`${T}.nodeSelector`, undefined],
    ['spec.template.metadata', undefined],
  ])('%s = %j', (path, value) => {
    expect(at(m, path)).toEqual(value);
  });

  it('takes the chart namespace when none is given, and chart labels', () => {
    const chart = testChart({ namespace: 'lab', labels: { team: 'infra' } });
    const m2 = validVm({}, chart).toManifest();
    expect(m2.metadata).toEqual({ name: 'vm', namespace: 'lab', labels: { team: 'infra' } });
  });

  it('emits no NIC and autoattachPodInterface: false when the default network is declined', () => {
    const m2 = validVm({ defaultPodNetwork: false }).toManifest();
    expect(at(m2, `${D}.devices.interfaces`)).toBeUndefined();
    expect(at(m2, `${T}.networks`)).toBeUndefined();
    expect(at(m2, `${D}.devices.autoattachPodInterface`)).toBe(false);
  });

  it('must live inside a Chart', () => {
    expect(() => new VirtualMachine(new Construct(undefined as never, ''), 'vm')).toThrow(/chart/);
  });
});

describe('VirtualMachineProps map to the manifest', () => {
  const cases: Array<[string, VirtualMachineProps, string, unknown]> = [
    ['name', { name: 'web-1' }, 'metadata.name', 'web-1'],
    ['namespace', { namespace: 'prod' }, 'metadata.namespace', 'prod'],
    ['labels', { labels: { a: 'b' } }, 'metadata.labels', { a: 'b' }],
    ['annotations', { annotations: { x: 'y' } }, 'metadata.annotations', { x: 'y' }],
    ['template labels', { templateLabels: { 'kubevirt.io/vm': 'vm' }, templateAnnotations: { n: 'o' } }, 'spec.template.metadata', { labels: { 'kubevirt.io/vm': 'vm' }, annotations: { n: 'o' } }],
    ...([RunStrategy.ALWAYS, RunStrategy.RERUN_ON_FAILURE, RunStrategy.MANUAL, RunStrategy.HALTED, RunStrategy.ONCE] as const)
      .map((rs): [string, VirtualMachineProps, string, unknown] => [`runStrategy ${rs}`, { runStrategy: rs }, 'spec.runStrategy', rs]),
    ['legacy running: true', { running: true }, 'spec.running', true],
    ['legacy running: false', { running: false }, 'spec.running', false],
    ['cpu topology and model', { cpu: { cores: 2, sockets: 1, threads: 2, model: 'host-model', dedicatedCpuPlacement: true } }, `${D}.cpu`, { cores: 2, sockets: 1, threads: 2, model: 'host-model', dedicatedCpuPlacement: true }],
    ['cpu requests/limits', { cpu: { request: Cpu.millis(500), limit: Cpu.units(2) } }, `${D}.resources`, { requests: { cpu: '500m' }, limits: { cpu: '2' } }],
    ['memory guest', { memory: { guest: Size.gibibytes(4) } }, `${D}.memory`, { guest: '4Gi' }],
    ['memory requests/limits', { memory: { request: Size.parse('4G'), limit: Size.gibibytes(5) } }, `${D}.resources`, { requests: { memory: '4G' }, limits: { memory: '5Gi' } }],
    ['machine type', { machineType: 'pc-q35-7.2' }, `${D}.machine.type`, 'pc-q35-7.2'],
    ['bios with serial', { firmware: { bootloader: Bootloader.bios({ useSerial: true }) } }, `${D}.firmware`, { bootloader: { bios: { useSerial: true } } }],
    ['efi, secure boot by default, SMM enabled for it', { firmware: { bootloader: Bootloader.efi() } }, D, expect.objectContaining({ firmware: { bootloader: { efi: { secureBoot: true } } }, features: { smm: { enabled: true } } })],
    ['efi without secure boot', { firmware: { bootloader: Bootloader.efi({ secureBoot: false, persistent: true }) } }, `${D}.firmware`, { bootloader: { efi: { secureBoot: false, persistent: true } } }],
    ['uuid and serial', { firmware: { uuid: 'c3ecdb42-282e-44c3-8266-91b99ac91261', serial: 'S1' } }, `${D}.firmware`, { uuid: 'c3ecdb42-282e-44c3-8266-91b99ac91261', serial: 'S1' }],
    ['kernel boot', { firmware: { kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'img', kernelPath: '/k', initrdPath: '/i', imagePullPolicy: ImagePullPolicy.IF_NOT_PRESENT, imagePullSecret: 's' } } } }, `${D}.firmware.kernelBoot`, { kernelArgs: 'console=ttyS0', container: { image: 'img', kernelPath: '/k', initrdPath: '/i', imagePullPolicy: 'IfNotPresent', imagePullSecret: 's' } }],
    ['clock utc offset', { clock: { offset: ClockOffset.utc(3600) } }, `${D}.clock`, { utc: { offsetSeconds: 3600 } }],
    ['clock default offset is utc', { clock: { timers: { rtc: { tickPolicy: 'catchup', track: 'guest' }, hpet: { present: false } } } }, `${D}.clock`, { utc: {}, timer: { rtc: { tickPolicy: 'catchup', track: 'guest' }, hpet: { present: false } } }],
    ['clock timezone', { clock: { offset: ClockOffset.timezone('Europe/Berlin') } }, `${D}.clock`, { timezone: 'Europe/Berlin' }],
    ['features', { features: { acpi: true, apic: false, smm: true, pvspinlock: true, kvmHidden: true } }, `${D}.features`, { acpi: { enabled: true }, apic: { enabled: false }, smm: { enabled: true }, pvspinlock: { enabled: true }, kvm: { hidden: true } }],
    ['hyperv features', { features: { hyperv: { relaxed: true, vapic: true, spinlocks: 8191, synic: false } } }, `${D}.features.hyperv`, { relaxed: { enabled: true }, vapic: { enabled: true }, spinlocks: { enabled: true, spinlocks: 8191 }, synic: { enabled: false } }],
    ['rng', { rng: true }, `${D}.devices.rng`, {}],
    ['autoattach flags', { autoattachSerialConsole: true, autoattachGraphicsDevice: false, autoattachMemBalloon: false, logSerialConsole: true }, `${D}.devices`, expect.objectContaining({ autoattachSerialConsole: true, autoattachGraphicsDevice: false, autoattachMemBalloon: false, logSerialConsole: true })],
    ['nodeSelector', { nodeSelector: { 'kubernetes.io/arch': 'amd64' } }, `${T}.nodeSelector`, { 'kubernetes.io/arch': 'amd64' }],
    ['tolerations', { tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }] }, `${T}.tolerations`, [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }]],
    ['affinity', { affinity: AFFINITY }, `${T}.affinity`, AFFINITY],
    ['evictionStrategy', { evictionStrategy: EvictionStrategy.LIVE_MIGRATE }, `${T}.evictionStrategy`, 'LiveMigrate'],
    ['terminationGracePeriodSeconds', { terminationGracePeriodSeconds: 0 }, `${T}.terminationGracePeriodSeconds`, 0],
    ['hostname/subdomain/architecture', { hostname: 'h', subdomain: 's', architecture: 'amd64' }, T, expect.objectContaining({ hostname: 'h', subdomain: 's', architecture: 'amd64' })],
    ['instancetype + preference', { memory: undefined, instancetype: { name: 'u1.small' }, preference: { name: 'fedora', kind: PreferenceKind.NAMESPACED } }, 'spec', expect.objectContaining({ instancetype: { name: 'u1.small' }, preference: { name: 'fedora', kind: 'VirtualMachinePreference' } })],
    ['namespaced instancetype', { memory: undefined, instancetype: { name: 'x', kind: InstancetypeKind.NAMESPACED } }, 'spec.instancetype', { name: 'x', kind: 'VirtualMachineInstancetype' }],
    ['dataVolumeTemplates pass through', { dataVolumeTemplates: [{ metadata: { name: 'dv' }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '10Gi' } } } } }] }, 'spec.dataVolumeTemplates', [{ metadata: { name: 'dv' }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '10Gi' } } } } }]],
  ];

  it('legacy running replaces the default runStrategy', () => {
    expect(Object.keys(validVm({ running: true }).toManifest().spec)).not.toContain('runStrategy');
  });

  it('EFI without Secure Boot does not enable SMM; an explicit smm: false is kept (and then flagged)', () => {
    expect(at(validVm({ firmware: { bootloader: Bootloader.efi({ secureBoot: false }) } }).toManifest(), `${D}.features`)).toBeUndefined();
    expect(at(validVm({ firmware: { bootloader: Bootloader.efi() }, features: { smm: false } }).toManifest(), `${D}.features`)).toEqual({ smm: { enabled: false } });
  });

  it.each(cases)('%s', (_name, props, path, expected) => {
    const vm = validVm(props);
    expect(at(vm.toManifest(), path)).toEqual(expected);
    // Every case is a valid VM, including against KubeVirt's OpenAPI schema (closed: unknown or
    // misnamed fields fail), which the VM's validation runs through api/validate.ts.
    expect(vm.node.validate()).toEqual([]);
  });
});

describe('addDisk: disk and volume under one name', () => {
  const volumeCases: Array<[string, Volume, Omit<api.Volume, 'name'>]> = [
    ['containerDisk', Volume.fromContainerDisk('img:1', { path: '/disk/a.qcow2', imagePullPolicy: ImagePullPolicy.ALWAYS, imagePullSecret: 'pull' }), { containerDisk: { image: 'img:1', path: '/disk/a.qcow2', imagePullPolicy: 'Always', imagePullSecret: 'pull' } }],
    ['emptyDisk', Volume.fromEmptyDisk(Size.gibibytes(2)), { emptyDisk: { capacity: '2Gi' } }],
    ['ephemeral', Volume.fromEphemeral('golden', { readOnly: true }), { ephemeral: { persistentVolumeClaim: { claimName: 'golden', readOnly: true } } }],
    ['persistentVolumeClaim', Volume.fromPersistentVolumeClaim('claim', { readOnly: false, hotpluggable: true }), { persistentVolumeClaim: { claimName: 'claim', readOnly: false, hotpluggable: true } }],
    ['dataVolume', Volume.fromDataVolume('dv'), { dataVolume: { name: 'dv' } }],
    ['hostDisk default type', Volume.fromHostDisk('/var/lib/x.img'), { hostDisk: { path: '/var/lib/x.img', type: 'Disk' } }],
    ['hostDisk create', Volume.fromHostDisk('/var/lib/y.img', { type: HostDiskType.DISK_OR_CREATE, capacity: Size.gibibytes(1), shared: true }), { hostDisk: { path: '/var/lib/y.img', type: 'DiskOrCreate', capacity: '1Gi', shared: true } }],
    ['secret', Volume.fromSecret('creds', { optional: true, volumeLabel: 'CREDS' }), { secret: { secretName: 'creds', optional: true, volumeLabel: 'CREDS' } }],
    ['configMap', Volume.fromConfigMap('cfg'), { configMap: { name: 'cfg' } }],
    ['serviceAccount', Volume.fromServiceAccount('default'), { serviceAccount: { serviceAccountName: 'default' } }],
    ['noCloud userData string', Volume.fromCloudInitNoCloud({ userData: UserData.fromString('#cloud-config\nhostname: a\n') }), { cloudInitNoCloud: { userData: '#cloud-config\nhostname: a\n' } }],
    ['noCloud userDataBase64', Volume.fromCloudInitNoCloud({ userData: UserData.fromBase64('I2Nsb3VkLWNvbmZpZwo=') }), { cloudInitNoCloud: { userDataBase64: 'I2Nsb3VkLWNvbmZpZwo=' } }],
    ['noCloud secretRef + networkDataSecretRef', Volume.fromCloudInitNoCloud({ userData: UserData.fromSecret({ name: 'ud' }), networkData: NetworkData.fromSecret({ name: 'nd' }) }), { cloudInitNoCloud: { secretRef: { name: 'ud' }, networkDataSecretRef: { name: 'nd' } } }],
    ['noCloud networkData', Volume.fromCloudInitNoCloud({ networkData: NetworkData.fromConfig(NetworkConfig.dhcp()) }), { cloudInitNoCloud: { networkData: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' } }],
    ['noCloud networkDataBase64', Volume.fromCloudInitNoCloud({ networkData: NetworkData.fromBase64('dmVyc2lvbjogMgo=') }), { cloudInitNoCloud: { networkDataBase64: 'dmVyc2lvbjogMgo=' } }],
    ['configDrive', Volume.fromCloudInitConfigDrive({ userData: UserData.fromString('#!/bin/sh\necho hi\n'), networkData: NetworkData.fromString('version: 1\n') }), { cloudInitConfigDrive: { userData: '#!/bin/sh\necho hi\n', networkData: 'version: 1\n' } }],
  ];

  it.each(volumeCases)('%s volume', (_name, volume, source) => {
    const vm = new VirtualMachine(testChart(), 'vm', { memory: { guest: Size.mebibytes(256) } });
    vm.addDisk('data', volume);
    const m = vm.toManifest();
    expect(at(m, `${T}.volumes`)).toEqual([{ name: 'data', ...source }]);
    expect(at(m, `${D}.devices.disks`)).toEqual([{ name: 'data', disk: { bus: 'virtio' } }]);
    expect(vm.node.validate()).toEqual([]);
  });

  it('a cloud-init volume without data is refused when declared', () => {
    expect(() => Volume.fromCloudInitNoCloud({})).toThrow(/fromCloudInitNoCloud: no data. Fix: give userData/);
  });

  it.each([
    ['defaults', {}, { name: 'd', disk: { bus: 'virtio' } }],
    ['sata, readonly, boot order, serial', { bus: DiskBus.SATA, readOnly: true, bootOrder: 1, serial: 'SN1' }, { name: 'd', disk: { bus: 'sata', readonly: true }, bootOrder: 1, serial: 'SN1' }],
    ['scsi lun', { type: DiskType.LUN, bus: DiskBus.SCSI }, { name: 'd', lun: { bus: 'scsi' } }],
    ['usb', { bus: DiskBus.USB }, { name: 'd', disk: { bus: 'usb' } }],
    ['cdrom defaults to sata', { type: DiskType.CDROM }, { name: 'd', cdrom: { bus: 'sata' } }],
    ['tuning', { cache: DiskCache.NONE, io: DiskIO.NATIVE, dedicatedIOThread: true, shareable: true, errorPolicy: DiskErrorPolicy.REPORT }, { name: 'd', disk: { bus: 'virtio' }, cache: 'none', io: 'native', dedicatedIOThread: true, shareable: true, errorPolicy: 'report' }],
  ])('disk options: %s', (_name, options, disk) => {
    const vm = new VirtualMachine(testChart(), 'vm', { memory: { guest: Size.mebibytes(256) } });
    vm.addDisk('d', Volume.fromEmptyDisk(Size.gibibytes(1)), options);
    expect(at(vm.toManifest(), `${D}.devices.disks`)).toEqual([disk]);
  });

  it('disks and volumes keep the order they were added in, including after construction', () => {
    const vm = validVm();
    const before = vm.toManifest();
    vm.addDisk('scratch', Volume.fromEmptyDisk(Size.mebibytes(64)));
    const m = vm.toManifest();
    expect((at(before, `${T}.volumes`) as unknown[]).length).toBe(1);
    expect((at(m, `${D}.devices.disks`) as api.Disk[]).map((d) => d.name)).toEqual(['rootdisk', 'scratch']);
    expect((at(m, `${T}.volumes`) as api.Volume[]).map((v) => v.name)).toEqual(['rootdisk', 'scratch']);
  });

  it('renders a CloudConfig at synth time, so later edits are included', () => {
    const config = new CloudConfig();
    const vm = validVm();
    vm.addDisk('cloudinit', Volume.fromCloudInitNoCloud({ userData: UserData.fromCloudConfig(config) }));
    config.addPackage('htop');
    expect(at(vm.toManifest(), `${T}.volumes[1].cloudInitNoCloud.userData`)).toBe('#cloud-config\npackages:\n  - htop\n');
  });
});

describe('addInterface: interface and network under one name', () => {
  it.each([
    ['pod defaults to masquerade', Network.pod(), {}, { name: 'n', masquerade: {} }, { name: 'n', pod: {} }],
    ['pod with CIDRs', Network.pod({ vmNetworkCIDR: '10.1.0.0/24', vmIPv6NetworkCIDR: 'fd00::/120' }), {}, { name: 'n', masquerade: {} }, { name: 'n', pod: { vmNetworkCIDR: '10.1.0.0/24', vmIPv6NetworkCIDR: 'fd00::/120' } }],
    ['pod bridged', Network.pod(), { binding: InterfaceBinding.BRIDGE }, { name: 'n', bridge: {} }, { name: 'n', pod: {} }],
    ['multus defaults to bridge', Network.multus('lab/vlan10', { default: true }), {}, { name: 'n', bridge: {} }, { name: 'n', multus: { networkName: 'lab/vlan10', default: true } }],
    ['options', Network.pod(), { model: InterfaceModel.E1000E, macAddress: '02:00:00:00:00:01', ports: [{ port: 22, name: 'ssh' }, { port: 53, protocol: Protocol.UDP }], bootOrder: 2, pciAddress: '0000:81:00.1' },
      { name: 'n', masquerade: {}, model: 'e1000e', macAddress: '02:00:00:00:00:01', ports: [{ port: 22, name: 'ssh' }, { port: 53, protocol: 'UDP' }], bootOrder: 2, pciAddress: '0000:81:00.1' }, { name: 'n', pod: {} }],
  ])('%s', (_name, network, options, iface, net) => {
    const vm = validVm();
    vm.addInterface('n', network, options);
    const m = vm.toManifest();
    expect(at(m, `${D}.devices.interfaces`)).toEqual([iface]);
    expect(at(m, `${T}.networks`)).toEqual([net]);
    expect(vm.node.validate()).toEqual([]);
  });

  it('replaces the default network once an interface is added', () => {
    const vm = validVm();
    vm.addInterface('lan', Network.multus('lan'));
    expect((at(vm.toManifest(), `${T}.networks`) as api.Network[]).map((n) => n.name)).toEqual(['lan']);
  });
});

describe('mutators and identity', () => {
  it('addLabel/addAnnotation/addNodeSelector/addToleration land in the manifest', () => {
    const vm = validVm();
    vm.addLabel('tier', 'web');
    vm.addAnnotation('note', 'x');
    vm.addNodeSelector('zone', 'a');
    vm.addToleration({ key: 'dedicated', operator: 'Equal', value: 'vms', effect: 'NoExecute', tolerationSeconds: 60 });
    const m = vm.toManifest();
    expect(m.metadata.labels).toEqual({ tier: 'web' });
    expect(m.metadata.annotations).toEqual({ note: 'x' });
    expect(at(m, `${T}.nodeSelector`)).toEqual({ zone: 'a' });
    expect(at(m, `${T}.tolerations`)).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'vms', effect: 'NoExecute', tolerationSeconds: 60 }]);
  });

  it('isVirtualMachine recognises VMs (by symbol) and nothing else', () => {
    const chart = testChart();
    const vm = validVm({}, chart);
    expect(VirtualMachine.isVirtualMachine(vm)).toBe(true);
    expect(VirtualMachine.isVirtualMachine(vm.apiObject)).toBe(false);
    expect(VirtualMachine.isVirtualMachine(chart)).toBe(false);
    expect(VirtualMachine.isVirtualMachine(null)).toBe(false);
    expect(VirtualMachine.isVirtualMachine({ name: 'vm' })).toBe(false);
    expect(VirtualMachine.isVirtualMachine({ [Symbol.for('virtops.dsl.VirtualMachine')]: true })).toBe(true);
  });

  it('toManifest is exactly what the chart synthesizes, JSON patches included', () => {
    const chart = testChart();
    const vm = validVm({}, chart);
    vm.apiObject.addJsonPatch(JsonPatch.add('/spec/template/spec/domain/devices/blockMultiQueue', true));
    const synthesized = chart.toJson();
    expect(synthesized).toEqual([vm.toManifest()]);
    expect(at(vm.toManifest(), `${D}.devices.blockMultiQueue`)).toBe(true);
  });

  it('is deterministic: two identical apps synthesize identical manifests', () => {
    const build = (): unknown => {
      const chart = new Chart(new App({ outdir: '/nonexistent' }), 'c');
      const vm = validVm({ cpu: { cores: 2 }, labels: { b: '1', a: '2' } }, chart);
      vm.addDisk('ci', Volume.fromCloudInitNoCloud({ userData: UserData.fromCloudConfig(new CloudConfig({ extra: { z: 1, a: 2 } })) }));
      return chart.toJson();
    };
    expect(JSON.stringify(build())).toBe(JSON.stringify(build()));
  });
});

describe('VirtualMachine sealed for synthesis (render and validate once)', () => {
  it('returns one manifest object while sealed, fresh ones before and after', () => {
    const vm = validVm();
    expect(vm.toManifest()).not.toBe(vm.toManifest());
    vm.beginSynthesis();
    const first = vm.toManifest();
    expect(vm.toManifest()).toBe(first);
    expect(vm.apiObject.toJson()).toBe(first);
    vm.endSynthesis();
    expect(vm.toManifest()).not.toBe(first);
  });

  it('drops the memo on every mutator and JSON patch, so changes made while sealed are emitted', () => {
    const vm = validVm();
    vm.beginSynthesis();
    const before = vm.toManifest();
    const changes: Array<[string, () => void, string]> = [
      ['addLabel', () => vm.addLabel('tier', 'web'), 'metadata.labels.tier'],
      ['addAnnotation', () => vm.addAnnotation('note', 'x'), 'metadata.annotations.note'],
      ['addNodeSelector', () => vm.addNodeSelector('zone', 'a'), `${T}.nodeSelector.zone`],
      ['addToleration', () => vm.addToleration({ key: 'k', operator: 'Exists' }), `${T}.tolerations[0].key`],
      ['addDisk', () => vm.addDisk('scratch', Volume.fromEmptyDisk(Size.gibibytes(1))), `${T}.volumes[1].name`],
      ['addInterface', () => vm.addInterface('default', Network.pod()), `${T}.networks[0].name`],
      ['addJsonPatch', () => vm.apiObject.addJsonPatch(JsonPatch.add('/spec/template/spec/hostname', 'patched')), `${T}.hostname`],
    ];
    let previous = before;
    for (const [name, change, path] of changes) {
      change();
      const after = vm.toManifest();
      expect(after, name).not.toBe(previous);
      expect(at(after, path), name).toBeDefined();
      previous = after;
    }
    vm.endSynthesis();
  });

  it('validates once per manifest: a second pass reuses the messages, a change re-validates', () => {
    const vm = validVm();
    vm.beginSynthesis();
    expect(vm.node.validate()).toEqual([]);
    vm.apiObject.addJsonPatch(JsonPatch.add('/spec/template/spec/domain/cpu', { corse: 2 }));
    expect(vm.node.validate().join('\n')).toMatch(/corse/);
    vm.endSynthesis();
  });
});
