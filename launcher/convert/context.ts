/**
 * What the node knows that the VMI does not: where each volume was materialised, where
 * the sockets and logs live, and which accelerator to use. launcher/volumes produces it;
 * launcher/convert consumes it. Keeping it explicit keeps the converter pure.
 */

export type Emulation = 'kvm' | 'tcg';

/** One volume as it exists on this node, ready to be attached to the domain. */
export interface MaterializedVolume {
  /** The VMI volume name this came from. */
  name: string;
  /** How libvirt should open it: a regular file or a block device. */
  type: 'file' | 'block';
  path: string;
  format: 'qcow2' | 'raw';
  /** For copy-on-write overlays (containerDisk, ephemeral): the read-only base image. */
  backingStore?: { path: string; format: 'qcow2' | 'raw' };
  /** Filesystem-like volumes (secret, configMap, serviceAccount) are presented as an ISO. */
  readOnly?: boolean;
  /**
   * Whether the file system holding `path` supports O_DIRECT (probed by launcher/volumes).
   * true → default cache mode `none`; false or unknown → `writethrough` (KubeVirt's fallback),
   * which works everywhere (tmpfs, some overlay file systems).
   */
  directIO?: boolean;
}

/** Where a multus network's interfaces attach on this host (see ConversionContext.networks). */
export type NetworkAttachment =
  | { type: 'bridge'; bridge: string }
  | { type: 'network'; network: string };

/** A guest port of the pod network reachable on the host at 127.0.0.1:host (or address:host). */
export interface PortForward {
  guest: number;
  host: number;
  protocol: 'TCP' | 'UDP';
  /**
   * The address QEMU binds; absent: 127.0.0.1. A launcher Pod's own libvirt daemon puts QEMU
   * in the Pod's network namespace, where 0.0.0.0:<guest port> is the Pod IP (and only this VM's).
   */
  address?: string;
  /** The port's name in the VMI, when it has one. */
  name?: string;
}

export interface ConversionContext {
  /** Accelerator: 'kvm' → <domain type="kvm">, 'tcg' → <domain type="qemu">. */
  emulation: Emulation;
  /** Volumes by VMI volume name. A disk whose volume is missing here is a conversion error. */
  volumes: Record<string, MaterializedVolume>;
  /** Kernel boot artifacts extracted from spec.domain.firmware.kernelBoot.container. */
  kernelBoot?: { kernelPath?: string; initrdPath?: string };
  /** This VMI's own directory for its console and VNC unix sockets (`serial0`, `vnc`). */
  socketsDir: string;
  /** Directory for the serial console log file. */
  logDir: string;
  /**
   * Host attachments for multus networks, keyed by spec.networks[].multus.networkName.
   * Pod networks need none (they become user-mode networking); a multus network without
   * an entry falls back to user-mode networking with a warning.
   */
  networks?: Record<string, NetworkAttachment>;
  /**
   * Host ports the launcher allocated for the pod interface's declared `ports` (see
   * interfaces.ts). Absent (a preview, `virtops domain-xml`): the ports are not forwarded.
   */
  podPortForwards?: PortForward[];
  /** OVMF firmware files when spec.domain.firmware.bootloader.efi is set. */
  ovmf?: { code: string; vars: string; secureBootCode?: string; secureBootVars?: string; nvramDir: string };
}
