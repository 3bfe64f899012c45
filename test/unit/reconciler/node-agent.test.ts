import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type InstanceRecord, type LauncherRuntime, NodeAgent, ProcessRuntime } from '../../../reconciler/agent/agent.js';
import { LAUNCHER_NODE_FLAGS, withLauncherNodeFlags } from '../../../reconciler/agent/process-runtime.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A launcher runtime whose launchers are already gone (the monitor died with libvirtd down). */
const goneRuntime: LauncherRuntime = { kind: 'fake', start: () => Promise.resolve(1), alive: () => Promise.resolve(false), stop: () => Promise.resolve() };

async function agentWith(removeDomain: () => Promise<'removed' | 'absent'>) {
  const dir = await mkdtemp(join(tmpdir(), 'vo-na-'));
  dirs.push(dir);
  const agent = new NodeAgent({ podsDir: join(dir, 'pods'), virtopsCommand: ['node'], hostFlags: {} as never, baseEnv: {}, janitor: { removeDomain }, runtime: goneRuntime, log: pino({ level: 'silent' }) });
  const record: InstanceRecord = { uid: 'u1', createdAt: 0, spec: { domain: { devices: {} } }, podDir: join(dir, 'pods', 'x'), socketPath: join(dir, 'nope.sock'), shareDir: join(dir, 'share'), domainName: 'default_g1', logFile: join(dir, 'l.log'), podGraceSeconds: 60 };
  return { agent, record };
}

describe('NodeAgent.stop: a cleanup that fails is retried, never forgotten', () => {
  it('libvirt unavailable while removing a domain left behind: the stop fails (CleanupFailed) so the caller keeps the instance', async () => {
    const { agent, record } = await agentWith(() => Promise.reject(new Error('libvirt is unavailable')));
    await expect(agent.stop(record, 30)).rejects.toMatchObject({ reason: 'CleanupFailed', message: expect.stringContaining('libvirt is unavailable') });
  });

  it('once libvirt answers again the retried stop removes the domain and succeeds', async () => {
    let calls = 0;
    const { agent, record } = await agentWith(() => (++calls === 1 ? Promise.reject(new Error('libvirt is unavailable')) : Promise.resolve('removed')));
    await expect(agent.stop(record, 30)).rejects.toThrow();
    await expect(agent.stop(record, 30)).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
});

describe('NodeAgent.stop: nothing of the stopped instance stays behind', () => {
  it('removes the sockets QEMU bound for it (VNC, console) along with the launcher socket', async () => {
    const { agent, record } = await agentWith(() => Promise.resolve('absent'));
    const sockets = join(record.shareDir, 'sockets');
    await mkdir(sockets, { recursive: true });
    const servers = await Promise.all(['vnc', 'serial0'].map((n) => new Promise<Server>((resolve) => {
      const srv = createServer();
      srv.listen(join(sockets, n), () => resolve(srv));
    })));
    await writeFile(join(sockets, 'keep.txt'), 'not a socket');
    await agent.stop(record, 30);
    expect((await readdir(sockets)).sort()).toEqual(['keep.txt']);
    for (const srv of servers) srv.close();
  });
});

describe('NodeAgent.adopt', () => {
  it('a launcher whose pid was never recorded (up killed right after spawning it) gets it recorded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vo-na-'));
    dirs.push(dir);
    const runtime: LauncherRuntime = { ...goneRuntime, alive: () => Promise.resolve(true), pid: () => Promise.resolve(4242) };
    const agent = new NodeAgent({ podsDir: join(dir, 'pods'), virtopsCommand: ['node'], hostFlags: {} as never, baseEnv: {}, janitor: { removeDomain: () => Promise.resolve('absent') }, runtime, log: pino({ level: 'silent' }) });
    const record: InstanceRecord = { uid: 'u1', createdAt: 0, spec: { domain: { devices: {} } }, podDir: dir, socketPath: join(dir, 'nope.sock'), shareDir: dir, domainName: 'default_g1', logFile: join(dir, 'l.log'), podGraceSeconds: 60 };
    await agent.adopt({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'g1', uid: 'u1' }, spec: { domain: { devices: {} } } }, record);
    expect(record.pid).toBe(4242);
  });
});

