/**
 * Disks, CD-ROMs and LUNs, in the order the VMI lists them.
 *
 * - target: `vd*` on virtio, `sd*` on sata/scsi/usb, lettered per prefix in disk order
 *   (vda, vdb, …, sda, …), as KubeVirt does;
 * - source: the path launcher/volumes materialised for the volume of the same name,
 *   with a `<backingStore>` for copy-on-write overlays (containerDisk, ephemeral);
 * - driver: qemu, the image format, `error_policy="stop"`, `discard="unmap"` on writable
 *   media; cache `none` when the volume supports O_DIRECT and `writethrough` otherwise
 *   (KubeVirt's fallback), io `native` only for block devices with cache none;
 * - alias `ua-<disk name>` so libvirt events can be mapped back to the VMI's disk.
 */
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext, MaterializedVolume } from './context.js';
import { check, type Diagnostics, warnUnknownKeys } from './errors.js';
import type { XmlNode } from './xml.js';

const BASE = 'spec.domain.devices.disks';
const DISK_KEYS = ['name', 'disk', 'cdrom', 'lun', 'bootOrder', 'serial', 'cache', 'io', 'dedicatedIOThread', 'shareable', 'errorPolicy'];
const BUSES: Record<DeviceKind, readonly api.DiskBus[]> = {
  disk: ['virtio', 'sata', 'scsi', 'usb'],
  cdrom: ['sata', 'scsi'],
  lun: ['scsi', 'virtio'],
};
const DEFAULT_BUS: Record<DeviceKind, api.DiskBus> = { disk: 'virtio', cdrom: 'sata', lun: 'scsi' };
const CACHES = ['none', 'writethrough', 'writeback'];
const ERROR_POLICIES = ['stop', 'ignore', 'report', 'enospace'];
const SERIAL = /^[A-Za-z0-9_.+ -]+$/;
const PCI_ADDRESS = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;

type DeviceKind = 'disk' | 'cdrom' | 'lun';

export interface DisksResult {
  disks: XmlNode[];
  /** Controllers: virtio-scsi when a SCSI bus is used; USB (qemu-xhci, or none when no disk is on USB). */
  controllers: XmlNode[];
  /** `<iothreads>` count when any disk uses an IOThread. */
  iothreads?: number;
  bootOrders: { path: string; order: number }[];
}

export interface DisksInput {
  spec: api.VirtualMachineInstanceSpec;
  ctx: ConversionContext;
  vcpus: number;
}

