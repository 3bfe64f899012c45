import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import type { MaterializedVolume } from '../../../launcher/convert/context.js';
import { convertDisks, driveLetters } from '../../../launcher/convert/disks.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { conversionError, ctx, fileVolume, vmi } from './helpers.js';

/** Disks with one volume each (emptyDisk in the spec, a qcow2 file in the context unless overridden). */
function run(disks: api.Disk[], opts: { volumes?: Record<string, MaterializedVolume>; domain?: Partial<api.DomainSpec>; vcpus?: number; diag?: Diagnostics } = {}) {
  const v = vmi({
    domain: { ...opts.domain, devices: { ...opts.domain?.devices, disks } },
    volumes: disks.map((d) => ({ name: d.name, emptyDisk: { capacity: '1Gi' } })),
  });
  const volumes = Object.fromEntries(disks.map((d) => [d.name, opts.volumes?.[d.name] ?? fileVolume(d.name)]));
  return convertDisks({ spec: v.spec, ctx: ctx({ volumes }), vcpus: opts.vcpus ?? 1 }, opts.diag ?? new Diagnostics());
}

const targets = (r: ReturnType<typeof run>) => r.disks.map((d) => d.target);

describe('disk targets', () => {
  it('letters per prefix in disk order (virtio → vd, sata/scsi/usb → sd)', () => {
    const r = run([
      { name: 'a', disk: { bus: 'virtio' } },
      { name: 'b', disk: { bus: 'sata' } },
      { name: 'c' },
      { name: 'd', disk: { bus: 'scsi' } },
      { name: 'e', disk: { bus: 'usb' } },
      { name: 'f', cdrom: {} },
      { name: 'g', lun: {} },
    ], { volumes: { g: fileVolume('g', { type: 'block', path: '/dev/sdz', format: 'raw' }) } });
    expect(targets(r)).toEqual([
      { '@dev': 'vda', '@bus': 'virtio' },
      { '@dev': 'sda', '@bus': 'sata' },
      { '@dev': 'vdb', '@bus': 'virtio' },
      { '@dev': 'sdb', '@bus': 'scsi' },
      { '@dev': 'sdc', '@bus': 'usb' },
      { '@dev': 'sdd', '@bus': 'sata' },
      { '@dev': 'sde', '@bus': 'scsi' },
    ]);
    expect(r.controllers).toEqual([
      { '@type': 'scsi', '@index': 0, '@model': 'virtio-scsi' },
      { '@type': 'usb', '@index': 0, '@model': 'qemu-xhci' },
    ]);
  });

  it.each([[0, 'a'], [25, 'z'], [26, 'aa'], [27, 'ab'], [701, 'zz'], [702, 'aaa']])('drive letter %i → %s', (i, s) => {
    expect(driveLetters(i)).toBe(s);
  });

  it('keeps USB off when no disk needs it', () => {
    expect(run([{ name: 'a' }]).controllers).toEqual([{ '@type': 'usb', '@index': 0, '@model': 'none' }]);
  });
});

