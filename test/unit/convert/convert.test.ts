import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import type { ConversionContext } from '../../../launcher/convert/context.js';
import { ConversionError, convertVmi, METADATA_NS } from '../../../launcher/convert/index.js';
import { conversionError, ctx, fileVolume, schemaProblems, vmi } from './helpers.js';

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });

/** A VMI with every common part: containerDisk root, cloud-init, pod network, rng. */
function typical(): { vmi: api.VirtualMachineInstance; ctx: ConversionContext } {
  return {
    vmi: vmi({
      domain: {
        cpu: { cores: 2 },
        memory: { guest: '1Gi' },
        devices: {
          rng: {},
          disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }],
          interfaces: [{ name: 'default', masquerade: {} }],
        },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: [
        { name: 'root', containerDisk: { image: 'quay.io/containerdisks/fedora:40' } },
        { name: 'cloudinit', cloudInitNoCloud: { userData: '#cloud-config\n' } },
      ],
    }),
    ctx: ctx({
      volumes: {
        root: fileVolume('root', { backingStore: { path: '/var/lib/virtops/images/fedora.qcow2', format: 'qcow2' } }),
        cloudinit: fileVolume('cloudinit', { path: '/var/lib/virtops/vmis/lab/guest/cloud-init/cloudinit.iso', format: 'raw', readOnly: true }),
      },
    }),
  };
}

describe('convertVmi', () => {
  it('produces schema-valid XML with the identity, metadata and lifecycle KubeVirt uses', () => {
    const { vmi: v, ctx: c } = typical();
    const { xml, warnings } = convertVmi(v, c);
    expect(schemaProblems(xml)).toBeUndefined();
    expect(warnings).toEqual([]);
    const d = parser.parse(xml).domain;
    expect(d['@type']).toBe('qemu');
    expect(d.name).toBe('lab_guest');
    expect(d.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(d.metadata['virtops:vmi']).toEqual({
      '@xmlns:virtops': METADATA_NS,
      'virtops:uid': '0b7f7a4e-1111-4222-8333-944455556666',
      'virtops:name': 'guest',
      'virtops:namespace': 'lab',
    });
    expect(d.memory).toEqual({ '#text': 1073741824, '@unit': 'b' });
    expect([d.on_poweroff, d.on_reboot, d.on_crash]).toEqual(['destroy', 'restart', 'destroy']);
    expect(d.os.boot).toEqual({ '@dev': 'hd' });
    expect(d.devices.disk.map((x: { target: { '@dev': string } }) => x.target['@dev'])).toEqual(['vda', 'vdb']);
  });

  it('is deterministic: same input, same bytes; uuid derived from namespace/name', () => {
    const a = typical();
    const b = typical();
    expect(convertVmi(a.vmi, a.ctx).xml).toBe(convertVmi(b.vmi, b.ctx).xml);
    const renamed = typical();
    renamed.vmi.metadata.name = 'other';
    const uuidOf = (xml: string) => parser.parse(xml).domain.uuid as string;
    expect(uuidOf(convertVmi(renamed.vmi, renamed.ctx).xml)).not.toBe(uuidOf(convertVmi(a.vmi, a.ctx).xml));
  });

  it('uses firmware.uuid when set and type kvm under KVM', () => {
    const { vmi: v, ctx: c } = typical();
    v.spec.domain.firmware = { uuid: '6a1c6f43-4e2e-4c6b-9d43-3c2f6a0d1e55' };
    const d = parser.parse(convertVmi(v, { ...c, emulation: 'kvm' }).xml).domain;
    expect(d.uuid).toBe('6a1c6f43-4e2e-4c6b-9d43-3c2f6a0d1e55');
    expect(d['@type']).toBe('kvm');
    expect(d.cpu['@mode']).toBe('host-model');
  });

  it('writes text with markup and entity-like characters so libvirt reads it back as given', () => {
    const { vmi: v, ctx: c } = typical();
    const serial = `a&amp;b &x; <c> "d" 'e'`;
    v.spec.domain.firmware = { serial };
    const { xml } = convertVmi(v, c);
    expect(schemaProblems(xml)).toBeUndefined();
    const entries = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '#', isArray: (name) => name === 'entry' }).parse(xml).domain.sysinfo.system.entry as { '@name': string; '#': string }[];
    expect(entries.find((e) => e['@name'] === 'serial')?.['#']).toBe(serial);
  });

  it('per-device boot orders replace <boot dev>, and must not collide', () => {
    const { vmi: v, ctx: c } = typical();
    v.spec.domain.devices.disks![1]!.bootOrder = 1;
    v.spec.domain.devices.interfaces![0]!.bootOrder = 2;
    const xml = convertVmi(v, c).xml;
    expect(parser.parse(xml).domain.os.boot).toBeUndefined();
    expect(schemaProblems(xml)).toBeUndefined();
    v.spec.domain.devices.interfaces![0]!.bootOrder = 1;
    const e = conversionError(() => convertVmi(v, c));
    expect(e.path).toBe('spec.domain.devices.interfaces[0].bootOrder');
    expect(e.problem).toContain('spec.domain.devices.disks[1].bootOrder');
  });

  it('collects warnings from every concern instead of dropping fields', () => {
    const { vmi: v, ctx: c } = typical();
    Object.assign(v.spec, { hostname: 'web', readinessProbe: {} });
    v.spec.domain.cpu = { model: 'host-passthrough' };
    v.spec.domain.devices.interfaces![0]!.ports = [{ port: 80 }];
    const { warnings } = convertVmi(v, c);
    expect(warnings).toEqual([
      'spec.readinessProbe: not supported by virtops; ignored',
      expect.stringMatching(/^spec\.hostname: /),
      expect.stringMatching(/^spec\.domain\.cpu\.model: "host-passthrough" needs KVM/),
      expect.stringMatching(/^spec\.domain\.devices\.interfaces\[0\]\.ports: /),
    ]);
  });

  it.each([
    ['no name', (v: api.VirtualMachineInstance) => { v.metadata.name = ''; }, 'metadata.name'],
    ['bad name', (v: api.VirtualMachineInstance) => { v.metadata.name = 'Web_1'; }, 'metadata.name'],
    ['bad namespace', (v: api.VirtualMachineInstance) => { v.metadata.namespace = 'a.b'; }, 'metadata.namespace'],
    ['arm guest', (v: api.VirtualMachineInstance) => { v.spec.architecture = 'arm64'; }, 'spec.architecture'],
    ['a VM instead of a VMI', (v: api.VirtualMachineInstance) => { (v as { kind: string }).kind = 'VirtualMachine'; }, 'kind'],
  ])('rejects %s', (_, mutate, path) => {
    const { vmi: v, ctx: c } = typical();
    mutate(v);
    const e = conversionError(() => convertVmi(v, c));
    expect(e).toBeInstanceOf(ConversionError);
    expect(e.path).toBe(path);
  });
});

