/** Shared fixtures for the converter tests: a minimal valid VMI/context and libvirt's schema check. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as api from '../../../api/kubevirt.js';
import type { ConversionContext, MaterializedVolume } from '../../../launcher/convert/context.js';
import { ConversionError } from '../../../launcher/convert/errors.js';

export function vmi(spec: Omit<Partial<api.VirtualMachineInstanceSpec>, 'domain'> & { domain?: Partial<api.DomainSpec> } = {}): api.VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'guest', namespace: 'lab', uid: '0b7f7a4e-1111-4222-8333-944455556666' },
    spec: {
      ...spec,
      domain: { memory: { guest: '128Mi' }, ...spec.domain, devices: { ...(spec.domain?.devices ?? {}) } },
    },
  };
}

export function fileVolume(name: string, extra: Partial<MaterializedVolume> = {}): MaterializedVolume {
  return { name, type: 'file', path: `/var/lib/virtops/test/${name}.qcow2`, format: 'qcow2', ...extra };
}

export function ctx(extra: Partial<ConversionContext> = {}): ConversionContext {
  return {
    emulation: 'tcg',
    volumes: {},
    socketsDir: '/run/virtops/sockets',
    logDir: '/var/log/virtops',
    ovmf: {
      code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
      vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
      secureBootCode: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
      secureBootVars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
      nvramDir: '/var/lib/virtops/nvram',
    },
    ...extra,
  };
}

/** Runs `fn` and returns the ConversionError it throws (fails the test if it does not throw one). */
export function conversionError(fn: () => unknown): ConversionError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConversionError) return e;
    throw e;
  }
  throw new Error('expected a ConversionError, but conversion succeeded');
}

/** Validates domain XML with libvirt's own schema (virt-xml-validate); returns its output on failure. */
export function schemaProblems(xml: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'virtops-convert-'));
  try {
    const file = join(dir, 'domain.xml');
    writeFileSync(file, xml);
    execFileSync('virt-xml-validate', [file, 'domain'], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
    return `${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}` || err.message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