describe('NodeAgent.plan: any valid name fits', () => {
  it('a 63-character name in a 63-character namespace under a 64-byte state dir: every socket fits 107 bytes', async () => {
    const { renderLauncherPod } = await import('../../../synth/launcher-pod.js');
    const { serialSocketPath } = await import('../../../launcher/convert/console.js');
    const stateDir = `/${'s'.repeat(63)}`;
    const agent = new NodeAgent({ podsDir: join(stateDir, 'pods'), virtopsCommand: ['node'], hostFlags: { libvirtUri: 'qemu:///system', imageStore: `${stateDir}/images`, pvcDir: `${stateDir}/pvcs`, secretsDir: `${stateDir}/secrets`, insecureRegistries: [] } as never, baseEnv: {}, janitor: { removeDomain: () => Promise.resolve('absent') }, runtime: goneRuntime, log: pino({ level: 'silent' }) });
    const name = 'v'.repeat(63);
    const namespace = 'n'.repeat(63);
    const vm = { apiVersion: 'kubevirt.io/v1' as const, kind: 'VirtualMachine' as const, metadata: { name, namespace }, spec: { runStrategy: 'Always' as const, template: { spec: { domain: { devices: {} } } } } };
    const { spec, record } = agent.plan({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace, uid: '0f8e7d6c-1234-4321-abcd-0123456789ab' }, spec: vm.spec.template.spec }, renderLauncherPod(vm), { podName: name, now: 0 });
    for (const socket of [spec.socketPath, serialSocketPath(spec.shareDir), `${spec.shareDir}/sockets/vnc`]) expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(107);
    expect(record.domainName).toBe(`${namespace}_${name}`);
  });
});

