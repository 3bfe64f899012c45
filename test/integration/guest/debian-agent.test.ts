/**
 * The guest agent and accessCredentials on a single host, one Debian boot: a git push of a VM
 * whose cloud-init user-data comes from a Secret (`secretRef`, a directory under up's state
 * dir) and whose ssh key comes from another Secret through `accessCredentials` (propagation
 * noCloud: the key rides in the NoCloud meta-data, cloud-init gives it to the default user);
 * the real `virtops up` boots it (qemu:///system, TCG). Readiness comes from the agent and
 * ssh, not the serial log (a libvirtd restart by a concurrent test can end virtlogd's copy). Then: `virtops get vmis` reports
 * AgentConnected=True, guestOSInfo.id "debian" and the guest's IP as qemu-guest-agent sees it;
 * that IP is what `ip -4 addr` prints inside the guest (over `virtops ssh` with the key
 * accessCredentials delivered); a second key, propagated by qemuGuestAgent, is added to the
 * user's authorized_keys through the agent and logs in; a stop goes through the agent (the launcher says so) and the
 * guest powers off within its grace period. Boot time is not asserted.
 */
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { SSH_TEST_OPTIONS, makeSshKeyPair, pushDebianGuestImage, retryUntilZero, writeLocalSecret, type SshKeyPair } from '../../helpers/debian-guest.js';
import { startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { gitFixture, vmDocuments, type GitFixture } from '../standalone/fixture.js';
import { CLI, makeStateDir, vm as vmView, waitFor, type UpProcess } from '../standalone/harness.js';
import { startDebianUp, tearDownDebianUp, virsh } from './debian-up.js';

const NAME = 'vo-deb-agent';
const DOMAIN = `default_${NAME}`;
const USER = 'virtops';
const USERDATA_SECRET = `${NAME}-userdata`;
const KEYS_SECRET = `${NAME}-keys`;
const AGENT_KEYS_SECRET = `${NAME}-agent-keys`;

/** Makes the default user `virtops` (cloud-config `user:`), so the meta-data keys land there. */
const USER_DATA = [
  '#cloud-config',
  `user: {name: ${USER}, shell: /bin/bash, sudo: "ALL=(ALL) NOPASSWD:ALL"}`,
  'runcmd:',
  '  - [sh, -c, "echo from-the-secret >/run/virtops-ready"]',
  '',
].join('\n');

function debianVm(image: string): VirtualMachine {
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
              interfaces: [{ name: 'default', masquerade: {}, ports: [{ name: 'ssh', port: 22 }] }],
            },
          },
          networks: [{ name: 'default', pod: {} }],
          terminationGracePeriodSeconds: 120,
          accessCredentials: [
            { sshPublicKey: { source: { secret: { secretName: KEYS_SECRET } }, propagationMethod: { noCloud: {} } } },
            { sshPublicKey: { source: { secret: { secretName: AGENT_KEYS_SECRET } }, propagationMethod: { qemuGuestAgent: { users: [USER] } } } },
          ],
          volumes: [
            { name: 'root', containerDisk: { image } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { secretRef: { name: USERDATA_SECRET } } },
          ],
        },
      },
    },
  } as VirtualMachine;
}

let registry: LocalRegistry;
let git: GitFixture;
let stateDir: string;
let key: SshKeyPair;
let agentKey: SshKeyPair;
let up: UpProcess | undefined;
let image: string;

const virtops = (args: string[], timeout = 120_000) => execa(process.execPath, [CLI, ...args], { reject: false, timeout });
const sshWith = (k: SshKeyPair, ...command: string[]) => virtops(['ssh', '--server', up!.server, `${USER}@${NAME}`, '-i', k.privateKey, ...SSH_TEST_OPTIONS, '-o', 'IdentitiesOnly=yes', '--', ...command]);
const ssh = (...command: string[]) => sshWith(key, ...command);

async function getVmi(): Promise<VirtualMachineInstance | undefined> {
  const r = await virtops(['get', 'vmis', '-o', 'json', '--server', up!.server]);
  if (r.exitCode !== 0) throw new Error(`get vmis: ${String(r.stderr)}`);
  return (JSON.parse(String(r.stdout)) as { items: VirtualMachineInstance[] }).items.find((i) => i.metadata.name === NAME);
}

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushDebianGuestImage(registry);
  git = await gitFixture();
  stateDir = await makeStateDir();
  key = await makeSshKeyPair();
  agentKey = await makeSshKeyPair('virtops-agent-test');
  // Secrets never go to git: on a single host they are files under the state dir.
  await writeLocalSecret(stateDir, 'default', USERDATA_SECRET, { userdata: USER_DATA });
  await writeLocalSecret(stateDir, 'default', KEYS_SECRET, { key1: `${key.publicKey}\n` });
  await writeLocalSecret(stateDir, 'default', AGENT_KEYS_SECRET, { key1: `${agentKey.publicKey}\n` });
  up = await startDebianUp(git.bare, registry, stateDir);
}, 1_800_000); // a cold cache builds the image first

