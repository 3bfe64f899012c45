/**
 * Runs the real `virtops up` as a separate process (so SIGTERM and SIGKILL are real) and
 * the real CLI against it.
 */
import { request } from 'node:http';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll } from 'vitest';
import { gitFixture, type GitFixture } from './fixture.js';
import type { VmView } from '../../../reconciler/standalone/backend.js';
import type { VmList } from '../../../reconciler/standalone/format.js';
import { apiCall, socketPath } from '../../../reconciler/standalone/client.js';
import { type LocalRegistry, freePort, pushTestGuestImages, startRegistry } from '../../helpers/registry.js';
import { sleep, waitFor } from '../../helpers/wait.js';

export const CLI = new URL('../../../cli/bin.js', import.meta.url).pathname;

/** How long `up` may take to stop after SIGTERM before a test calls it hung. */
const STOP_TIMEOUT_MS = 60_000;

export interface UpProcess {
  /** `unix:<state-dir>/up.sock`: the API's default listener (pass it to listVms, vm, cli). */
  server: string;
  /** With `tcp`: `http://127.0.0.1:PORT` (every request needs `token`). */
  tcpServer?: string;
  tcpPort?: number;
  token?: string;
  stateDir: string;
  proc: ResultPromise;
  logText(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill9(): Promise<void>;
}

/** A short state dir under /tmp (unix socket paths under it must stay below 108 bytes). */
export function makeStateDir(): Promise<string> {
  return mkdtemp('/tmp/vo-st-');
}

export const LEAN_ENTRY = new URL('../../../reconciler/standalone/entry.ts', import.meta.url).pathname;

/**
 * Starts `virtops up` (through the CLI, with `lean` through reconciler/standalone/entry.ts,
 * or through `bin`, an executable taking the same arguments, e.g. bench/pool-bin.mjs)
 * serving its API on the unix socket in the state dir; with `tcp` also on a free local port.
 */
export async function startUp(args: string[], stateDir: string, opts: { lean?: boolean; tcp?: boolean; bin?: string } = {}): Promise<UpProcess> {
  const port = opts.tcp ? await freePort() : undefined;
  const server = `unix:${socketPath(stateDir)}`;
  const entry = opts.bin ? [opts.bin] : opts.lean ? ['--import', 'tsx', LEAN_ENTRY] : [CLI];
  const listen = port ? ['--listen', `127.0.0.1:${port}`] : [];
  const proc = execa(process.execPath, [...entry, 'up', '--state-dir', stateDir, ...listen, ...args], {
    reject: false,
    all: true,
    env: { VIRTOPS_LOG_LEVEL: 'info' },
    // stop() judges a slow stop itself; execa's default would SIGKILL it 5 s after SIGTERM, silently.
    forceKillAfterDelay: false,
  });
  let log = '';
  proc.all?.on('data', (b: Buffer) => (log += b.toString()));
  let exited = false;
  void proc.then(() => (exited = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`virtops up exited early:\n${log}`);
    // A stale socket of a SIGKILLed up refuses connections until the new one replaces it.
    const ok = await apiCall(server, 'GET', '/healthz').then(() => true, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`virtops up did not serve /healthz within 30 s:\n${log}`);
    await sleep(100);
  }
  const token = port ? (await readFile(join(stateDir, 'api.token'), 'utf8')).trim() : undefined;
  return {
    server,
    ...(port ? { tcpServer: `http://127.0.0.1:${port}`, tcpPort: port, token } : {}),
    stateDir,
    proc,
    logText: () => log,
    stop: async () => {
      if (exited) return;
      const started = Date.now();
      proc.kill('SIGTERM');
      const stoppedInTime = await Promise.race([proc.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
      if (stoppedInTime) return;
      proc.kill('SIGKILL');
      await proc;
      throw new Error(`virtops up did not stop within ${(Date.now() - started) / 1000} s of SIGTERM (then SIGKILLed):\n${log}`);
    },
    kill9: async () => {
      if (!exited) proc.kill('SIGKILL');
      await proc;
    },
  };
}

export { sleep, waitFor };

export function listVms(server: string): Promise<VmList> {
  return apiCall<VmList>(server, 'GET', '/api/v1/vms');
}

/** GET through the CLI's client (unix:/path or http://; JSON parsed, text as is). */
export function apiGet<T = unknown>(server: string, path: string): Promise<T> {
  return apiCall<T>(server, 'GET', path);
}

export interface RawResponse {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One request with exactly these headers (fetch would not send a forged Host), over TCP or a unix socket. */
export function rawRequest(to: { port: number } | { socketPath: string }, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ ...('port' in to ? { host: '127.0.0.1', port: to.port } : { socketPath: to.socketPath }), method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function vm(server: string, name: string): Promise<VmView | undefined> {
  return (await listVms(server)).vms.find((v) => v.name === name);
}

export function cli(args: string[], server?: string, env: Record<string, string> = {}) {
  return execa(process.execPath, [CLI, ...args, ...(server ? ['--server', server] : [])], { reject: false, env });
}

/** pids of launcher processes (monitor or launcher) whose argv mentions `needle`. */
export async function launcherPids(needle: string): Promise<{ pid: number; monitor: boolean; uid: string }[]> {
  const out: { pid: number; monitor: boolean; uid: string }[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!argv.some((a) => a.includes(needle))) continue;
    const i = argv.indexOf('--uid');
    // `--cleanup-only`: the node agent's one-shot cleanup after a dead launcher, not a launcher.
    if (i < 0 || !(argv.includes('launcher-monitor') || argv.includes('launcher')) || argv.includes('--cleanup-only')) continue;
    const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    if (/\) [ZX] /.test(stat)) continue;
    out.push({ pid: Number(e), monitor: argv.includes('launcher-monitor'), uid: argv[i + 1] ?? '' });
  }
  return out;
}

/** Kills every launcher under `stateDir` (test cleanup) and removes the dir. */
export async function cleanupStateDir(stateDir: string): Promise<void> {
  for (const p of await launcherPids(stateDir)) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await waitFor('launchers to exit', async () => (await launcherPids(stateDir)).length === 0, 60_000).catch(async () => {
    for (const p of await launcherPids(stateDir)) process.kill(p.pid, 'SIGKILL');
  });
  await rm(stateDir, { recursive: true, force: true });
}

export function readyCondition(v: VmView | undefined, type: string): string | undefined {
  return v?.status?.conditions?.find((c) => c.type === type)?.status;
}

export { join };

/** What `upFixture` gives a test file: a git fixture, a state dir, and the `up` it starts there. */
export interface UpFixture {
  git: GitFixture;
  stateDir: string;
  up?: UpProcess;
}

/**
 * Registers the usual hooks of a test file that runs one `virtops up`: a fresh git fixture and
 * state dir before, and after: `up` stopped, its launchers and state dir removed, git removed.
 */
export function upFixture(): UpFixture {
  const f = {} as UpFixture;
  beforeAll(async () => {
    f.git = await gitFixture();
    f.stateDir = await makeStateDir();
  });
  afterAll(async () => {
    await f.up?.stop().catch(() => undefined);
    if (f.stateDir) await cleanupStateDir(f.stateDir);
    await f.git?.cleanup();
  });
  return f;
}

/** `upFixture` for a real guest: a local registry with the test guest's image, `up` started. */
export interface GuestUpFixture extends UpFixture {
  registry: LocalRegistry;
  /** The test guest's kernel-boot image in that registry. */
  image: string;
}

/**
 * Registers the hooks of a test file that runs the test guest under one `virtops up`
 * (qemu:///system): before, a registry with the guest's image, git, a state dir and `up` with
 * `upArgs`; after, `up` stopped, launchers and state dir removed, the guest's `domain`
 * destroyed and undefined if left, git and registry removed. (A file's own afterAll runs first.)
 */
export function guestUpFixture(domain: string, upArgs: (f: GuestUpFixture) => string[]): GuestUpFixture {
  const f = {} as GuestUpFixture;
  const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });
  beforeAll(async () => {
    f.registry = await startRegistry();
    f.image = (await pushTestGuestImages(f.registry)).kernelBootImage;
    f.git = await gitFixture();
    f.stateDir = await makeStateDir();
    f.up = await startUp(upArgs(f), f.stateDir);
  }, 300_000);
  afterAll(async () => {
    await f.up?.stop().catch(() => undefined);
    if (f.stateDir) await cleanupStateDir(f.stateDir);
    if ((await virsh('domstate', domain)).exitCode === 0) {
      await virsh('destroy', domain);
      await virsh('undefine', domain);
    }
    await f.git?.cleanup();
    await f.registry?.stop();
  });
  return f;
}
