import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { convertFirmware } from '../../../launcher/convert/firmware.js';
import { identityOf } from '../../../launcher/convert/identity.js';
import { conversionError, ctx, vmi } from './helpers.js';

function run(domain: Partial<api.DomainSpec>, c = ctx(), defaultBootDevice = true) {
  const v = vmi({ domain });
  return convertFirmware(v.spec.domain, c, identityOf(v), new Diagnostics(), { defaultBootDevice });
}

describe('firmware', () => {
  it('defaults to q35 BIOS, boots from hd, reports SMBIOS from sysinfo', () => {
    const r = run({});
    expect(r.os).toEqual({
      type: { '@arch': 'x86_64', '@machine': 'q35', '#': 'hvm' },
      boot: { '@dev': 'hd' },
      smbios: { '@mode': 'sysinfo' },
    });
    expect(r.requiresSmm).toBe(false);
  });

  it('leaves <boot dev> out when devices carry boot orders', () => {
    expect(run({}, ctx(), false).os.boot).toBeUndefined();
  });

  it('BIOS useSerial', () => {
    expect(run({ firmware: { bootloader: { bios: { useSerial: true } } } }).os.bios).toEqual({ '@useserial': 'yes' });
  });

  it('EFI without Secure Boot: plain OVMF and per-domain NVRAM', () => {
    const r = run({ firmware: { bootloader: { efi: { secureBoot: false } } } });
    expect(r.os.loader).toEqual({ '@readonly': 'yes', '@secure': 'no', '@type': 'pflash', '#': '/usr/share/OVMF/OVMF_CODE_4M.fd' });
    expect(r.os.nvram).toEqual({ '@template': '/usr/share/OVMF/OVMF_VARS_4M.fd', '#': '/var/lib/virtops/nvram/lab_guest_VARS.fd' });
    expect(r.requiresSmm).toBe(false);
  });

  it('EFI defaults to Secure Boot (as KubeVirt): secure loader, MS vars, SMM', () => {
    const r = run({ firmware: { bootloader: { efi: {} } } });
    expect(r.os.loader).toMatchObject({ '@secure': 'yes', '#': '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd' });
    expect(r.os.nvram).toMatchObject({ '@template': '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' });
    expect(r.requiresSmm).toBe(true);
  });

  it('kernel boot uses the context paths and kernelArgs', () => {
    const r = run(
      { firmware: { kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'r/k:1', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd' } } } },
      ctx({ kernelBoot: { kernelPath: '/n/vmlinuz', initrdPath: '/n/initrd' } }),
    );
    expect(r.os).toMatchObject({ kernel: '/n/vmlinuz', initrd: '/n/initrd', cmdline: 'console=ttyS0' });
  });

  it('sysinfo carries the UUID and the serial', () => {
    const r = run({ firmware: { uuid: '5D6A0E4C-0000-4000-8000-000000000001', serial: 'ABC-123' } });
    expect(r.sysinfo).toEqual({
      '@type': 'smbios',
      system: {
        entry: [
          { '@name': 'manufacturer', '#': 'virtops' },
          { '@name': 'product', '#': 'None' },
          { '@name': 'uuid', '#': '5d6a0e4c-0000-4000-8000-000000000001' },
          { '@name': 'serial', '#': 'ABC-123' },
          { '@name': 'family', '#': 'virtops' },
        ],
      },
    });
  });

  it.each([
    ['machine type', { machine: { type: 'virt' } }, ctx(), 'spec.domain.machine.type'],
    ['bios and efi', { firmware: { bootloader: { bios: {}, efi: {} } } }, ctx(), 'spec.domain.firmware.bootloader'],
    ['efi without OVMF', { firmware: { bootloader: { efi: { secureBoot: false } } } }, ctx({ ovmf: undefined }), 'spec.domain.firmware.bootloader.efi'],
    ['secure boot without secboot OVMF', { firmware: { bootloader: { efi: {} } } }, ctx({ ovmf: { code: 'c', vars: 'v', nvramDir: '/n' } }), 'spec.domain.firmware.bootloader.efi.secureBoot'],
    ['secure boot on i440fx', { machine: { type: 'pc' }, firmware: { bootloader: { efi: {} } } }, ctx(), 'spec.domain.machine.type'],
    ['kernelBoot without container', { firmware: { kernelBoot: { kernelArgs: 'x' } } }, ctx(), 'spec.domain.firmware.kernelBoot.container'],
    ['kernel not extracted', { firmware: { kernelBoot: { container: { image: 'i', kernelPath: '/k' } } } }, ctx(), 'spec.domain.firmware.kernelBoot.container.kernelPath'],
    ['kernelArgs without kernel', { firmware: { kernelBoot: { kernelArgs: 'x', container: { image: 'i', initrdPath: '/i' } } } }, ctx({ kernelBoot: { initrdPath: '/n/i' } }), 'spec.domain.firmware.kernelBoot.kernelArgs'],
    ['bad uuid', { firmware: { uuid: 'not-a-uuid' } }, ctx(), 'spec.domain.firmware.uuid'],
  ] as const)('rejects %s', (_, domain, c, path) => {
    const e = conversionError(() => run(domain as Partial<api.DomainSpec>, c));
    expect(e.path).toBe(path);
    expect(e.message).toContain('Fix: ');
  });
});