export function convertDisks({ spec, ctx, vcpus }: DisksInput, diag: Diagnostics): DisksResult {
  const disks = spec.domain.devices.disks ?? [];
  const volumes = spec.volumes ?? [];
  const blockMultiQueue = spec.domain.devices.blockMultiQueue === true;
  const threads = ioThreadPlan(spec, vcpus, diag);
  const letters: Record<string, number> = {};
  const seen = new Set<string>();
  const buses = new Set<api.DiskBus>();
  const bootOrders: DisksResult['bootOrders'] = [];

  const xml = disks.map((disk, i): XmlNode => {
    const path = `${BASE}[${i}]`;
    warnUnknownKeys(diag, disk, path, DISK_KEYS);
    check(typeof disk.name === 'string' && disk.name !== '', `${path}.name`, 'the disk has no name', 'name the disk after the volume it attaches');
    check(!seen.has(disk.name), `${path}.name`, `disk "${disk.name}" is listed twice`, 'give each disk a unique name');
    seen.add(disk.name);

    const kinds = (['disk', 'cdrom', 'lun'] as const).filter((k) => disk[k] !== undefined);
    check(kinds.length <= 1, path, `sets ${kinds.join(' and ')}`, 'choose one of disk, cdrom or lun');
    const kind: DeviceKind = kinds[0] ?? 'disk'; // KubeVirt defaults an untyped disk to `disk: {}`
    const target: { bus?: api.DiskBus; readonly?: boolean } = disk[kind] ?? {};
    const pci = disk.disk?.pciAddress;
    warnUnknownKeys(diag, target, `${path}.${kind}`, kind === 'disk' ? ['bus', 'readonly', 'pciAddress'] : kind === 'cdrom' ? ['bus', 'readonly', 'tray'] : ['bus', 'readonly', 'reservation']);
    const bus = target.bus ?? DEFAULT_BUS[kind];
    check(BUSES[kind].includes(bus), `${path}.${kind}.bus`, `"${bus}" is not a bus a ${kind} can use`, `use one of ${BUSES[kind].join(', ')}`);
    buses.add(bus);

    const volumeIndex = volumes.findIndex((v) => v.name === disk.name);
    check(volumeIndex >= 0, `${path}.name`, `no volume named "${disk.name}" in spec.volumes`, `add a volume named "${disk.name}" or fix the disk's name`);
    const mv = ctx.volumes[disk.name];
    check(mv !== undefined, `spec.volumes[${volumeIndex}]`, `volume "${disk.name}" has not been materialised on this node`, 'launcher/volumes must prepare every volume before conversion (missing from the conversion context)');
    check(mv.type === 'file' || mv.type === 'block', `spec.volumes[${volumeIndex}]`, `volume "${disk.name}" has an unknown type "${String(mv.type)}"`, 'the conversion context must use "file" or "block"');
    if (kind === 'lun') {
      check(mv.type === 'block', `${path}.lun`, `volume "${disk.name}" is a file, and a LUN passes SCSI commands to a block device`, 'attach it as disk: instead, or back it with a block device');
    }
    if (pci !== undefined) {
      check(kind === 'disk' && bus === 'virtio', `${path}.disk.pciAddress`, 'a PCI address only applies to virtio disks', 'drop pciAddress or use bus virtio');
    }

    const prefix = bus === 'virtio' ? 'vd' : 'sd';
    const dev = prefix + driveLetters(letters[prefix] ?? 0);
    letters[prefix] = (letters[prefix] ?? 0) + 1;

    const readonly = kind === 'cdrom' || target.readonly === true || mv.readOnly === true;
    if (kind === 'cdrom' && target.readonly === false) diag.warn(`${path}.cdrom.readonly`, 'a CD-ROM is always read-only; attached read-only');

    const el: XmlNode = { '@type': mv.type, '@device': kind };
    el.driver = driverOf(disk, mv, { path, readonly, bus, blockMultiQueue, vcpus, iothread: threads.assign(disk, bus, path) });
    el.source = mv.type === 'file' ? { '@file': mv.path } : { '@dev': mv.path };
    if (mv.backingStore) {
      check(mv.format === 'qcow2', `spec.volumes[${volumeIndex}]`, `volume "${disk.name}" has a backing store but is ${mv.format}`, 'copy-on-write overlays must be qcow2 (conversion context)');
      el.backingStore = {
        '@type': 'file',
        format: { '@type': mv.backingStore.format },
        source: { '@file': mv.backingStore.path },
      };
    }
    el.target = { '@dev': dev, '@bus': bus, ...(kind === 'cdrom' && disk.cdrom?.tray ? { '@tray': trayOf(disk.cdrom.tray, path) } : {}) };
    if (disk.bootOrder !== undefined) {
      check(Number.isInteger(disk.bootOrder) && disk.bootOrder >= 1, `${path}.bootOrder`, `${disk.bootOrder} is not a whole number ≥ 1`, 'use 1 for the first boot device, 2 for the next, …');
      el.boot = { '@order': disk.bootOrder };
      bootOrders.push({ path: `${path}.bootOrder`, order: disk.bootOrder });
    }
    if (readonly) el.readonly = {};
    if (disk.shareable) el.shareable = {};
    if (disk.serial !== undefined) {
      check(SERIAL.test(disk.serial), `${path}.serial`, `"${disk.serial}" has characters a disk serial cannot hold`, 'use letters, digits, space, "_", ".", "+" and "-"');
      el.serial = disk.serial;
    }
    el.alias = { '@name': `ua-${disk.name}` };
    if (pci !== undefined) el.address = pciAddress(pci, `${path}.disk.pciAddress`);
    return el;
  });

  volumes.forEach((v, j) => {
    if (!seen.has(v.name)) diag.warn(`spec.volumes[${j}]`, `no disk uses volume "${v.name}"; it is not attached`);
  });

  const controllers: XmlNode[] = [];
  if (buses.has('scsi')) controllers.push({ '@type': 'scsi', '@index': 0, '@model': 'virtio-scsi' });
  // libvirt adds a USB controller to q35 by default; like KubeVirt, only keep one when a disk needs it.
  controllers.push({ '@type': 'usb', '@index': 0, '@model': buses.has('usb') ? 'qemu-xhci' : 'none' });
  return { disks: xml, controllers, iothreads: threads.count(), bootOrders };
}

