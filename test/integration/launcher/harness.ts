/**
 * Test harness for the launcher: runs the real `virtops launcher-monitor` as a child
 * process with real flags in a temp dir, talks to its socket, and checks the host with
 * virsh and the file system.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { expect } from 'vitest';
import { callLauncher } from '../../../launcher/server/client.js';
import { waitFor } from '../../helpers/wait.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export interface MonitorHandle {
  proc: ChildProcess;
  dir: string;
  name: string;
  uid: string;
  namespace: string;
  socket: string;
  shareDir: string;
  ephemeralDir: string;
  serialLog: string;
  domain: string;
  /** Parsed JSON log lines of the launcher-monitor process (stderr). */
  logs: Record<string, unknown>[];
  /** The node arguments it was started with (to run `--cleanup-only` with the same flags). */
  args: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export async function startMonitor(opts: {
  name?: string;
  libvirtUri?: string;
  gracePeriodSeconds?: number;
  imageStore: string;
  insecureRegistry?: string;
  extra?: string[];
}): Promise<MonitorHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-launcher-'));
  const name = opts.name ?? randomName('lt');
  const uid = `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`;
  const namespace = 'default';
  const shareDir = join(dir, 'share');
  const ephemeralDir = join(dir, 'ephemeral');
  const args = [
    '--import', 'tsx', join(REPO, 'cli/main.ts'), 'launcher-monitor',
    '--qemu-timeout', '60s', '--name', name, '--uid', uid, '--namespace', namespace,
    '--kubevirt-share-dir', shareDir, '--ephemeral-disk-dir', ephemeralDir,
    '--container-disk-dir', join(dir, 'container-disks'),
    '--grace-period-seconds', String(opts.gracePeriodSeconds ?? 30), '--hook-sidecars', '0', '--emulation', 'tcg',
    '--libvirt-uri', opts.libvirtUri ?? 'qemu:///system', '--image-store', opts.imageStore,
    ...(opts.insecureRegistry ? ['--insecure-registry', opts.insecureRegistry] : []),
    ...(opts.extra ?? []),
  ];
  const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  proc.stderr!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
      if (process.env['VIRTOPS_TEST_VERBOSE']) process.stderr.write(`${line}\n`);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const socket = join(shareDir, 'sockets', 'launcher-sock');
  const domain = `${namespace}_${name}`;
  return {
    proc, dir, name, uid, namespace, socket, shareDir, ephemeralDir, domain, logs, exited, args,
    serialLog: join(shareDir, 'logs', `${domain}-serial0.log`),
    call: (method, path, body) => callLauncher(socket, method, path, body),
  };
}

/**
 * `launcher-monitor --cleanup-only` with the monitor's own flags, as the node agent runs it
 * after the launcher process died without cleaning up. Returns its exit code and log lines.
 */
export async function runCleanupOnly(m: Pick<MonitorHandle, 'args'>, argsOverride?: string[]): Promise<{ code: number | null; logs: Record<string, unknown>[] }> {
  const proc = spawn(process.execPath, [...(argsOverride ?? m.args), '--cleanup-only'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  const logs = out.split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return { raw: l };
    }
  });
  return { code, logs };
}

export { waitFor };

export const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export async function waitForSocket(m: MonitorHandle, timeoutMs = 30_000): Promise<void> {
  await waitFor('launcher socket', async () => (await m.call('GET', '/healthz')).status === 200, timeoutMs);
}

export async function serialText(m: MonitorHandle): Promise<string> {
  return readFile(m.serialLog, 'utf8').catch(() => '');
}

export async function waitForSerial(m: MonitorHandle, re: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
  return waitFor(`serial ${re}`, async () => (await serialText(m)).match(re) ?? undefined, timeoutMs, 250);
}

export async function virsh(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * SIGKILLs a launcher-monitor with a running domain, then runs `--cleanup-only` with its flags
 * (what the node agent does): the domain was still there after the kill, the cleanup exits 0
 * and says it cleaned up.
 */
export async function killThenCleanUp(m: MonitorHandle): Promise<void> {
  process.kill(m.proc.pid!, 'SIGKILL');
  expect((await m.exited).signal).toBe('SIGKILL');
  expect(await domainListed(m.domain)).toBe(true);
  const cleanup = await runCleanupOnly(m);
  expect(cleanup.code, JSON.stringify(cleanup.logs.slice(-5))).toBe(0);
  expect(cleanup.logs.some((l) => l['msg'] === 'cleaned up after the launcher')).toBe(true);
}

export async function domainListed(domain: string): Promise<boolean> {
  const r = await virsh('list', '--all', '--name');
  return r.stdout.split('\n').map((s) => s.trim()).includes(domain);
}

export async function domstate(domain: string): Promise<string> {
  const r = await virsh('domstate', domain);
  return r.exitCode === 0 ? r.stdout.trim() : `absent: ${r.stderr.trim()}`;
}

/** Files under the VMI's ephemeral volume directory (overlays, ISOs). */
export async function ephemeralFiles(m: MonitorHandle): Promise<string[]> {
  const root = join(m.ephemeralDir, 'volumes', 'ephemeral');
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(root);
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of processes whose command line mentions `needle` (e.g. a unique VMI name). */
export async function processesMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) pids.push(Number(p));
  }
  return pids;
}

/** Leaves nothing behind even when a test failed half-way. */
export async function forceCleanup(m: MonitorHandle | undefined): Promise<void> {
  if (!m) return;
  if (m.proc.exitCode === null && m.proc.signalCode === null) {
    m.proc.kill('SIGTERM');
    await Promise.race([m.exited, new Promise((r) => setTimeout(r, 45_000))]);
    if (m.proc.exitCode === null) m.proc.kill('SIGKILL');
  }
  for (const pid of await processesMentioning(m.uid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (await domainListed(m.domain)) {
    await virsh('destroy', m.domain);
    await virsh('undefine', '--nvram', m.domain);
  }
  await rm(m.dir, { recursive: true, force: true });
}

export function testGuestVmi(
  m: Pick<MonitorHandle, 'name' | 'namespace' | 'uid'>,
  image: string,
  marker: string,
  overrides: { memory?: string; imagePullPolicy?: 'Always' | 'IfNotPresent' } = {},
) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid },
    spec: {
      domain: {
        memory: { guest: overrides.memory ?? '128Mi' },
        firmware: { kernelBoot: { container: { image, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img', ...(overrides.imagePullPolicy ? { imagePullPolicy: overrides.imagePullPolicy } : {}) }, kernelArgs: 'console=ttyS0 no_timer_check' } },
        devices: {
          disks: [
            { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
            { name: 'scratch', disk: { bus: 'virtio' } },
          ],
        },
      },
      terminationGracePeriodSeconds: 30,
      volumes: [
        { name: 'cloudinitdisk', cloudInitNoCloud: { userData: `#cloud-config\nvirtops-marker: ${marker}\n` } },
        { name: 'scratch', emptyDisk: { capacity: '64Mi' } },
      ],
    },
  };
}