describe('disk elements', () => {
  it('a containerDisk overlay: qcow2 over a backing file, boot order, serial, alias', () => {
    const r = run([{ name: 'root', bootOrder: 1, serial: 'ROOT-1' }], {
      volumes: { root: fileVolume('root', { backingStore: { path: '/img/base.qcow2', format: 'qcow2' } }) },
    });
    expect(r.disks[0]).toEqual({
      '@type': 'file',
      '@device': 'disk',
      driver: { '@name': 'qemu', '@type': 'qcow2', '@cache': 'writethrough', '@error_policy': 'stop', '@io': 'threads', '@discard': 'unmap' },
      source: { '@file': '/var/lib/virtops/test/root.qcow2' },
      backingStore: { '@type': 'file', format: { '@type': 'qcow2' }, source: { '@file': '/img/base.qcow2' } },
      target: { '@dev': 'vda', '@bus': 'virtio' },
      boot: { '@order': 1 },
      serial: 'ROOT-1',
      alias: { '@name': 'ua-root' },
    });
    expect(r.bootOrders).toEqual([{ path: 'spec.domain.devices.disks[0].bootOrder', order: 1 }]);
  });

  it('a cdrom is read-only without discard; a tray state is kept', () => {
    const [cd] = run([{ name: 'iso', cdrom: { tray: 'open' } }], { volumes: { iso: fileVolume('iso', { format: 'raw', path: '/ci.iso' }) } }).disks;
    expect(cd).toMatchObject({ '@device': 'cdrom', target: { '@dev': 'sda', '@bus': 'sata', '@tray': 'open' }, readonly: {} });
    expect(cd!.driver).not.toHaveProperty('@discard', 'unmap');
  });

  it('a lun on a block device uses <source dev>', () => {
    const [lun] = run([{ name: 'l', lun: {} }], { volumes: { l: fileVolume('l', { type: 'block', path: '/dev/vg/l', format: 'raw', directIO: true }) } }).disks;
    expect(lun).toMatchObject({ '@type': 'block', '@device': 'lun', source: { '@dev': '/dev/vg/l' }, driver: { '@cache': 'none', '@io': 'native' } });
  });

  it.each([
    ['no O_DIRECT → writethrough/threads', {}, {}, { '@cache': 'writethrough', '@io': 'threads' }],
    ['O_DIRECT file → none/threads', {}, { directIO: true }, { '@cache': 'none', '@io': 'threads' }],
    ['explicit writeback', { cache: 'writeback' }, { directIO: true }, { '@cache': 'writeback', '@io': 'threads' }],
    ['explicit io native with none', { cache: 'none', io: 'native' }, {}, { '@cache': 'none', '@io': 'native' }],
    ['error policy report', { errorPolicy: 'report' }, {}, { '@error_policy': 'report' }],
  ] as const)('driver: %s', (_, disk, volume, want) => {
    const [d] = run([{ name: 'x', ...disk } as api.Disk], { volumes: { x: fileVolume('x', volume) } }).disks;
    expect(d!.driver).toMatchObject(want);
  });

  it('readonly from the disk or the volume; shareable; PCI address', () => {
    const r = run([
      { name: 'a', disk: { readonly: true, pciAddress: '0000:00:0a.0' }, shareable: true },
      { name: 'b' },
    ], { volumes: { b: fileVolume('b', { readOnly: true }) } });
    expect(r.disks[0]).toMatchObject({ readonly: {}, shareable: {}, address: { '@type': 'pci', '@domain': '0x0000', '@bus': '0x00', '@slot': '0x0a', '@function': '0x0' } });
    expect(r.disks[1]).toHaveProperty('readonly');
  });

  it('blockMultiQueue gives virtio disks one queue per vCPU', () => {
    const r = run([{ name: 'a' }, { name: 'b', disk: { bus: 'sata' } }], { domain: { devices: { blockMultiQueue: true } }, vcpus: 4 });
    expect(r.disks[0]!.driver).toMatchObject({ '@queues': 4 });
    expect(r.disks[1]!.driver).not.toHaveProperty('@queues', 4);
  });

  it.each([
    ['shared', { ioThreadsPolicy: 'shared' }, [{}, {}, { dedicatedIOThread: true }], [1, 1, 2], 2],
    ['auto pools 2×vCPU threads', { ioThreadsPolicy: 'auto' }, [{}, {}, {}], [1, 2, 1], 2],
    ['dedicated after the shared pool', {}, [{ dedicatedIOThread: true }, {}], [2, 1], 2],
  ] as const)('IOThreads: %s', (_, domain, extras, ids, count) => {
    const r = run(extras.map((e, i) => ({ name: `d${i}`, ...e })), { domain: domain as Partial<api.DomainSpec>, vcpus: 1 });
    expect(r.disks.map((d) => (d.driver as Record<string, unknown>)['@iothread'])).toEqual(ids);
    expect(r.iothreads).toBe(count);
  });

  it('warns about volumes no disk uses and unknown disk fields', () => {
    const diag = new Diagnostics();
    const v = vmi({
      domain: { devices: { disks: [{ name: 'a', tag: 'x' } as api.Disk] } },
      volumes: [{ name: 'a', emptyDisk: { capacity: '1Gi' } }, { name: 'orphan', emptyDisk: { capacity: '1Gi' } }],
    });
    convertDisks({ spec: v.spec, ctx: ctx({ volumes: { a: fileVolume('a') } }), vcpus: 1 }, diag);
    expect(diag.warnings).toEqual([
      'spec.domain.devices.disks[0].tag: not supported by virtops; ignored',
      'spec.volumes[1]: no disk uses volume "orphan"; it is not attached',
    ]);
  });
});