function driverOf(
  disk: api.Disk,
  mv: MaterializedVolume,
  o: { path: string; readonly: boolean; bus: api.DiskBus; blockMultiQueue: boolean; vcpus: number; iothread?: number },
): XmlNode {
  const cache = disk.cache ?? (mv.directIO === true ? 'none' : 'writethrough');
  check(CACHES.includes(cache), `${o.path}.cache`, `"${cache}" is not a cache mode`, `use one of ${CACHES.join(', ')}`);
  const io = (disk.io as string | undefined) ?? (cache === 'none' && mv.type === 'block' ? 'native' : 'threads');
  check(io === 'native' || io === 'threads' || io === 'default', `${o.path}.io`, `"${io}" is not an IO mode`, 'use native, threads or default');
  check(io !== 'native' || cache === 'none', `${o.path}.io`, `io native needs cache none (O_DIRECT), but cache is ${cache}`, 'set cache: none or io: threads');
  const errorPolicy = disk.errorPolicy ?? 'stop';
  check(ERROR_POLICIES.includes(errorPolicy), `${o.path}.errorPolicy`, `"${errorPolicy}" is not an error policy`, `use one of ${ERROR_POLICIES.join(', ')}`);
  check(mv.format === 'qcow2' || mv.format === 'raw', `${o.path}.name`, `volume format "${String(mv.format)}" is not supported`, 'the conversion context must use qcow2 or raw');
  return {
    '@name': 'qemu',
    '@type': mv.format,
    '@cache': cache,
    '@error_policy': errorPolicy,
    '@io': io === 'default' ? undefined : io,
    '@discard': o.readonly ? undefined : 'unmap',
    '@queues': o.blockMultiQueue && o.bus === 'virtio' ? o.vcpus : undefined,
    '@iothread': o.iothread,
  };
}

function busOf(disk: api.Disk): api.DiskBus {
  const kind: DeviceKind = disk.cdrom ? 'cdrom' : disk.lun ? 'lun' : 'disk';
  return disk[kind]?.bus ?? DEFAULT_BUS[kind];
}

function trayOf(tray: string, path: string): string {
  check(tray === 'open' || tray === 'closed', `${path}.cdrom.tray`, `"${tray}" is not a tray state`, 'use "open" or "closed"');
  return tray;
}

/** 0 → a, 25 → z, 26 → aa: the kernel's and libvirt's drive naming. */
export function driveLetters(index: number): string {
  let n = index + 1;
  let s = '';
  while (n > 0) {
    n -= 1;
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  }
  return s;
}

/** `0000:00:05.0` → libvirt's `<address type="pci" …>`. */
export function pciAddress(text: string, path: string): XmlNode {
  const m = PCI_ADDRESS.exec(text);
  check(m !== null, path, `"${text}" is not a PCI address`, 'use the form 0000:00:05.0 (domain:bus:slot.function, hex)');
  return { '@type': 'pci', '@domain': `0x${m[1]!.toLowerCase()}`, '@bus': `0x${m[2]!.toLowerCase()}`, '@slot': `0x${m[3]!.toLowerCase()}`, '@function': `0x${m[4]}` };
}

/**
 * IOThreads (virtio disks only). `shared`: one thread for every disk that is not
 * dedicated; `auto`: a pool of up to 2×vCPUs threads assigned round-robin; a disk with
 * dedicatedIOThread gets a thread of its own. Other policies fall back to `shared`.
 */
function ioThreadPlan(spec: api.VirtualMachineInstanceSpec, vcpus: number, diag: Diagnostics) {
  const disks = spec.domain.devices.disks ?? [];
  let policy = spec.domain.ioThreadsPolicy as string | undefined;
  const anyDedicated = disks.some((d) => d.dedicatedIOThread);
  if (policy === undefined && !anyDedicated) return { assign: () => undefined, count: () => undefined };
  if (policy !== undefined && policy !== 'shared' && policy !== 'auto') {
    diag.warn('spec.domain.ioThreadsPolicy', `"${policy}" is not supported by virtops; using "shared"`);
    policy = 'shared';
  }
  const sharedDisks = disks.filter((d) => !d.dedicatedIOThread && busOf(d) === 'virtio').length;
  const pool = sharedDisks === 0 ? 0 : policy === 'auto' ? Math.min(2 * vcpus, sharedDisks) : 1;
  let next = 0;
  let dedicated = 0;
  return {
    assign(disk: api.Disk, bus: api.DiskBus, path: string): number | undefined {
      if (bus !== 'virtio') {
        if (disk.dedicatedIOThread) diag.warn(`${path}.dedicatedIOThread`, 'IOThreads apply to virtio disks only; ignored');
        return undefined;
      }
      if (disk.dedicatedIOThread) return pool + ++dedicated;
      return (next++ % pool) + 1;
    },
    count: () => pool + dedicated,
  };
}
