/**
 * Volumes: where a disk's data comes from. A Volume has no name of its own; it is named
 * when attached with `VirtualMachine.addDisk(name, volume)`, so a disk and its volume
 * always share one name and cannot drift apart.
 */
import type * as api from '../api/kubevirt.js';
import type { NetworkData, UserData } from './cloud-init.js';
import type { Size } from './size.js';

export enum ImagePullPolicy {
  ALWAYS = 'Always',
  IF_NOT_PRESENT = 'IfNotPresent',
  NEVER = 'Never',
}

export enum HostDiskType {
  /** The image file must exist. */
  DISK = 'Disk',
  /** Create a sparse image of `capacity` when missing. */
  DISK_OR_CREATE = 'DiskOrCreate',
}

export interface ContainerDiskOptions {
  /** Path of the image inside the container. @default - KubeVirt's search: the single file in /disk */
  readonly path?: string;
  /** @default - Kubernetes' default (Always for `:latest`, else IfNotPresent) */
  readonly imagePullPolicy?: ImagePullPolicy;
  /** Name of a pull Secret. @default - none */
  readonly imagePullSecret?: string;
}

export interface CloudInitProps {
  /** @default - none (then `networkData` is required) */
  readonly userData?: UserData;
  /** @default - none: cloud-init configures the first NIC by DHCP */
  readonly networkData?: NetworkData;
  /**
   * Accept passwords in plain-text user-data. They end up in the manifest committed to
   * git and in the VM object everyone with read access sees: prefer `UserData.fromSecret`.
   * @default false
   */
  readonly allowPlaintextSecrets?: boolean;
}

export interface PersistentVolumeClaimOptions {
  /** @default false */
  readonly readOnly?: boolean;
  /** @default false */
  readonly hotpluggable?: boolean;
}

export interface HostDiskOptions {
  /** @default HostDiskType.DISK */
  readonly type?: HostDiskType;
  /** Size of the image to create; required with `DISK_OR_CREATE`. @default - none */
  readonly capacity?: Size;
  /** Shared between VMs (no locking). @default false */
  readonly shared?: boolean;
}

export interface ConfigSourceOptions {
  /** Start even when the object is missing. @default false */
  readonly optional?: boolean;
  /** Filesystem label of the generated ISO. @default - none */
  readonly volumeLabel?: string;
}

type VolumeSource = Omit<api.Volume, 'name'>;

export class Volume {
  /** An ephemeral disk from an OCI image holding a disk image (writes are discarded). */
  public static fromContainerDisk(image: string, options: ContainerDiskOptions = {}): Volume {
    return new Volume('containerDisk', () => ({
      containerDisk: {
        image,
        path: options.path,
        imagePullPolicy: options.imagePullPolicy,
        imagePullSecret: options.imagePullSecret,
      },
    }));
  }

  /** A blank, sparse scratch disk, discarded when the VM stops. */
  public static fromEmptyDisk(capacity: Size): Volume {
    return new Volume('emptyDisk', () => ({ emptyDisk: { capacity: capacity.toQuantity() } }));
  }

  /** A PVC used copy-on-write: the claim stays untouched, writes are discarded. */
  public static fromEphemeral(claimName: string, options: { readonly readOnly?: boolean } = {}): Volume {
    return new Volume('ephemeral', () => ({ ephemeral: { persistentVolumeClaim: { claimName, readOnly: options.readOnly } } }));
  }

  /** A NoCloud cloud-init data source (an ISO labelled `cidata`). */
  public static fromCloudInitNoCloud(props: CloudInitProps): Volume {
    return Volume.cloudInit('cloudInitNoCloud', props);
  }

  /** A ConfigDrive cloud-init data source (an ISO labelled `config-2`). */
  public static fromCloudInitConfigDrive(props: CloudInitProps): Volume {
    return Volume.cloudInit('cloudInitConfigDrive', props);
  }

  /** A persistent disk backed by a PersistentVolumeClaim in the VM's namespace. */
  public static fromPersistentVolumeClaim(claimName: string, options: PersistentVolumeClaimOptions = {}): Volume {
    return new Volume('persistentVolumeClaim', () => ({
      persistentVolumeClaim: { claimName, readOnly: options.readOnly, hotpluggable: options.hotpluggable },
    }));
  }

  /** A CDI DataVolume (e.g. one from the VM's `dataVolumeTemplates`). */
  public static fromDataVolume(name: string, options: { readonly hotpluggable?: boolean } = {}): Volume {
    return new Volume('dataVolume', () => ({ dataVolume: { name, hotpluggable: options.hotpluggable } }));
  }

  /** A disk image file on the node. */
  public static fromHostDisk(path: string, options: HostDiskOptions = {}): Volume {
    return new Volume('hostDisk', () => ({
      hostDisk: {
        path,
        type: options.type ?? HostDiskType.DISK,
        capacity: options.capacity?.toQuantity(),
        shared: options.shared,
      },
    }));
  }

  /** A Secret's keys as files on an ISO. */
  public static fromSecret(secretName: string, options: ConfigSourceOptions = {}): Volume {
    return new Volume('secret', () => ({ secret: { secretName, optional: options.optional, volumeLabel: options.volumeLabel } }));
  }

  /** A ConfigMap's keys as files on an ISO. */
  public static fromConfigMap(name: string, options: ConfigSourceOptions = {}): Volume {
    return new Volume('configMap', () => ({ configMap: { name, optional: options.optional, volumeLabel: options.volumeLabel } }));
  }

  /** A ServiceAccount's token, CA and namespace as files on an ISO. */
  public static fromServiceAccount(serviceAccountName: string): Volume {
    return new Volume('serviceAccount', () => ({ serviceAccount: { serviceAccountName } }));
  }

  private static cloudInit(kind: 'cloudInitNoCloud' | 'cloudInitConfigDrive', props: CloudInitProps): Volume {
    if (!props.userData && !props.networkData) {
      throw new Error(`Volume.from${kind[0]!.toUpperCase()}${kind.slice(1)}: no data. Fix: give userData and/or networkData`);
    }
    const volume = new Volume(kind, () => ({
      [kind]: { ...props.userData?._render(), ...props.networkData?._render() },
    }));
    volume.allowPlaintextSecrets = props.allowPlaintextSecrets ?? false;
    return volume;
  }

  /** Whether this volume may carry plain-text passwords (cloud-init only). */
  public allowPlaintextSecrets = false;

  private constructor(
    /** The KubeVirt volume source field, e.g. `containerDisk`. */
    public readonly sourceType: string,
    private readonly produce: () => VolumeSource,
  ) {}

  /** @internal The KubeVirt volume under `name`; rendered lazily so later edits count. */
  public _toKube(name: string): api.Volume {
    return { name, ...this.produce() };
  }
}
