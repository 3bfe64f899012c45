import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { pushOciLayout, type LocalRegistry } from './registry.js';
import type { AccessCredential, Disk, Port, VirtualMachine, Volume } from '../../api/kubevirt.js';

/** The Debian 12 guest built by scripts/guest-image/build.sh (its info.json). */
export interface DebianGuest {
  key: string;
  kernelVersion: string;
  /** The qcow2 on this host. */
  disk: string;
  /** Where the disk sits inside the containerDisk image (`/disk/debian-12.qcow2`). */
  diskPath: string;
  /** OCI layout, tag `latest`: the KubeVirt containerDisk. */
  ociDisk: string;
  qcow2Bytes: number;
  virtualBytes: number;
  containerDiskBytes: number;
}

const SCRIPT = fileURLToPath(new URL('../../scripts/guest-image/build.sh', import.meta.url));

let cached: Promise<DebianGuest> | undefined;

/**
 * Builds the Debian guest image if the cache lacks it (minutes, cold) and returns its
 * paths; a cache hit costs a hash of the build script.
 */
export function ensureDebianGuest(): Promise<DebianGuest> {
  cached ??= (async () => {
    const { stdout } = await execa('bash', [SCRIPT], { stderr: 'inherit' });
    const dir = stdout.trim().split('\n').at(-1)!;
    return JSON.parse(await readFile(`${dir}/info.json`, 'utf8')) as DebianGuest;
  })();
  return cached;
}

/** Pushes the Debian containerDisk as `<registry>/virtops/debian-12:latest`; returns that reference. */
export async function pushDebianGuestImage(registry: LocalRegistry): Promise<string> {
  const guest = await ensureDebianGuest();
  return pushOciLayout(registry, guest.ociDisk, 'virtops/debian-12');
}

/** An ed25519 key pair in a temporary directory (`remove()` deletes it). */
export interface SshKeyPair {
  dir: string;
  privateKey: string;
  publicKey: string;
  remove(): Promise<void>;
}

export async function makeSshKeyPair(comment = 'virtops-test'): Promise<SshKeyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-sshkey-'));
  const privateKey = join(dir, 'id');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', privateKey]);
  return { dir, privateKey, publicKey: (await readFile(`${privateKey}.pub`, 'utf8')).trim(), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** ssh options for a throw-away guest: no host key checks, no prompts, no banners. */
export const SSH_TEST_OPTIONS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];

/**
 * Runs `attempt` until it exits 0 (sshd may still be making host keys, cloud-init still
 * making the user, right after the guest says it is ready); returns the last result.
 */
export async function retryUntilZero<R extends { exitCode?: number }>(attempt: () => Promise<R>, tries = 20, pauseMs = 5000): Promise<R> {
  let r = await attempt();
  for (let i = 1; i < tries && r.exitCode !== 0; i++) {
    await new Promise((s) => setTimeout(s, pauseMs));
    r = await attempt();
  }
  return r;
}

/**
 * A single-host Secret as `virtops up` (and its launchers) read it: one file per key under
 * `<stateDir>/secrets/secrets/<namespace>/<name>/` (README, Platform notes).
 */
export async function writeLocalSecret(stateDir: string, namespace: string, name: string, data: Record<string, string>): Promise<void> {
  const dir = join(stateDir, 'secrets', 'secrets', namespace, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [key, value] of Object.entries(data)) await writeFile(join(dir, key), value, { mode: 0o600 });
}

export interface DebianVmOptions {
  name: string;
  namespace?: string;
  /** The containerDisk image of the Debian guest. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** The cloud-init user-data and which data source carries it. */
  cloudInit: { noCloud: string } | { configDrive: string };
  /** Ports declared on the pod-network interface (only these come in). */
  ports: Port[];
  terminationGracePeriodSeconds: number;
  labels?: Record<string, string>;
  /** Disks beyond root and cloudinitdisk, each with its volume. */
  extraDisks?: { disk: Disk; volume: Volume }[];
  accessCredentials?: AccessCredential[];
}

/**
 * The Debian test VM every Debian test and bench starts from: 1 GiB, virtio root disk from
 * the containerDisk, cloud-init disk, one masquerade interface on the pod network, Always.
 */
export function debianVm(o: DebianVmOptions): VirtualMachine {
  const cloudinitdisk: Volume = 'noCloud' in o.cloudInit
    ? { name: 'cloudinitdisk', cloudInitNoCloud: { userData: o.cloudInit.noCloud } }
    : { name: 'cloudinitdisk', cloudInitConfigDrive: { userData: o.cloudInit.configDrive } };
  const extra = o.extraDisks ?? [];
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: o.name, namespace: o.namespace ?? 'default' },
    spec: {
      runStrategy: 'Always',
      template: {
        ...(o.labels ? { metadata: { labels: o.labels } } : {}),
        spec: {
          domain: {
            memory: { guest: '1Gi' },
            devices: {
              disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'cloudinitdisk', disk: { bus: 'virtio' } }, ...extra.map((e) => e.disk)],
              interfaces: [{ name: 'default', masquerade: {}, ports: o.ports }],
            },
          },
          networks: [{ name: 'default', pod: {} }],
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds,
          ...(o.accessCredentials ? { accessCredentials: o.accessCredentials } : {}),
          volumes: [
            { name: 'root', containerDisk: { image: o.image, ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}) } },
            cloudinitdisk,
            ...extra.map((e) => e.volume),
          ],
        },
      },
    },
  } as VirtualMachine;
}
