/**
 * libvirt accepts the converter's XML semantically, not just by schema: define (never
 * start) converted domains in the real libvirtd, read them back, undefine them always.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type * as api from '../../api/kubevirt.js';
import { convertVmi, METADATA_NS, nodeContext } from '../../launcher/convert/index.js';

const URI = 'qemu:///system';
const virsh = (...args: string[]) => execFileSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', stdio: 'pipe' });
const defined: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'virtops-convert-define-'));
const suffix = `${process.pid}-${Date.now().toString(36)}`;

afterAll(() => {
  for (const name of defined) {
    try {
      virsh('undefine', name, '--nvram');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function define(vmi: api.VirtualMachineInstance): { name: string; xml: string } {
  const { xml } = convertVmi(vmi, nodeContext(vmi, { emulation: 'tcg', stateDir: join(dir, 'state') }));
  const file = join(dir, `${vmi.metadata.name}.xml`);
  writeFileSync(file, xml);
  const name = `${vmi.metadata.namespace}_${vmi.metadata.name}`;
  defined.push(name);
  virsh('define', file);
  return { name, xml: virsh('dumpxml', '--inactive', name) };
}

function vmi(name: string, domain: Partial<api.DomainSpec>, rest: Partial<api.VirtualMachineInstanceSpec> = {}): api.VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: `${name}-${suffix}`, namespace: 'virtops-test', uid: '7c9e6679-7425-40de-944b-e07fc1f90ae7' },
    spec: { domain: { memory: { guest: '128Mi' }, devices: {}, ...domain }, ...rest },
  };
}

describe('converted domains in the real libvirtd', () => {
  it('a typical VM: overlay disk, cloud-init ISO, cdrom, scsi, user NIC, console socket, VNC socket', () => {
    const { name, xml } = define(vmi('typical', {
      cpu: { sockets: 1, cores: 2, threads: 1 },
      devices: {
        rng: {},
        disks: [
          { name: 'root', disk: { bus: 'virtio' }, bootOrder: 1 },
          { name: 'cloudinit', cdrom: { bus: 'sata' } },
          { name: 'data', disk: { bus: 'scsi' }, serial: 'DATA1' },
        ],
        interfaces: [{ name: 'default', masquerade: {}, bootOrder: 2 }],
      },
    }, {
      networks: [{ name: 'default', pod: {} }],
      volumes: [
        { name: 'root', containerDisk: { image: 'quay.io/containerdisks/cirros:0.6' } },
        { name: 'cloudinit', cloudInitNoCloud: { userData: '#cloud-config\n' } },
        { name: 'data', emptyDisk: { capacity: '1Gi' } },
      ],
    }));
    expect(xml).toContain(`<name>${name}</name>`);
    for (const alias of ['ua-root', 'ua-cloudinit', 'ua-data', 'ua-default']) expect(xml).toContain(`<alias name='${alias}'/>`);
    expect(xml).toMatch(/<target dev='vda' bus='virtio'\/>[\s\S]*<target dev='sda' bus='sata'\/>[\s\S]*<target dev='sdb' bus='scsi'\/>/);
    expect(xml).toContain("<interface type='user'>");
    expect(xml).toContain("<target type='virtio' name='org.qemu.guest_agent.0'/>");
    // the node agent's lookup: virtops metadata survives the round trip
    const meta = virsh('metadata', name, METADATA_NS);
    expect(meta).toContain(`<name>typical-${suffix}</name>`);
    expect(meta).toContain('<uid>7c9e6679-7425-40de-944b-e07fc1f90ae7</uid>');
    expect(meta).toContain('<namespace>virtops-test</namespace>');
  });

  it('EFI Secure Boot, kernel boot, SMBIOS serial, Hyper-V, timezone and timers', () => {
    const { xml } = define(vmi('efi', {
      cpu: { cores: 2, threads: 2 },
      firmware: {
        bootloader: { efi: { secureBoot: true } },
        serial: 'SN-1',
        kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'r/k', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' } },
      },
      clock: { timezone: 'Europe/Berlin', timer: { hpet: { present: false }, pit: { tickPolicy: 'delay' }, rtc: { tickPolicy: 'catchup' } } },
      features: { apic: {}, hyperv: { relaxed: {}, vapic: {}, spinlocks: { spinlocks: 8191 }, vpindex: {}, synic: {} } },
    }));
    expect(xml).toMatch(/<loader readonly='yes' secure='yes' type='pflash'>\/usr\/share\/OVMF\/OVMF_CODE_4M\.secboot\.fd<\/loader>/);
    expect(xml).toContain("<smm state='on'/>");
    expect(xml).toContain("<spinlocks state='on' retries='8191'/>");
    expect(xml).toContain("<entry name='serial'>SN-1</entry>");
    expect(xml).toContain('<cmdline>console=ttyS0</cmdline>');
  });
});