afterAll(async () => {
  await tearDownDebianUp({ up, stateDir, domain: DOMAIN, git, registry });
  await key?.remove();
  await agentKey?.remove();
}, 240_000);

describe('the Debian guest\'s agent and accessCredentials, from a git push', () => {
  let launcherLog: string;

  it('boots from git with user-data from a Secret (secretRef)', async () => {
    await git.commitDist({ [`${NAME}.k8s.yaml`]: vmDocuments(debianVm(image)) }, 'the Debian guest with accessCredentials');
    const v = await waitFor('Running', async () => {
      const x = await vmView(up!.server, NAME);
      return x?.status?.printableStatus === 'Running' && x.instance ? x : undefined;
    }, 300_000, 500);
    launcherLog = v.instance!.launcherLog;
  }, 360_000);

  let agentIp: string;

  it('get vmis: AgentConnected=True, guestOSInfo from the agent, the guest\'s IP', async () => {
    const vmi = await waitFor('AgentConnected and an IP', async () => {
      const x = await getVmi();
      const connected = x?.status?.conditions?.some((c) => c.type === 'AgentConnected' && c.status === 'True');
      return connected && x?.status?.interfaces?.[0]?.ipAddress ? x : undefined;
    }, 600_000, 2000);
    expect(vmi.status!.guestOSInfo?.id).toBe('debian');
    expect(vmi.status!.guestOSInfo?.kernelRelease).toMatch(/cloud-amd64/);
    const nic = vmi.status!.interfaces![0]!;
    expect(nic).toMatchObject({ name: 'default', infoSource: 'domain, guest-agent' });
    expect(nic.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    agentIp = nic.ipAddress!;
    // The VM mirrors the condition, as KubeVirt's does.
    await waitFor('the VM\'s AgentConnected', async () => (await vmView(up!.server, NAME))?.status?.conditions?.some((c) => c.type === 'AgentConnected' && c.status === 'True'), 60_000, 1000);
    const table = await virtops(['get', 'vmis', '--server', up!.server]);
    expect(String(table.stdout)).toMatch(new RegExp(`^${NAME}\\s+\\S+\\s+Running\\s+${agentIp.replace(/\./g, '\\.')}\\s`, 'm'));
  }, 660_000);

  it('virtops ssh with the key accessCredentials delivered (noCloud); the agent\'s IP is what ip -4 addr prints', async () => {
    // runcmd's file comes last in cloud-init's run: it also says the Secret's user-data (secretRef) ran.
    const r = await retryUntilZero(() => ssh('cat', '/run/virtops-ready', '&&', 'hostname', '&&', 'ip', '-4', '-o', 'addr', 'show', 'scope', 'global'), 40);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const [ready, hostname, ...addrLines] = String(r.stdout).trim().split('\n');
    expect(ready).toBe('from-the-secret');
    expect(hostname).toBe(NAME);
    const guestIps = addrLines.map((l) => /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(l)?.[1]).filter(Boolean);
    expect(guestIps).toContain(agentIp);
    // The key came only through accessCredentials: the user-data names no key.
    expect(USER_DATA).not.toContain('ssh');
  }, 600_000);

  it('a key from accessCredentials (qemuGuestAgent) is added through the agent and logs in', async () => {
    const r = await retryUntilZero(() => sshWith(agentKey, 'grep', '-c', 'virtops-agent-test', '.ssh/authorized_keys'), 24);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout).trim()).toBe('1');
    expect(await readFile(launcherLog, 'utf8')).toContain('ssh keys added through the guest agent (accessCredentials)');
  }, 300_000);

  it('a stop asks the agent first, and the guest powers off within its grace period', async () => {
    let log = '';
    const reading = setInterval(() => void readFile(launcherLog, 'utf8').then((t) => (log = t), () => undefined), 500);
    try {
      const r = await virtops(['stop', NAME, '--server', up!.server]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      await waitFor('Stopped', async () => (await vmView(up!.server, NAME))?.status?.printableStatus === 'Stopped', 180_000, 1000);
    } finally {
      clearInterval(reading);
    }
    expect(log).toContain('shutdown requested through the guest agent');
    expect(log).not.toContain('guest agent shutdown failed');
    expect(log).not.toContain('did not power off within the grace period');
    expect((await virsh('domstate', DOMAIN)).exitCode).not.toBe(0); // undefined, not destroyed-and-left
  }, 240_000);
});
