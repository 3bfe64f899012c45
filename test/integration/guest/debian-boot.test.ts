/**
 * The Debian guest (scripts/guest-image) booted by the real launcher on real libvirtd under
 * TCG, once per cloud-init datasource KubeVirt offers: real cloud-init reads the ISO the
 * launcher wrote, sets the hostname from its meta-data (the VM's name), creates a user with
 * a password and an ssh key, and runs user-data's runcmd, which reports on ttyS0. Boot time
 * is not asserted (a minute or more under TCG); the waits are only upper bounds.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushDebianGuestImage } from '../../helpers/debian-guest.js';
import { startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import {
  type MonitorHandle, domainListed, forceCleanup, randomName, startMonitor, waitForSerial, waitForSocket,
} from '../launcher/harness.js';

const BOOT_TIMEOUT_MS = 600_000;
const USER = 'virtops';
const PASSWORD = 'virtops-debian-test';

/** An OpenSSH `ssh-ed25519 AAAA...` line for a fresh key (the guest only stores it). */
function sshPublicKey(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const field = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} virtops-test`;
}

/** The guest's report on ttyS0, one `VIRTOPS-DEBIAN key=value ...` line per fact. */
const REPORT = `#!/bin/sh
say() { echo "VIRTOPS-DEBIAN $*" >/dev/ttyS0; }
say hostname=$(hostname)
say user=$(id -un ${USER}) password=$(passwd -S ${USER} | cut -d' ' -f2) keys=$(grep -c '^ssh-ed25519 ' /home/${USER}/.ssh/authorized_keys)
say ipv4=$(ip -4 -o addr show scope global | awk '{print $4}' | head -n1)
# cloud-init status --wait waits for the stage running this script (final) to end: ask
# from a process of its own (cloud-final.service kills only its main process).
setsid sh -c 'cloud-init status --wait >/dev/null 2>&1; echo "VIRTOPS-DEBIAN status=$(cloud-init status | sed -n "s/^status: //p")" >/dev/ttyS0' </dev/null >/dev/null 2>&1 &
`;

function userData(publicKey: string): string {
  const indented = REPORT.trimEnd().split('\n').map((l) => `      ${l}`).join('\n');
  return [
    '#cloud-config',
    'users:',
    `  - name: ${USER}`,
    '    shell: /bin/bash',
    '    sudo: ALL=(ALL) NOPASSWD:ALL',
    '    lock_passwd: false',
    `    plain_text_passwd: ${PASSWORD}`,
    `    ssh_authorized_keys: [${JSON.stringify(publicKey)}]`,
    'ssh_pwauth: true',
    'write_files:',
    '  - path: /usr/local/bin/virtops-report',
    "    permissions: '0755'",
    '    content: |',
    indented,
    'runcmd:',
    '  - [/usr/local/bin/virtops-report]',
    '',
  ].join('\n');
}

function debianVmi(m: MonitorHandle, image: string, source: 'cloudInitNoCloud' | 'cloudInitConfigDrive', publicKey: string) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid },
    spec: {
      domain: {
        memory: { guest: '1Gi' },
        devices: {
          disks: [
            { name: 'root', disk: { bus: 'virtio' } },
            { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
          ],
        },
      },
      terminationGracePeriodSeconds: 120,
      volumes: [
        { name: 'root', containerDisk: { image } },
        { name: 'cloudinitdisk', [source]: { userData: userData(publicKey) } },
      ],
    },
  };
}

let registry: LocalRegistry;
let image: string;
let imageStore: string;

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushDebianGuestImage(registry);
  imageStore = await mkdtemp(join(tmpdir(), 'vo-images-'));
}, 1_800_000); // a cold cache builds the image first

afterAll(async () => {
  await registry?.stop();
  if (imageStore) await rm(imageStore, { recursive: true, force: true });
});

describe.each(['cloudInitNoCloud', 'cloudInitConfigDrive'] as const)('Debian guest with %s', (source) => {
  let m: MonitorHandle;
  const publicKey = sshPublicKey();

  beforeAll(async () => {
    m = await startMonitor({ name: randomName('deb'), imageStore, insecureRegistry: registry.host, gracePeriodSeconds: 120 });
    await waitForSocket(m);
  });
  afterAll(async () => {
    await forceCleanup(m);
  });

  it('boots; cloud-init sets the hostname to the VM name, creates the user, runs user-data and finishes', async () => {
    const res = await m.call('PUT', '/v1/vmi', debianVmi(m, image, source, publicKey));
    expect(res.status, JSON.stringify(res.body)).toBe(201);

    const hostname = await waitForSerial(m, /VIRTOPS-DEBIAN hostname=(\S*)/, BOOT_TIMEOUT_MS);
    expect(hostname[1]).toBe(m.name);
    const user = await waitForSerial(m, /VIRTOPS-DEBIAN user=(\S*) password=(\S*) keys=(\S*)/, 60_000);
    expect(user.slice(1)).toEqual([USER, 'P', '1']); // P: a usable password is set
    const ip = await waitForSerial(m, /VIRTOPS-DEBIAN ipv4=(\S*)/, 60_000);
    expect(ip[1]).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/); // DHCP on the pod network's interface
    const status = await waitForSerial(m, /VIRTOPS-DEBIAN status=(\S*)/, 300_000);
    expect(status[1]).toBe('done');
    await waitForSerial(m, / login:/, 120_000); // a getty on the serial console
  }, BOOT_TIMEOUT_MS + 420_000);

  it('powers off on ACPI shutdown within the grace period', async () => {
    const res = await m.call('POST', '/v1/shutdown', { gracePeriodSeconds: 120 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ result: 'shutdown' }); // not 'destroyed'
    expect(await domainListed(m.domain)).toBe(false);
  }, 180_000);
});
