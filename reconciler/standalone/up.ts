/**
 * `virtops up`: wires the git source, the single-host backend, the node agent and the HTTP
 * API together and runs until SIGTERM/SIGINT. On the way out it stops reconciling and
 * leaves every VM running; the next `virtops up` on the same state dir adopts them.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { GitSource, createWebhookRoute, isLocalPath } from '../source/index.js';
import { NodeAgent } from '../agent/agent.js';
import { processAlive } from '../agent/process-runtime.js';
import { StandaloneBackend } from './backend.js';
import { startApi, type ApiServer } from './api.js';
import { LibvirtDomains } from './libvirt-domains.js';
import { ReconcilerMetrics } from './metrics.js';
import { StateStore } from './state-store.js';
import { DEFAULT_LISTEN } from './client.js';
import { baseEnv, hostFlags, validateHostFlags, type HostEmulation } from '../agent/host-config.js';
import { durationFlag } from '../agent/duration-flag.js';

export { DEFAULT_LISTEN };
export const CLI_BIN = fileURLToPath(new URL('../../cli/bin.js', import.meta.url));

export interface RawUpFlags {
  repo?: string;
  branch?: string;
  path?: string;
  stateDir?: string;
  listen?: string;
  emulation?: string;
  interval?: string;
  libvirtUri?: string;
  webhookSecretFile?: string;
  insecureRegistry?: string[];
  freshnessCheck?: boolean;
  concurrency?: string;
  launcherRuntime?: string;
}

export interface UpConfig {
  repo: string;
  branch: string;
  distPath: string;
  stateDir: string;
  listen: { host: string; port: number };
  emulation: HostEmulation;
  intervalMs: number;
  libvirtUri: string;
  webhookSecretFile?: string;
  insecureRegistries: string[];
  freshness: boolean;
  concurrency: number;
  /** `process` (default): one OS process per launcher; `pool`: one process hosts all (benchmarks only). */
  launcherRuntime: 'process' | 'pool';
}

/** Pure flag validation: every problem at once, each naming the flag and the fix. */
export function validateUpFlags(raw: RawUpFlags, cwd = process.cwd()): { ok: true; config: UpConfig } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const repoRaw = raw.repo?.trim() ?? '';
  if (!repoRaw) errors.push('--repo is required: pass a local repository path (bare or not) or a git URL, e.g. --repo /srv/git/vms.git');
  const repo = repoRaw && isLocalPath(repoRaw) ? resolve(cwd, repoRaw) : repoRaw;
  const branch = raw.branch ?? 'main';
  if (!/^[\w.\-/]+$/.test(branch) || branch.includes('..') || branch.startsWith('-')) errors.push(`--branch "${branch}" is not a branch name: use e.g. --branch main`);
  const distPath = raw.path ?? 'dist';
  if (isAbsolute(distPath) || distPath.split('/').includes('..') || distPath === '') errors.push(`--path "${distPath}" must be a directory inside the repository, e.g. --path dist`);
  const host = validateHostFlags(raw, errors);
  const listenRaw = raw.listen ?? DEFAULT_LISTEN;
  const lm = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listenRaw);
  const port = lm ? Number(lm[2]) : NaN;
  if (!lm || port > 65535) errors.push(`--listen "${listenRaw}" is not HOST:PORT: use e.g. --listen 127.0.0.1:8686 (port 0 picks a free one)`);
  const intervalMs = durationFlag(raw.interval ?? '1m', '--interval', errors, { min: 100 });
  const concurrency = Number(raw.concurrency ?? '16');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 512) errors.push(`--concurrency "${raw.concurrency}" is not a whole number in 1..512: use e.g. --concurrency 16`);
  const launcherRuntime = raw.launcherRuntime ?? 'process';
  if (launcherRuntime !== 'process' && launcherRuntime !== 'pool') errors.push(`--launcher-runtime "${launcherRuntime}" is not one of process, pool: use process (pool is for control-plane benchmarks)`);
  if (raw.webhookSecretFile !== undefined && raw.webhookSecretFile.trim() === '') errors.push('--webhook-secret-file is empty: pass the path of a file holding the shared secret');
  if (errors.length || !host || intervalMs === undefined) return { ok: false, errors };
  const listenHost = lm![1]!.replace(/^\[|\]$/g, '');
  return {
    ok: true,
    config: {
      repo, branch, distPath, ...host, listen: { host: listenHost, port }, intervalMs,
      ...(raw.webhookSecretFile ? { webhookSecretFile: resolve(cwd, raw.webhookSecretFile) } : {}),
      freshness: raw.freshnessCheck !== false, concurrency, launcherRuntime: launcherRuntime as UpConfig['launcherRuntime'],
    },
  };
}

export interface UpHandle {
  address: string;
  backend: StandaloneBackend;
  source: GitSource;
  /** Graceful stop: reconciling ends, VMs keep running. */
  stop(): Promise<void>;
}