/** Edge cases that must all come out schema-valid: one row per feature family. */
const EDGE_CASES: [string, Partial<api.DomainSpec>, Partial<ConversionContext>?][] = [
  ['EFI', { firmware: { bootloader: { efi: { secureBoot: false } } } }],
  ['Secure Boot', { firmware: { bootloader: { efi: { secureBoot: true } } }, features: { smm: {} } }],
  ['BIOS serial', { firmware: { bootloader: { bios: { useSerial: true } }, serial: 'SN-42' } }],
  ['kernel boot', { firmware: { kernelBoot: { kernelArgs: 'console=ttyS0 quiet', container: { image: 'i', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd' } } } }, { kernelBoot: { kernelPath: '/k/vmlinuz', initrdPath: '/k/initrd' } }],
  ['sockets/cores/threads', { cpu: { sockets: 2, cores: 2, threads: 2, features: [{ name: 'pcid', policy: 'optional' }] } }],
  ['named CPU model', { cpu: { model: 'qemu64' } }],
  ['timers', { clock: { utc: { offsetSeconds: 7200 }, timer: { hpet: { present: false }, pit: { tickPolicy: 'delay' }, rtc: { tickPolicy: 'catchup', track: 'guest' }, kvm: {}, hyperv: {} } } }],
  ['timezone', { clock: { timezone: 'Europe/Berlin' } }],
  ['hyperv', { features: { apic: { endOfInterrupt: true }, pvspinlock: { enabled: false }, kvm: { hidden: true }, hyperv: { relaxed: {}, vapic: {}, spinlocks: { spinlocks: 8191 }, vpindex: {}, runtime: {}, synic: {}, synictimer: { direct: {} }, reset: {}, vendorid: { vendorid: 'virtops' }, frequencies: {}, reenlightenment: {}, tlbflush: { direct: {}, extended: {} }, ipi: {}, evmcs: {} } } }],
  ['no ACPI', { features: { acpi: { enabled: false } } }],
  ['quantities', { memory: { guest: '1.5Gi' }, resources: { requests: { memory: '1G', cpu: '1500m' }, limits: { memory: '2Gi' } } }],
  ['hugepages', { memory: { guest: '2Gi', hugepages: { pageSize: '2Mi' } } }],
  ['i440fx', { machine: { type: 'pc-i440fx-7.2' } }],
  ['everything off', { devices: { autoattachSerialConsole: false, autoattachGraphicsDevice: false, autoattachMemBalloon: false, autoattachPodInterface: false } }],
  ['no serial log', { devices: { logSerialConsole: false } }],
  [
    'every bus, cdrom, lun, IOThreads, multiqueue',
    {
      ioThreadsPolicy: 'auto',
      cpu: { cores: 2 },
      devices: {
        blockMultiQueue: true,
        disks: [
          { name: 'v', disk: { bus: 'virtio', pciAddress: '0000:00:0a.0' }, bootOrder: 1, serial: 'V1', dedicatedIOThread: true },
          { name: 's', disk: { bus: 'sata' }, cache: 'none', io: 'native' },
          { name: 'c', disk: { bus: 'scsi', readonly: true }, shareable: true },
          { name: 'u', disk: { bus: 'usb' }, errorPolicy: 'report' },
          { name: 'cd', cdrom: { bus: 'sata', tray: 'closed' } },
          { name: 'cds', cdrom: { bus: 'scsi' } },
          { name: 'l', lun: { bus: 'scsi' } },
          { name: 'lv', lun: { bus: 'virtio' } },
          { name: 'v2', disk: { bus: 'virtio' } },
        ],
      },
    },
    {
      volumes: {
        v: fileVolume('v', { backingStore: { path: '/img/base.qcow2', format: 'qcow2' } }),
        s: fileVolume('s', { format: 'raw', directIO: true }),
        c: fileVolume('c'),
        u: fileVolume('u'),
        cd: fileVolume('cd', { format: 'raw', readOnly: true }),
        cds: fileVolume('cds', { format: 'raw', readOnly: true }),
        l: fileVolume('l', { type: 'block', path: '/dev/vg/l', format: 'raw', directIO: true }),
        lv: fileVolume('lv', { type: 'block', path: '/dev/vg/lv', format: 'raw' }),
        v2: fileVolume('v2'),
      },
    },
  ],
  [
    'multiple interfaces',
    {
      cpu: { cores: 2 },
      devices: {
        networkInterfaceMultiqueue: true,
        interfaces: [
          { name: 'default', masquerade: {}, macAddress: '02:00:00:00:00:01', bootOrder: 1 },
          { name: 'lan', bridge: {}, model: 'e1000e', pciAddress: '0000:00:0b.0' },
          { name: 'lab', bridge: {}, model: 'rtl8139' },
          { name: 'lost', bridge: {} },
        ],
      },
    },
    { networks: { 'lan-nad': { type: 'bridge', bridge: 'br0' }, 'lab-nad': { type: 'network', network: 'default' } } },
  ],
];

describe('libvirt schema (virt-xml-validate)', () => {
  it.each(EDGE_CASES)('%s', (_, domain, context) => {
    const names = (domain.devices?.disks ?? []).map((d) => d.name);
    const v = vmi({
      domain,
      volumes: names.map((name) => ({ name, emptyDisk: { capacity: '1Gi' } })),
      ...(domain.devices?.interfaces
        ? {
            networks: [
              { name: 'default', pod: { vmNetworkCIDR: '10.0.2.0/24' } },
              { name: 'lan', multus: { networkName: 'lan-nad' } },
              { name: 'lab', multus: { networkName: 'lab-nad' } },
              { name: 'lost', multus: { networkName: 'nowhere' } },
            ],
          }
        : {}),
    });
    const { xml } = convertVmi(v, ctx(context));
    expect(schemaProblems(xml)).toBeUndefined();
  });

  it('the schema check itself rejects broken XML (so the rows above can fail)', () => {
    const { vmi: v, ctx: c } = typical();
    const xml = convertVmi(v, c).xml.replace('<vcpu placement="static">2</vcpu>', '<vcpu placement="sometimes">2</vcpu>');
    expect(schemaProblems(xml)).toMatch(/fail|invalid|error/i);
  });
});
