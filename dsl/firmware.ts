/** Firmware: bootloader (BIOS/EFI), identity (uuid, serial) and direct kernel boot. */
import type * as api from '../api/kubevirt.js';
import type { ImagePullPolicy } from './volume.js';

export interface BiosOptions {
  /** Mirror BIOS output on the serial console. @default false */
  readonly useSerial?: boolean;
}

export interface EfiOptions {
  /** Secure Boot; needs SMM, which the VM then enables unless told otherwise. @default true (KubeVirt's default) */
  readonly secureBoot?: boolean;
  /** Keep EFI variables across restarts. @default false */
  readonly persistent?: boolean;
}

export class Bootloader {
  /** Legacy BIOS (SeaBIOS): KubeVirt's default when no bootloader is given. */
  public static bios(options: BiosOptions = {}): Bootloader {
    return new Bootloader(false, { bios: { useSerial: options.useSerial } });
  }

  /** UEFI (OVMF). */
  public static efi(options: EfiOptions = {}): Bootloader {
    const secureBoot = options.secureBoot ?? true;
    return new Bootloader(secureBoot, { efi: { secureBoot, persistent: options.persistent } });
  }

  private constructor(
    /** Whether this bootloader needs SMM (EFI Secure Boot). */
    public readonly requiresSmm: boolean,
    private readonly spec: NonNullable<api.Firmware['bootloader']>,
  ) {}

  /** @internal */
  public _toKube(): NonNullable<api.Firmware['bootloader']> {
    return structuredClone(this.spec);
  }
}

export interface KernelBootContainerProps {
  /** OCI image holding the kernel and/or initrd. */
  readonly image: string;
  /** Path of the kernel inside the image. @default - none (then `initrdPath` is required) */
  readonly kernelPath?: string;
  /** Path of the initrd inside the image. @default - none */
  readonly initrdPath?: string;
  /** @default - Kubernetes' default */
  readonly imagePullPolicy?: ImagePullPolicy;
  /** @default - none */
  readonly imagePullSecret?: string;
}

export interface KernelBootProps {
  readonly container: KernelBootContainerProps;
  /** Kernel command line; needs `kernelPath`. @default - none */
  readonly kernelArgs?: string;
}

export interface FirmwareProps {
  /** @default - none (KubeVirt boots BIOS) */
  readonly bootloader?: Bootloader;
  /** SMBIOS system UUID. @default - derived by KubeVirt from the VM name */
  readonly uuid?: string;
  /** SMBIOS serial number. @default - none */
  readonly serial?: string;
  /** Boot a kernel/initrd from an image directly, skipping the bootloader. @default - none */
  readonly kernelBoot?: KernelBootProps;
}

export function renderFirmware(props: FirmwareProps): api.Firmware {
  const kb = props.kernelBoot;
  return {
    uuid: props.uuid,
    serial: props.serial,
    bootloader: props.bootloader?._toKube(),
    kernelBoot: kb && {
      kernelArgs: kb.kernelArgs,
      container: {
        image: kb.container.image,
        kernelPath: kb.container.kernelPath,
        initrdPath: kb.container.initrdPath,
        imagePullPolicy: kb.container.imagePullPolicy,
        imagePullSecret: kb.container.imagePullSecret,
      },
    },
  };
}
