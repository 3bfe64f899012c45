/**
 * Where the UEFI firmware the launcher points domains at lives on a node: Debian's OVMF
 * builds (package ovmf). The launcher and the `domain-xml` preview both take them from here,
 * so a preview names the same files a launcher defines.
 */
import { posix } from 'node:path';
import type { ConversionContext } from './convert/context.js';

export const OVMF_DIR = '/usr/share/OVMF';

/** Debian's OVMF files in `dir`, with per-domain NVRAM copies kept in `nvramDir`. */
export function ovmfFirmware(nvramDir: string, dir: string = OVMF_DIR): NonNullable<ConversionContext['ovmf']> {
  return {
    code: posix.join(dir, 'OVMF_CODE_4M.fd'),
    vars: posix.join(dir, 'OVMF_VARS_4M.fd'),
    secureBootCode: posix.join(dir, 'OVMF_CODE_4M.secboot.fd'),
    secureBootVars: posix.join(dir, 'OVMF_VARS_4M.ms.fd'),
    nvramDir,
  };
}
