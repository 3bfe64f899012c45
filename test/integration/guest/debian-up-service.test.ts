/**
 * The path end to end on a single host: a git push of the Debian guest (declaring
 * ports 22 and 8080) and a NodePort Service selecting it; the real `virtops up` boots it
 * (qemu:///system, TCG); `virtops ssh` through up's API runs `hostname`; a plain HTTP GET on
 * the Service's node port gets the page a python3 server cloud-init started in the guest.
 * Boot time is not asserted; the waits are only upper bounds.
 */
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { pushDebianGuestImage } from '../../helpers/debian-guest.js';
import { startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { gitFixture, vmDocuments, type GitFixture } from '../standalone/fixture.js';
import { CLI, makeStateDir, vm as vmView, waitFor, type UpProcess } from '../standalone/harness.js';
import { startDebianUp, tearDownDebianUp, virsh } from './debian-up.js';

const NAME = 'vo-deb-svc';
const DOMAIN = `default_${NAME}`;
const USER = 'virtops';
const PAGE = 'virtops-service-test-page';

function debianVm(image: string, publicKey: string): VirtualMachine {
  const userData = [
    '#cloud-config',
    'users:',
    `  - name: ${USER}`,
    '    shell: /bin/bash',
    `    ssh_authorized_keys: [${JSON.stringify(publicKey.trim())}]`,
    'write_files:',
    '  - path: /srv/www/index.html',
    `    content: ${PAGE}`,
    'runcmd:',
    '  - [sh, -c, "cd /srv/www && setsid python3 -m http.server 8080 </dev/null >/dev/null 2>&1 &"]',
    '  - [sh, -c, "echo VIRTOPS-NET ready >/dev/ttyS0"]',
    '',
  ].join('\n');
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: NAME, namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { app: NAME } },
        spec: {
          domain: {
            memory: { guest: '1Gi' },
            devices: {
              disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'cloudinitdisk', disk: { bus: 'virtio' } }],
              interfaces: [{ name: 'default', masquerade: {}, ports: [{ name: 'ssh', port: 22 }, { name: 'http', port: 8080 }] }],
            },
          },
          networks: [{ name: 'default', pod: {} }],
          terminationGracePeriodSeconds: 60,
          volumes: [
            { name: 'root', containerDisk: { image } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { userData } },
          ],
        },
      },
    },
  } as VirtualMachine;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let registry: LocalRegistry;
let git: GitFixture;
let stateDir: string;
let keyDir: string;
let up: UpProcess | undefined;
let image: string;

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushDebianGuestImage(registry);
  git = await gitFixture();
  stateDir = await makeStateDir();
  keyDir = await mkdtemp(join(tmpdir(), 'vo-sshkey-'));
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'virtops-test', '-f', join(keyDir, 'id')]);
  up = await startDebianUp(git.bare, registry, stateDir);
}, 1_800_000); // a cold cache builds the image first

afterAll(async () => {
  await tearDownDebianUp({ up, stateDir, domain: DOMAIN, git, registry });
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
}, 180_000);

describe('the Debian guest from a git push, reachable through virtops ssh and a NodePort Service', () => {
  let nodePort: number;

  it('boots from git', async () => {
    nodePort = await freePort();
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: `${NAME}-http`, namespace: 'default' }, spec: { type: 'NodePort', selector: { app: NAME }, ports: [{ port: 80, targetPort: 8080, nodePort }] } };
    const vm = debianVm(image, await readFile(join(keyDir, 'id.pub'), 'utf8'));
    await git.commitDist({ [`${NAME}.k8s.yaml`]: vmDocuments(vm), [`${NAME}-service.k8s.yaml`]: YAML.stringify(service) }, 'the Debian guest and its Service');
    const v = await waitFor('Running', async () => {
      const x = await vmView(up!.server, NAME);
      return x?.status?.printableStatus === 'Running' && x.instance ? x : undefined;
    }, 300_000, 500);
    await waitFor('the guest ready marker', async () => (await readFile(v.instance!.serialLog, 'utf8').catch(() => '')).includes('VIRTOPS-NET ready'), 600_000, 1000);
  }, 960_000);

  it('virtops ssh (through up\'s API) runs hostname', async () => {
    const args = [CLI, 'ssh', '--server', up!.server, `${USER}@${NAME}`, '-i', join(keyDir, 'id'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '--', 'hostname'];
    let r = await execa(process.execPath, args, { reject: false, timeout: 120_000 });
    for (let i = 0; i < 20 && r.exitCode !== 0; i++) {
      await new Promise((s) => setTimeout(s, 5000));
      r = await execa(process.execPath, args, { reject: false, timeout: 120_000 });
    }
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout).trim()).toBe(NAME);
  }, 300_000);

  it('the NodePort Service serves the guest\'s web page on the host', async () => {
    const body = await waitFor('the page through the node port', async () => {
      const res = await fetch(`http://127.0.0.1:${nodePort}/index.html`).catch(() => undefined);
      return res?.ok ? await res.text() : undefined;
    }, 60_000, 1000);
    expect(body.trim()).toBe(PAGE);
  }, 90_000);
});