describe('disk errors', () => {
  it.each([
    ['cdrom on virtio', [{ name: 'a', cdrom: { bus: 'virtio' } }], {}, 'spec.domain.devices.disks[0].cdrom.bus'],
    ['lun on sata', [{ name: 'a', lun: { bus: 'sata' } }], {}, 'spec.domain.devices.disks[0].lun.bus'],
    ['unknown bus', [{ name: 'a' }, { name: 'b', disk: { bus: 'ide' } }], {}, 'spec.domain.devices.disks[1].disk.bus'],
    ['disk and cdrom', [{ name: 'a', disk: {}, cdrom: {} }], {}, 'spec.domain.devices.disks[0]'],
    ['duplicate name', [{ name: 'a' }, { name: 'a' }], {}, 'spec.domain.devices.disks[1].name'],
    ['lun on a file', [{ name: 'a', lun: {} }], {}, 'spec.domain.devices.disks[0].lun'],
    ['io native without cache none', [{ name: 'a', io: 'native', cache: 'writethrough' }], {}, 'spec.domain.devices.disks[0].io'],
    ['bad cache', [{ name: 'a', cache: 'unsafe' }], {}, 'spec.domain.devices.disks[0].cache'],
    ['bad serial', [{ name: 'a', serial: 'a/b' }], {}, 'spec.domain.devices.disks[0].serial'],
    ['bad boot order', [{ name: 'a', bootOrder: 0 }], {}, 'spec.domain.devices.disks[0].bootOrder'],
    ['bad PCI address', [{ name: 'a', disk: { pciAddress: '00:05.0' } }], {}, 'spec.domain.devices.disks[0].disk.pciAddress'],
    ['PCI address on sata', [{ name: 'a', disk: { bus: 'sata', pciAddress: '0000:00:05.0' } }], {}, 'spec.domain.devices.disks[0].disk.pciAddress'],
    ['overlay that is not qcow2', [{ name: 'a' }], { a: fileVolume('a', { format: 'raw', backingStore: { path: '/b', format: 'raw' } }) }, 'spec.volumes[0]'],
  ] as const)('%s', (_, disks, volumes, path) => {
    expect(conversionError(() => run(disks as unknown as api.Disk[], { volumes: volumes as Record<string, MaterializedVolume> })).path).toBe(path);
  });

  it('a disk without a volume, and a volume the node has not materialised', () => {
    const v = vmi({ domain: { devices: { disks: [{ name: 'a' }] } }, volumes: [{ name: 'b', emptyDisk: { capacity: '1Gi' } }] });
    expect(conversionError(() => convertDisks({ spec: v.spec, ctx: ctx(), vcpus: 1 }, new Diagnostics())).problem).toMatch(/no volume named "a"/);
    const w = vmi({ domain: { devices: { disks: [{ name: 'a' }] } }, volumes: [{ name: 'a', emptyDisk: { capacity: '1Gi' } }] });
    expect(conversionError(() => convertDisks({ spec: w.spec, ctx: ctx(), vcpus: 1 }, new Diagnostics())).path).toBe('spec.volumes[0]');
  });
});
