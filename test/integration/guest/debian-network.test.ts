/**
 * The Debian guest reachable from the host through its pod network's declared ports: the
 * real launcher (real libvirtd, TCG) forwards 127.0.0.1:<host port> to guest ports 22 and
 * 8080; `virtops ssh` logs in with the key cloud-init installed and runs `hostname`;
 * `virtops port-forward` relays a web page a python3 server in the guest serves; a port the
 * VMI does not declare (9090, with a listener in the guest) stays closed. Boot time is not
 * asserted; the waits are only upper bounds.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortForward } from '../../../launcher/convert/context.js';
import { pushDebianGuestImage } from '../../helpers/debian-guest.js';
import { startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { type MonitorHandle, REPO, forceCleanup, randomName, startMonitor, waitForSerial, waitForSocket } from '../launcher/harness.js';

const BOOT_TIMEOUT_MS = 600_000;
const USER = 'virtops';
const PAGE = 'virtops-network-test-page';
const CLI = ['--import', 'tsx', join(REPO, 'cli/main.ts')];

function userData(publicKey: string): string {
  return [
    '#cloud-config',
    'users:',
    `  - name: ${USER}`,
    '    shell: /bin/bash',
    `    ssh_authorized_keys: [${JSON.stringify(publicKey.trim())}]`,
    'write_files:',
    '  - path: /srv/www/index.html',
    `    content: ${PAGE}`,
    'runcmd:',
    // Detached from cloud-final, so they outlive it: the declared port and an undeclared one.
    '  - [sh, -c, "cd /srv/www && setsid python3 -m http.server 8080 </dev/null >/dev/null 2>&1 &"]',
    '  - [sh, -c, "cd /srv/www && setsid python3 -m http.server 9090 </dev/null >/dev/null 2>&1 &"]',
    '  - [sh, -c, "echo VIRTOPS-NET ready >/dev/ttyS0"]',
    '',
  ].join('\n');
}

function networkVmi(m: MonitorHandle, image: string, publicKey: string) {
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
          interfaces: [{ name: 'default', masquerade: {}, ports: [{ name: 'ssh', port: 22 }, { name: 'http', port: 8080 }] }],
        },
      },
      networks: [{ name: 'default', pod: {} }],
      terminationGracePeriodSeconds: 60,
      volumes: [
        { name: 'root', containerDisk: { image } },
        { name: 'cloudinitdisk', cloudInitNoCloud: { userData: userData(publicKey) } },
      ],
    },
  };
}

/** `virtops <args>` against this launcher's socket directly (the test runs as root). */
function virtops(m: MonitorHandle, args: string[], opts: { timeout?: number } = {}) {
  const [command, ...rest] = args; // options before ssh's `-- COMMAND`
  return execa(process.execPath, [...CLI, command!, '--launcher-socket', m.socket, ...rest], { cwd: REPO, reject: false, timeout: opts.timeout ?? 120_000 });
}

/** Starts `virtops port-forward VM :REMOTE` and resolves with its local port once it listens. */
async function portForward(m: MonitorHandle, remote: number): Promise<{ port: number; proc: ResultPromise }> {
  const proc = execa(process.execPath, [...CLI, 'port-forward', m.name, `:${remote}`, '--launcher-socket', m.socket], { cwd: REPO, reject: false });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const hit = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (hit) resolve(Number(hit[1]));
    });
    void proc.then((r) => reject(new Error(`port-forward exited ${r.exitCode}: ${String(r.stderr)}`)));
  });
  return { port, proc };
}

let registry: LocalRegistry;
let image: string;
let imageStore: string;
let keyDir: string;
let m: MonitorHandle;

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushDebianGuestImage(registry);
  imageStore = await mkdtemp(join(tmpdir(), 'vo-images-'));
  keyDir = await mkdtemp(join(tmpdir(), 'vo-sshkey-'));
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'virtops-test', '-f', join(keyDir, 'id')]);
  m = await startMonitor({ name: randomName('net'), imageStore, insecureRegistry: registry.host, gracePeriodSeconds: 60 });
  await waitForSocket(m);
}, 1_800_000); // a cold cache builds the image first

afterAll(async () => {
  await forceCleanup(m);
  await registry?.stop();
  for (const d of [imageStore, keyDir]) if (d) await rm(d, { recursive: true, force: true });
}, 120_000);

describe('Debian guest on the pod network with declared ports', () => {
  let ports: PortForward[];

  it('boots with the declared ports forwarded from loopback host ports the launcher chose', async () => {
    const res = await m.call('PUT', '/v1/vmi', networkVmi(m, image, await readFile(join(keyDir, 'id.pub'), 'utf8')));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const info = await m.call<{ ports: PortForward[] }>('GET', '/v1/info');
    ports = info.body.ports;
    expect(ports.map((p) => [p.guest, p.protocol, p.name])).toEqual([[22, 'TCP', 'ssh'], [8080, 'TCP', 'http']]);
    for (const p of ports) expect(p.host).toBeGreaterThan(1024);
    await waitForSerial(m, /VIRTOPS-NET ready/, BOOT_TIMEOUT_MS);
  }, BOOT_TIMEOUT_MS + 60_000);

  it('virtops ssh runs a command with the key cloud-init installed', async () => {
    const args = ['ssh', `${USER}@${m.name}`, '-i', join(keyDir, 'id'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '--', 'hostname'];
    let r = await virtops(m, args);
    // sshd may still be generating host keys right after cloud-init's runcmd: a few tries.
    for (let i = 0; i < 20 && r.exitCode !== 0; i++) {
      await new Promise((s) => setTimeout(s, 5000));
      r = await virtops(m, args);
    }
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout).trim()).toBe(m.name);
  }, 300_000);

  it('virtops port-forward relays the web page the guest serves on a declared port', async () => {
    const { port, proc } = await portForward(m, 8080);
    try {
      const body = await (await fetch(`http://127.0.0.1:${port}/index.html`)).text();
      expect(body.trim()).toBe(PAGE);
    } finally {
      proc.kill('SIGTERM');
      await proc;
    }
  }, 120_000);

  it('an undeclared port stays closed although the guest listens on it', async () => {
    // The guest does listen on 9090 (asked from inside, over ssh) ...
    const inside = await virtops(m, ['ssh', `${USER}@${m.name}`, '-i', join(keyDir, 'id'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '--',
      'python3', '-c', '"import urllib.request; print(urllib.request.urlopen(\'http://127.0.0.1:9090/index.html\').read().decode())"']);
    expect(String(inside.stdout).trim(), String(inside.stderr)).toBe(PAGE);
    // ... but nothing on the host forwards to it, and port-forward says why.
    expect(ports.some((p) => p.guest === 9090)).toBe(false);
    const r = await virtops(m, ['port-forward', m.name, ':9090']);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain(`port 9090 of VM default/${m.name} is not declared (declared: 22, 8080)`);
  }, 120_000);

  it('port-forward and ssh say so when the VM is not running', async () => {
    const res = await m.call('POST', '/v1/shutdown', { gracePeriodSeconds: 60 });
    expect(res.status).toBe(200);
    const r = await virtops(m, ['port-forward', m.name, '22']);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(new RegExp(`VM default/${m.name} is not running`));
  }, 180_000);
});
