/**
 * `<os>` (machine type, BIOS or EFI loader, direct kernel boot, default boot device) and
 * `<sysinfo>` (SMBIOS uuid/serial), from spec.domain.machine and spec.domain.firmware.
 */
import { posix } from 'node:path';
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext } from './context.js';
import { check, type Diagnostics, warnUnknownKeys } from './errors.js';
import type { Identity } from './identity.js';
import type { XmlNode } from './xml.js';

const MACHINE = /^(q35|pc|pc-q35-\d+(\.\d+)*|pc-i440fx-\d+(\.\d+)*)$/;
const FW = 'spec.domain.firmware';

export interface FirmwareResult {
  /** `<os>`: machine, loader/nvram, kernel boot, default boot device, BIOS options, SMBIOS mode. */
  os: XmlNode;
  sysinfo: XmlNode;
  /** Secure Boot needs System Management Mode; the features concern turns it on. */
  requiresSmm: boolean;
}

export function convertFirmware(
  domain: api.DomainSpec,
  ctx: ConversionContext,
  id: Identity,
  diag: Diagnostics,
  opts: { defaultBootDevice: boolean },
): FirmwareResult {
  const fw = domain.firmware ?? {};
  warnUnknownKeys(diag, fw, FW, ['uuid', 'serial', 'bootloader', 'kernelBoot']);
  warnUnknownKeys(diag, fw.bootloader, `${FW}.bootloader`, ['bios', 'efi']);

  const machine = domain.machine?.type ?? 'q35';
  check(MACHINE.test(machine), 'spec.domain.machine.type', `"${machine}" is not an x86_64 machine type virtops supports`, 'use "q35" (default), "pc", or a versioned form such as "pc-q35-7.2"');

  const os: XmlNode = { type: { '@arch': 'x86_64', '@machine': machine, '#': 'hvm' } };
  let requiresSmm = false;

  const { bios, efi } = fw.bootloader ?? {};
  check(!(bios && efi), `${FW}.bootloader`, 'both bios and efi are set', 'choose one bootloader');
  if (efi) {
    warnUnknownKeys(diag, efi, `${FW}.bootloader.efi`, ['secureBoot', 'persistent']);
    const secure = efi.secureBoot !== false; // KubeVirt defaults secureBoot to true
    const ovmf = ctx.ovmf;
    check(ovmf !== undefined, `${FW}.bootloader.efi`, 'EFI was requested but this node has no OVMF firmware', 'install OVMF on the node (Debian: ovmf) or boot with bios');
    let code = ovmf.code;
    let vars = ovmf.vars;
    if (secure) {
      check(
        ovmf.secureBootCode !== undefined && ovmf.secureBootVars !== undefined,
        `${FW}.bootloader.efi.secureBoot`,
        'Secure Boot was requested (the default for efi) but this node has no Secure Boot OVMF build',
        'set secureBoot: false, or install the Secure Boot OVMF files on the node',
      );
      check(machine.includes('q35'), 'spec.domain.machine.type', `Secure Boot needs a q35 machine, not "${machine}"`, 'use machine type "q35"');
      code = ovmf.secureBootCode;
      vars = ovmf.secureBootVars;
      requiresSmm = true;
    }
    os.loader = { '@readonly': 'yes', '@secure': secure ? 'yes' : 'no', '@type': 'pflash', '#': code };
    // Named after the domain, so a node that keeps nvramDir keeps the variables (efi.persistent).
    os.nvram = { '@template': vars, '#': posix.join(ovmf.nvramDir, `${id.domainName}_VARS.fd`) };
  }

  const kb = fw.kernelBoot;
  if (kb) {
    const kbPath = `${FW}.kernelBoot`;
    warnUnknownKeys(diag, kb, kbPath, ['kernelArgs', 'container']);
    check(kb.container !== undefined, `${kbPath}.container`, 'kernelBoot has no container to take the kernel from', 'set kernelBoot.container.image and kernelPath/initrdPath, or remove kernelBoot');
    const c = kb.container;
    check(c.kernelPath !== undefined || c.initrdPath !== undefined, `${kbPath}.container`, 'neither kernelPath nor initrdPath is set', 'set kernelPath (and usually initrdPath) inside the image');
    if (c.kernelPath !== undefined) {
      check(ctx.kernelBoot?.kernelPath !== undefined, `${kbPath}.container.kernelPath`, 'the node has not extracted the kernel from the image', 'let the launcher materialise kernelBoot artifacts before converting');
      os.kernel = ctx.kernelBoot.kernelPath;
    }
    if (c.initrdPath !== undefined) {
      check(ctx.kernelBoot?.initrdPath !== undefined, `${kbPath}.container.initrdPath`, 'the node has not extracted the initrd from the image', 'let the launcher materialise kernelBoot artifacts before converting');
      os.initrd = ctx.kernelBoot.initrdPath;
    }
    if (kb.kernelArgs !== undefined) {
      check(c.kernelPath !== undefined, `${kbPath}.kernelArgs`, 'kernel arguments without a kernel', 'set kernelBoot.container.kernelPath or drop kernelArgs');
      os.cmdline = kb.kernelArgs;
    }
  }

  // Without any bootOrder, boot from the first disk. libvirt forbids mixing this with per-device <boot order>.
  if (opts.defaultBootDevice) os.boot = { '@dev': 'hd' };
  if (bios) {
    warnUnknownKeys(diag, bios, `${FW}.bootloader.bios`, ['useSerial']);
    if (bios.useSerial) os.bios = { '@useserial': 'yes' };
  }
  os.smbios = { '@mode': 'sysinfo' };

  const entries: XmlNode[] = [
    { '@name': 'manufacturer', '#': 'virtops' },
    { '@name': 'product', '#': 'None' },
    { '@name': 'uuid', '#': id.uuid },
  ];
  if (fw.serial !== undefined) entries.push({ '@name': 'serial', '#': fw.serial });
  entries.push({ '@name': 'family', '#': 'virtops' });
  const sysinfo: XmlNode = { '@type': 'smbios', system: { entry: entries } };

  return { os, sysinfo, requiresSmm };
}