describe('NodeAgent.sweepOrphans: launcher Pod dirs whose Pod is gone', () => {
  it('orphanPodDirs keeps what the caller keeps and anything not shaped like a pod dir', async () => {
    const { orphanPodDirs } = await import('../../../reconciler/agent/agent.js');
    expect(orphanPodDirs(['0123456789ab', 'ba9876543210', 'README', 'x'.repeat(12)], new Set(['0123456789ab']))).toEqual(['ba9876543210']);
  });

  it('domainNameFromArgv reads the domain a launcher command line runs', async () => {
    const { domainNameFromArgv } = await import('../../../reconciler/agent/agent.js');
    expect(domainNameFromArgv(['node', 'bin.js', 'launcher-monitor', '--name', 'v1', '--uid', 'u', '--namespace', 'prod'])).toBe('prod_v1');
    expect(domainNameFromArgv(['node', 'bin.js', 'launcher', '--name', 'v1'])).toBe('default_v1');
    expect(domainNameFromArgv(['sleep', '1'])).toBeUndefined();
  });

  it('removes an unkept dir and stops the process running from it (a stand-in launcher); a kept dir is untouched', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    const { spawn } = await import('node:child_process');
    const { processAlive } = await import('../../../reconciler/agent/process-runtime.js');
    const dir = await mkdtemp(join(tmpdir(), 'vo-sweep-'));
    dirs.push(dir);
    const pods = join(dir, 'pods');
    const [kept, orphan] = ['0123456789ab', 'ba9876543210'];
    for (const d of [kept, orphan]) await mkdir(join(pods, d, 'public'), { recursive: true });
    await writeFile(join(pods, orphan, 'public', 'f'), 'x');
    // A process whose argv points into the orphaned dir, as a launcher's --kubevirt-share-dir does.
    const standIn = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', '--', '--kubevirt-share-dir', join(pods, orphan, 'public'), '--name', 'v9', '--namespace', 'ns'], { detached: true, stdio: 'ignore' });
    standIn.unref();
    const removed: string[] = [];
    const agent = new NodeAgent({ podsDir: pods, virtopsCommand: ['node'], hostFlags: {} as never, baseEnv: {}, janitor: { removeDomain: (d) => { removed.push(d); return Promise.resolve('absent'); } }, runtime: goneRuntime, log: pino({ level: 'silent' }) });
    try {
      expect(await agent.sweepOrphans(() => new Set([kept]))).toEqual([orphan]);
      expect(existsSync(join(pods, orphan))).toBe(false);
      expect(existsSync(join(pods, kept))).toBe(true);
      expect(await processAlive(standIn.pid!)).toBe(false);
      expect(removed).toEqual(['ns_v9']);
    } finally {
      try { process.kill(standIn.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
  });
});

describe('ProcessRuntime.stop: the supervisor cleans up after a launcher process that died (one process per VM)', () => {
  /** A record whose launcher is gone; its "launcher command" (a node script recording the cleanup run) carries the flags a launcher needs. */
  async function deadLauncher(exitCode: number) {
    const dir = await mkdtemp(join(tmpdir(), 'vo-pr-'));
    dirs.push(dir);
    const marker = join(dir, 'cleanup-ran');
    const script = `require('fs').appendFileSync(${JSON.stringify(marker)}, process.argv.slice(1).join(' ') + '\\n'); process.exit(${exitCode})`;
    const record: InstanceRecord = {
      uid: 'u-dead', createdAt: 0, spec: { domain: { devices: {} } }, podDir: dir, socketPath: join(dir, 'launcher-sock'), shareDir: join(dir, 'share'),
      domainName: 'default_g1', logFile: join(dir, 'launcher.log'), podGraceSeconds: 1,
      launch: { argv: [process.execPath, '-e', script, '--', 'launcher-monitor', '--uid', 'u-dead', '--name', 'g1', '--namespace', 'default', '--kubevirt-share-dir', join(dir, 'share'), '--ephemeral-disk-dir', join(dir, 'eph'), '--container-disk-dir', join(dir, 'cd')], env: {} },
    };
    return { record, marker, dir };
  }
  const log = pino({ level: 'silent' });
  const ran = (marker: string) => readFile(marker, 'utf8').catch(() => '');

  it('socket left behind (a SIGKILL): runs `launcher-monitor --cleanup-only` with the same flags', async () => {
    const { record, marker } = await deadLauncher(0);
    await writeFile(record.socketPath, '');
    await new ProcessRuntime().stop(record, 1000, log);
    expect(await ran(marker)).toMatch(/launcher-monitor --uid u-dead .* --cleanup-only\n$/);
  });

  it('state file left behind: also cleans up', async () => {
    const { record, marker } = await deadLauncher(0);
    await mkdir(join(record.shareDir, 'launcher'), { recursive: true });
    await writeFile(join(record.shareDir, 'launcher', 'launcher-state.json'), '{}');
    await new ProcessRuntime().stop(record, 1000, log);
    expect(await ran(marker)).toContain('--cleanup-only');
  });

  it('a failed cleanup throws CleanupFailed (the caller keeps the instance and retries)', async () => {
    const { record } = await deadLauncher(3);
    await writeFile(record.socketPath, '');
    await expect(new ProcessRuntime().stop(record, 1000, log)).rejects.toMatchObject({ reason: 'CleanupFailed' });
  });

  it('nothing left behind (a clean exit): no cleanup process', async () => {
    const { record, marker } = await deadLauncher(0);
    await new ProcessRuntime().stop(record, 1000, log);
    expect(await ran(marker)).toBe('');
  });
});

describe('withLauncherNodeFlags', () => {
  it('adds LAUNCHER_NODE_FLAGS (none at present) after a node binary, once, and leaves other commands alone', () => {
    expect(withLauncherNodeFlags(['/usr/bin/node', 'cli/bin.js', 'launcher-monitor'])).toEqual(['/usr/bin/node', ...LAUNCHER_NODE_FLAGS, 'cli/bin.js', 'launcher-monitor']);
    expect(withLauncherNodeFlags(['node', ...LAUNCHER_NODE_FLAGS, 'x'])).toEqual(['node', ...LAUNCHER_NODE_FLAGS, 'x']);
    expect(withLauncherNodeFlags(['/usr/local/bin/virtops', 'launcher-monitor'])).toEqual(['/usr/local/bin/virtops', 'launcher-monitor']);
  });
});