export async function runUp(config: UpConfig, log: Logger = pino({ name: 'virtops-up' })): Promise<UpHandle> {
  const store = new StateStore(config.stateDir);
  await store.init();
  const other = await store.readUp();
  if (other && other.pid !== process.pid && (await processAlive(other.pid))) {
    throw new Error(`--state-dir ${config.stateDir} is in use by another virtops up (pid ${other.pid}, ${other.listen}); stop it first or pass another --state-dir`);
  }
  let webhookSecret = '';
  if (config.webhookSecretFile) {
    webhookSecret = (await readFile(config.webhookSecretFile, 'utf8').catch((err: unknown) => {
      throw new Error(`--webhook-secret-file ${config.webhookSecretFile}: ${(err as Error).message}`);
    })).trim();
    if (!webhookSecret) throw new Error(`--webhook-secret-file ${config.webhookSecretFile} is empty: put the shared secret in it`);
  }

  const metrics = new ReconcilerMetrics();
  const domains = new LibvirtDomains(config.libvirtUri);
  const agent = new NodeAgent({
    podsDir: store.podsDir,
    virtopsCommand: [process.execPath, CLI_BIN],
    hostFlags: hostFlags(config),
    baseEnv: baseEnv(),
    janitor: domains,
    // The pool (many launchers in one process) exists for control-plane benchmarks only: it is
    // loaded on demand, never part of what `up` runs otherwise.
    ...(config.launcherRuntime === 'pool'
      ? { runtime: new (await import('../agent/pool.js')).PoolRuntime({ socketPath: join(config.stateDir, 'pool.sock'), command: [process.execPath, CLI_BIN], logFile: join(config.stateDir, 'pool.log') }) }
      : {}),
    log: log.child({ component: 'agent' }),
  });
  const backend = new StandaloneBackend({
    store, agent, domains, metrics, resyncMs: config.intervalMs, concurrency: config.concurrency, log: log.child({ component: 'backend' }),
  });
  await backend.start();

  const source = new GitSource({
    repo: config.repo,
    branch: config.branch,
    distPath: config.distPath,
    pollIntervalMs: config.intervalMs,
    resyncIntervalMs: config.intervalMs,
    cacheDir: join(config.stateDir, 'source'),
    ...(config.freshness ? {} : { freshness: false as const }),
    logger: log,
    onCheck: (i) => metrics.sourceChecks.inc({ outcome: i.outcome }),
  });
  source.on('revision', (r: { sha: string; manifests: never[] }) => {
    backend.applyRevision(r).catch((err: unknown) => log.error({ err, sha: r.sha }, 'applying the revision failed'));
  });
  source.on('refused', (r: { sha: string; errors: string[] }) => {
    backend.recordRefusal(r.sha, r.errors).catch((err: unknown) => log.error({ err }, 'recording the refusal failed'));
  });

  const webhook = createWebhookRoute({
    secret: webhookSecret,
    branch: config.branch,
    onPush: () => void source.checkNow('webhook'),
    logger: log.child({ component: 'webhook' }),
  });
  let api: ApiServer;
  try {
    api = await startApi(config.listen, {
      backend,
      metrics,
      log,
      webhook,
      ready: () => backend.appliedRevision.sha !== undefined,
      sourceInfo: () => ({
        repo: config.repo,
        branch: config.branch,
        path: config.distPath,
        applied: backend.appliedRevision.sha ?? null,
        latestGood: source.current?.sha ?? null,
        refused: backend.appliedRevision.refused ?? null,
        counters: source.counters,
      }),
      diff: () => backend.diff(source.current),
    });
  } catch (err) {
    await backend.stop();
    await domains.close();
    throw new Error(`--listen ${config.listen.host}:${config.listen.port}: ${(err as Error).message} (pass another --listen address)`);
  }
  await store.writeUp({ pid: process.pid, listen: api.address, repo: config.repo, branch: config.branch, startedAt: new Date().toISOString() });
  log.info({ listen: api.address, repo: config.repo, branch: config.branch, stateDir: config.stateDir, interval: config.intervalMs, emulation: config.emulation, launcherRuntime: config.launcherRuntime }, `virtops up: serving on http://${api.address}`);
  // The first check fetches and validates; run it after the API is up so `get vms` answers meanwhile.
  void source.start().catch((err: unknown) => log.error({ err }, 'the git source failed to start'));

  let stopped: Promise<void> | undefined;
  return {
    address: api.address,
    backend,
    source,
    stop: () =>
      (stopped ??= (async () => {
        log.info('stopping: VMs keep running; the next virtops up adopts them');
        await source.stop();
        await backend.stop();
        await api.close();
        await domains.close();
        await store.removeUp();
        log.info({ vms: backend.list().filter((v) => v.instance).length }, 'stopped');
      })()),
  };
}
