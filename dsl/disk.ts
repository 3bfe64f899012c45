/** Disk devices: how a volume appears to the guest (bus, type, boot order). */
import type * as api from '../api/kubevirt.js';

export enum DiskBus {
  /** Paravirtual, fastest; guest device names `vdX`. */
  VIRTIO = 'virtio',
  SATA = 'sata',
  SCSI = 'scsi',
  USB = 'usb',
}

export enum DiskType {
  /** A hard disk. */
  DISK = 'disk',
  /** A CD-ROM (read-only; KubeVirt rejects the virtio bus for it). */
  CDROM = 'cdrom',
  /** A SCSI LUN passed through. */
  LUN = 'lun',
}

export enum DiskCache {
  NONE = 'none',
  WRITE_THROUGH = 'writethrough',
  WRITE_BACK = 'writeback',
}

export enum DiskIO {
  NATIVE = 'native',
  THREADS = 'threads',
}

export enum DiskErrorPolicy {
  STOP = 'stop',
  IGNORE = 'ignore',
  REPORT = 'report',
  ENOSPACE = 'enospace',
}

export interface DiskOptions {
  /** @default DiskType.DISK */
  readonly type?: DiskType;
  /** @default DiskBus.VIRTIO, or DiskBus.SATA for a CD-ROM */
  readonly bus?: DiskBus;
  /** @default - not set (writable; a CD-ROM is always read-only) */
  readonly readOnly?: boolean;
  /**
   * Boot priority, 1 first. Disks and interfaces share one sequence.
   * @default - not set (KubeVirt boots the first disk)
   */
  readonly bootOrder?: number;
  /** Serial number the guest sees (`/dev/disk/by-id`). @default - none */
  readonly serial?: string;
  /** @default - the hypervisor's choice */
  readonly cache?: DiskCache;
  /** @default - the hypervisor's choice */
  readonly io?: DiskIO;
  /** @default false */
  readonly dedicatedIOThread?: boolean;
  /** Shared with other VMs. @default false */
  readonly shareable?: boolean;
  /** What the guest sees on I/O errors. @default - the hypervisor's default (stop) */
  readonly errorPolicy?: DiskErrorPolicy;
}

/** The KubeVirt disk for `name` with `options` (a pure function; defaults documented above). */
export function renderDisk(name: string, options: DiskOptions = {}): api.Disk {
  const type = options.type ?? DiskType.DISK;
  const bus = options.bus ?? (type === DiskType.CDROM ? DiskBus.SATA : DiskBus.VIRTIO);
  return {
    name,
    [type]: { bus, readonly: options.readOnly },
    bootOrder: options.bootOrder,
    serial: options.serial,
    cache: options.cache,
    io: options.io,
    dedicatedIOThread: options.dedicatedIOThread,
    shareable: options.shareable,
    errorPolicy: options.errorPolicy,
  };
}
