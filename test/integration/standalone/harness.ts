/**
 * Runs the real `virtops up` as a separate process (so SIGTERM and SIGKILL are real) and
 * the real CLI against it.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { VmView } from '../../../reconciler/standalone/backend.js';
import type { VmList } from '../../../reconciler/standalone/format.js';
import { freePort } from '../../helpers/registry.js';
import { sleep, waitFor } from '../../helpers/wait.js';

export const CLI = new URL('../../../cli/bin.js', import.meta.url).pathname;

export interface UpProcess {
  server: string;
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

/** Starts `virtops up` (through the CLI, or with `lean` through reconciler/standalone/entry.ts). */
export async function startUp(args: string[], stateDir: string, opts: { lean?: boolean } = {}): Promise<UpProcess> {
  const port = await freePort();
  const server = `http://127.0.0.1:${port}`;
  const entry = opts.lean ? ['--import', 'tsx', LEAN_ENTRY] : [CLI];
  const proc = execa(process.execPath, [...entry, 'up', '--state-dir', stateDir, '--listen', `127.0.0.1:${port}`, ...args], { reject: false, all: true, env: { VIRTOPS_LOG_LEVEL: 'info' } });
  let log = '';
  proc.all?.on('data', (b: Buffer) => (log += b.toString()));
  let exited = false;
  void proc.then(() => (exited = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`virtops up exited early:\n${log}`);
    const ok = await fetch(`${server}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`virtops up did not serve /healthz within 30 s:\n${log}`);
    await sleep(100);
  }
  return {
    server,
    stateDir,
    proc,
    logText: () => log,
    stop: async () => {
      if (!exited) proc.kill('SIGTERM');
      await proc;
    },
    kill9: async () => {
      if (!exited) proc.kill('SIGKILL');
      await proc;
    },
  };
}

export { sleep, waitFor };

export async function listVms(server: string): Promise<VmList> {
  const r = await fetch(`${server}/api/v1/vms`);
  return (await r.json()) as VmList;
}

export async function vm(server: string, name: string): Promise<VmView | undefined> {
  return (await listVms(server)).vms.find((v) => v.name === name);
}

export function cli(args: string[], server?: string) {
  return execa(process.execPath, [CLI, ...args, ...(server ? ['--server', server] : [])], { reject: false });
}

/** pids of launcher processes (monitor or launcher) whose argv mentions `needle`. */
export async function launcherPids(needle: string): Promise<{ pid: number; monitor: boolean; uid: string }[]> {
  const out: { pid: number; monitor: boolean; uid: string }[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!argv.some((a) => a.includes(needle))) continue;
    const i = argv.indexOf('--uid');
    if (i < 0 || !(argv.includes('launcher-monitor') || argv.includes('launcher'))) continue;
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
