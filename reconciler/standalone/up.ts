/**
 * `virtops up`: wires the git source, the single-host backend, the node agent and the HTTP
 * API together and runs until SIGTERM/SIGINT. On the way out it stops reconciling and
 * leaves every VM running; the next `virtops up` on the same state dir adopts them.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { GitSource, createWebhookRoute, isLocalPath } from '../source/index.js';
import { NodeAgent, type LauncherRuntime } from '../agent/agent.js';
import { processAlive } from '../agent/process-runtime.js';
import { NodePortForwarder } from './node-ports.js';
import { StandaloneBackend } from './backend.js';
import { poolViews, withPoolVms } from './pools.js';
import type { KubeObject } from '../core/types.js';
import { DataVolumeWorker } from './datavolumes.js';
import { SnapshotWorker } from './snapshots.js';
import { storageRoutes } from './storage-api.js';
import type { VirtualMachine } from '../../api/kubevirt.js';
import { volumeGate } from '../../api/datavolume.js';
import { ImageStore } from '../../launcher/volumes/image-store.js';
import { startApi, startMetricsServer, startWebhookServer, type ApiServer } from './api.js';
import { loadOrCreateToken } from './api-token.js';
import { LibvirtDomains } from './libvirt-domains.js';
import { ReconcilerMetrics } from './metrics.js';
import { NotifyingStateStore } from './events-stream.js';
import { createDashboard, dashboardAssetsDir, type Dashboard } from './dashboard-server.js';
import { SourceHealth } from './source-health.js';
import { socketPath } from './client.js';
import { baseEnv, hostFlags, validateHostFlags, type HostEmulation } from '../agent/host-config.js';
import { durationFlag, formatDuration } from '../agent/duration-flag.js';
import { DEFAULT_BACKOFF_POLICY, type BackoffPolicy } from '../core/index.js';

/** The port the docs suggest for `--listen` (TCP is off unless asked). */
export const SUGGESTED_LISTEN = '127.0.0.1:8686';
/** unix(7): sun_path holds 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;
/** The socket is bound as `<state-dir>/.api-XXXXXX/s` and renamed to `<state-dir>/up.sock` (api.ts). */
const BIND_PATH_EXTRA = '/.api-XXXXXX/s'.length;
export const CLI_BIN = fileURLToPath(new URL('../../cli/bin.js', import.meta.url));

export interface RawUpFlags {
  repo?: string;
  branch?: string;
  path?: string;
  stateDir?: string;
  listen?: string;
  webhookListen?: string;
  metricsListen?: string;
  emulation?: string;
  interval?: string;
  libvirtUri?: string;
  webhookSecretFile?: string;
  insecureRegistry?: string[];
  /** `--no-freshness-check`: accepted for old scripts; the check is off unless --verify-synth. */
  freshnessCheck?: boolean;
  verifySynth?: boolean;
  concurrency?: string;
  crashLoopBackoff?: string;
  crashLoopBackoffMax?: string;
}

export interface UpConfig {
  repo: string;
  branch: string;
  distPath: string;
  stateDir: string;
  /** The control API's unix socket (always served; mode 0600). */
  socketPath: string;
  /** `--listen`: the control API on TCP too, with a bearer token. */
  listen?: HostPort;
  /** `--webhook-listen`: /hooks/* only. */
  webhookListen?: HostPort;
  /** `--metrics-listen`: /metrics, /healthz, /readyz only, unauthenticated. */
  metricsListen?: HostPort;
  emulation: HostEmulation;
  intervalMs: number;
  libvirtUri: string;
  webhookSecretFile?: string;
  insecureRegistries: string[];
  /** `--verify-synth`: run `synth --check` on each commit in the sandbox. Default false: dist/ is data. */
  freshness: boolean;
  concurrency: number;
  /** `--crash-loop-backoff` / `--crash-loop-backoff-max`: CrashLoopBackOff's first delay and cap. */
  backoffPolicy: BackoffPolicy;
}

export interface HostPort {
  host: string;
  port: number;
}

/** A HOST:PORT flag ([v6]:port too), or undefined with a message naming the flag and an example. */
export function validateHostPort(raw: string, flag: string, example: string, errors: string[]): HostPort | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    errors.push(`${flag} "${raw}" is not HOST:PORT: use e.g. ${flag} ${example} (port 0 picks a free one)`);
    return undefined;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
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
  const sock = host ? socketPath(host.stateDir) : '';
  if (host && Buffer.byteLength(host.stateDir) + BIND_PATH_EXTRA > MAX_SOCKET_PATH) {
    errors.push(`--state-dir "${host.stateDir}" is ${Buffer.byteLength(host.stateDir)} bytes: the API socket (up.sock) under it needs at most ${MAX_SOCKET_PATH - BIND_PATH_EXTRA}; use a shorter --state-dir`);
  }
  const listen = raw.listen === undefined ? undefined : validateHostPort(raw.listen, '--listen', SUGGESTED_LISTEN, errors);
  const webhookListen = raw.webhookListen === undefined ? undefined : validateHostPort(raw.webhookListen, '--webhook-listen', '0.0.0.0:9000', errors);
  const metricsListen = raw.metricsListen === undefined ? undefined : validateHostPort(raw.metricsListen, '--metrics-listen', '127.0.0.1:9090', errors);
  const given: [string, HostPort | undefined][] = [['--listen', listen], ['--webhook-listen', webhookListen], ['--metrics-listen', metricsListen]];
  for (let i = 0; i < given.length; i++) {
    for (let j = i + 1; j < given.length; j++) {
      const [fa, a] = given[i]!;
      const [fb, b] = given[j]!;
      // Each listener serves only its own paths, so they cannot share an address.
      if (a && b && a.port !== 0 && a.port === b.port && (a.host === b.host || ['0.0.0.0', '::'].includes(a.host) || ['0.0.0.0', '::'].includes(b.host))) {
        errors.push(`${fb} ${b.host}:${b.port} is the address of ${fa}: each listener needs its own port, e.g. ${fb} ${b.host}:${b.port + 1}`);
      }
    }
  }
  const intervalMs = durationFlag(raw.interval ?? '1m', '--interval', errors, { min: 100 });
  const concurrency = Number(raw.concurrency ?? '16');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 512) errors.push(`--concurrency "${raw.concurrency}" is not a whole number in 1..512: use e.g. --concurrency 16`);
  if (raw.webhookSecretFile !== undefined && raw.webhookSecretFile.trim() === '') errors.push('--webhook-secret-file is empty: pass the path of a file holding the shared secret');
  else if (raw.webhookSecretFile !== undefined && raw.webhookListen === undefined) errors.push('--webhook-secret-file needs --webhook-listen HOST:PORT: the webhook has its own listener (e.g. --webhook-listen 0.0.0.0:9000)');
  if (raw.webhookListen !== undefined && raw.webhookSecretFile === undefined) errors.push('--webhook-listen needs --webhook-secret-file FILE: every push webhook is HMAC-verified with that shared secret');
  if (raw.verifySynth === true && raw.freshnessCheck === false) errors.push('--verify-synth and --no-freshness-check contradict each other: pass --verify-synth to run the sandboxed synth check, or neither to treat dist/ as data (the default)');
  // KubeVirt's order of magnitude by default; shorter where restarts are cheap (tests, labs).
  const backoffInitial = durationFlag(raw.crashLoopBackoff ?? formatDuration(DEFAULT_BACKOFF_POLICY.initialMs), '--crash-loop-backoff', errors, { min: 100 });
  const backoffMax = durationFlag(raw.crashLoopBackoffMax ?? formatDuration(DEFAULT_BACKOFF_POLICY.maxMs), '--crash-loop-backoff-max', errors, { min: 100 });
  if (backoffInitial !== undefined && backoffMax !== undefined && backoffMax < backoffInitial) errors.push(`--crash-loop-backoff-max "${raw.crashLoopBackoffMax ?? formatDuration(backoffMax)}" is below --crash-loop-backoff "${formatDuration(backoffInitial)}": raise it to at least ${formatDuration(backoffInitial)}`);
  if (errors.length || !host || intervalMs === undefined || backoffInitial === undefined || backoffMax === undefined) return { ok: false, errors };
  return {
    ok: true,
    config: {
      repo, branch, distPath, ...host, socketPath: sock, intervalMs,
      ...(listen ? { listen } : {}), ...(webhookListen ? { webhookListen } : {}), ...(metricsListen ? { metricsListen } : {}),
      ...(raw.webhookSecretFile ? { webhookSecretFile: resolve(cwd, raw.webhookSecretFile) } : {}),
      freshness: raw.verifySynth === true, concurrency,
      backoffPolicy: { ...DEFAULT_BACKOFF_POLICY, initialMs: backoffInitial, maxMs: backoffMax },
    },
  };
}

export interface UpHandle {
  /** `unix:<state-dir>/up.sock` */
  address: string;
  tcpAddress?: string;
  webhookAddress?: string;
  metricsAddress?: string;
  backend: StandaloneBackend;
  source: GitSource;
  /** Graceful stop: reconciling ends, VMs keep running. */
  stop(): Promise<void>;
}

/** What code (never a flag) may inject into runUp. */
export interface UpOptions {
  /**
   * Who runs launchers. Default: one OS process per launcher, as the Pod says (ProcessRuntime).
   * Benchmarks inject their pool runtime here (bench/pool-entry.ts); the product has no other.
   */
  launcherRuntime?: LauncherRuntime;
}

export async function runUp(config: UpConfig, log: Logger = pino({ name: 'virtops-up' }), opts: UpOptions = {}): Promise<UpHandle> {
  // Tells the dashboard's live feed what changed (events-stream.ts); writes are StateStore's.
  const store = new NotifyingStateStore(config.stateDir);
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
  // Before anything runs: a token file others could read stops the start (api-token.ts).
  const token = config.listen ? await loadOrCreateToken(config.stateDir) : undefined;
  if (token?.created) log.info({ tokenFile: token.path }, 'generated the TCP API token');

  const metrics = new ReconcilerMetrics();
  const health = new SourceHealth();
  const domains = new LibvirtDomains(config.libvirtUri);
  const agent = new NodeAgent({
    podsDir: store.podsDir,
    virtopsCommand: [process.execPath, CLI_BIN],
    hostFlags: hostFlags(config),
    baseEnv: baseEnv(),
    janitor: domains,
    ...(opts.launcherRuntime ? { runtime: opts.launcherRuntime } : {}),
    log: log.child({ component: 'agent' }),
  });
  // DataVolumes are imported outside the reconcile (datavolumes.ts); a VM waits for its own.
  let backendRef: StandaloneBackend | undefined;
  const dataVolumes = new DataVolumeWorker({
    stateDir: config.stateDir,
    pvcDir: join(config.stateDir, 'pvcs'),
    imageStore: new ImageStore({ dir: join(config.stateDir, 'images'), insecureRegistries: config.insecureRegistries }),
    log: log.child({ component: 'datavolumes' }),
    onChange: () => backendRef?.resync(),
    claimsInUse: () => backendRef?.claimsInUse() ?? new Set(),
  });
  await dataVolumes.start();
  const backend = new StandaloneBackend({
    store, agent, domains, metrics, resyncMs: config.intervalMs, concurrency: config.concurrency, backoffPolicy: config.backoffPolicy, log: log.child({ component: 'backend' }),
    volumeGate: (vm) =>
      snapshots.gate(vm.metadata.namespace ?? 'default', vm.metadata.name ?? '') ??
      volumeGate(vm.spec.template.spec.volumes, (claim) => dataVolumes.status(vm.metadata.namespace ?? 'default', claim)),
    // Commits fetched together, or pushed while up was down, each still clear overrides.
    history: (base, sha, keys) => source.changedBetween(base, sha, keys),
  });
  backendRef = backend;
  // Snapshots and restores of persistent disks (snapshots.ts), from git and from the API.
  const snapshots: SnapshotWorker = new SnapshotWorker({
    stateDir: config.stateDir,
    pvcDir: join(config.stateDir, 'pvcs'),
    libvirtUri: config.libvirtUri,
    log: log.child({ component: 'snapshots' }),
    vmState: (ns, name) => {
      const vm = backend.appliedManifests().find((m) => m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine' && (m.metadata.namespace ?? 'default') === ns && m.metadata.name === name) as VirtualMachine | undefined;
      if (!vm) return undefined;
      const view = backend.get(ns, name);
      const inst = view?.instance;
      const running = view?.status?.printableStatus === 'Running' || view?.status?.printableStatus === 'Paused';
      return { vm, ...(inst ? { instance: { domain: inst.domain, uid: inst.uid, running } } : {}) };
    },
    stopVm: async (ns, name) => void (await backend.requestAction(ns, name, 'stop')),
    onChange: () => backend.resync(),
  });
  await snapshots.start();
  // Before the first reconcile (a VM waits for its DataVolumes); only an applied revision prunes, as for VMs.
  const appliedAtStart = await store.readApplied();
  await dataVolumes.update(appliedAtStart.manifests, { prune: appliedAtStart.sha !== undefined });
  await backend.start();
  await snapshots.update(backend.appliedManifests(), { prune: backend.appliedRevision.sha !== undefined });
  // NodePort Services of the applied revision (node-ports.ts), converged after each apply.
  const nodePorts = new NodePortForwarder({ launcherSocket: (ns, name) => backend.get(ns, name)?.instance?.socket, log: log.child({ component: 'node-ports' }) });
  const exposeServices = (): void => void nodePorts.update([...backend.appliedManifests()]).catch((err: unknown) => log.warn({ err }, 'updating node ports failed'));
  exposeServices();

  const source = new GitSource({
    repo: config.repo,
    branch: config.branch,
    distPath: config.distPath,
    pollIntervalMs: config.intervalMs,
    resyncIntervalMs: config.intervalMs,
    cacheDir: join(config.stateDir, 'source'),
    freshness: config.freshness,
    logger: log,
    onCheck: (i) => {
      metrics.sourceChecks.inc({ outcome: i.outcome });
      if (i.outcome === 'error') health.fail('fetch', i.error ?? 'the check failed', Date.now());
      else if (i.outcome === 'missing-branch') health.fail('fetch', `branch ${config.branch} not found in ${config.repo}`, Date.now());
      else health.ok('fetch');
    },
  });
  // A revision that could not be recorded (a full disk under the state dir) is retried: the
  // source yields each commit once, so nothing else would bring it back.
  let pendingApply: { sha: string } | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  // The revision's VirtualMachinePools: their VMs join it as if they were in git (pools.ts).
  const withPools = (r: { sha: string; manifests: readonly KubeObject[] }) => ({ sha: r.sha, manifests: withPoolVms(r.manifests, backend.appliedManifests()) });
  const apply = (r: { sha: string; manifests: never[] }): void => {
    pendingApply = r;
    clearTimeout(retryTimer);
    // Its DataVolumes are known before its VMs are looked at: no VM starts ahead of its import.
    dataVolumes.expect(withPools(r).manifests);
    backend.applyRevision(withPools(r)).then(
      () => {
        if (pendingApply === r) health.ok('apply');
        exposeServices();
        dataVolumes.update(backend.appliedManifests()).catch((err: unknown) => log.error({ err }, 'updating the DataVolumes failed'));
        snapshots.update(backend.appliedManifests()).catch((err: unknown) => log.error({ err }, 'updating the snapshots failed'));
      },
      (err: unknown) => {
        log.error({ err, sha: r.sha }, 'applying the revision failed; retrying');
        health.fail('apply', `revision ${r.sha.slice(0, 12)}: ${(err as Error).message}`, Date.now());
        retryTimer = setTimeout(() => pendingApply === r && apply(r), Math.min(config.intervalMs, 5000));
        retryTimer.unref();
      },
    );
  };
  source.on('revision', apply);
  source.on('refused', (r: { sha: string; errors: string[] }) => {
    backend.recordRefusal(r.sha, r.errors).catch((err: unknown) => {
      log.error({ err }, 'recording the refusal failed');
      health.fail('apply', `recording the refusal of ${r.sha.slice(0, 12)}: ${(err as Error).message}`, Date.now());
    });
  });

  const apiOptions = {
    backend,
    metrics,
    log,
    ready: () => backend.appliedRevision.sha !== undefined,
    sourceError: () => health.error,
    sourceInfo: () => ({
      repo: config.repo,
      branch: config.branch,
      path: config.distPath,
      applied: backend.appliedRevision.sha ?? null,
      latestGood: source.current?.sha ?? null,
      refused: backend.appliedRevision.refused ?? null,
      error: health.error ?? null,
      counters: source.counters,
    }),
    extraRoutes: storageRoutes(dataVolumes, snapshots),
    diff: () => backend.diff(source.current && withPools(source.current)),
    pools: () => ({
      revision: backend.appliedRevision.sha ?? null,
      pools: poolViews(backend.appliedManifests(), (ns, name) => backend.get(ns, name)?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true),
    }),
    // `virtops reconcile`: re-read git now, wait (briefly) for the new revision to be recorded, look at every VM.
    reconcile: async () => {
      await source.checkNow('manual');
      const want = source.current?.sha;
      for (let i = 0; want && backend.appliedRevision.sha !== want && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
      backend.resync();
      return { revision: backend.appliedRevision.sha ?? null };
    },
  };
  // Each listener serves only its own paths: the unix socket (always) and --listen the API,
  // --webhook-listen /hooks/*, --metrics-listen the read-only health and metrics.
  const servers = new Map<string, ApiServer>();
  const listeners: { flag: string; what: string; start: () => Promise<ApiServer> }[] = [
    { flag: '--state-dir', what: config.socketPath, start: () => startApi({ kind: 'unix', path: config.socketPath }, apiOptions) },
  ];
  const l = config.listen;
  // The web dashboard: on the TCP listener only (a browser cannot reach the unix socket).
  let dashboard: Dashboard | undefined;
  if (l && token) {
    const assetsDir = await dashboardAssetsDir((msg) => log.warn(msg));
    if (!assetsDir) log.warn('the dashboard assets could not be built: --listen serves the API without the dashboard');
    else {
      dashboard = await createDashboard({
        backend, token: token.token, stateDir: config.stateDir, repo: config.repo, log: log.child({ component: 'dashboard' }),
        changes: store.changes, sourceError: () => health.error, nextManifests: () => source.current, diff: apiOptions.diff, assetsDir,
      });
    }
    listeners.push({
      flag: '--listen', what: `${l.host}:${l.port}`,
      start: () => startApi({ kind: 'tcp', ...l }, { ...apiOptions, token: token.token, tokenHint: token.path, hostNames: [hostname()], ...(dashboard ? { dashboard } : {}) }),
    });
  }
  const w = config.webhookListen;
  if (w) {
    const route = createWebhookRoute({ secret: webhookSecret, branch: config.branch, onPush: () => void source.checkNow('webhook'), logger: log.child({ component: 'webhook' }) });
    listeners.push({ flag: '--webhook-listen', what: `${w.host}:${w.port}`, start: () => startWebhookServer({ kind: 'tcp', ...w }, { route, log: log.child({ component: 'webhook' }) }) });
  }
  const ml = config.metricsListen;
  if (ml) listeners.push({ flag: '--metrics-listen', what: `${ml.host}:${ml.port}`, start: () => startMetricsServer({ kind: 'tcp', ...ml }, { backend, metrics, ready: apiOptions.ready, sourceError: apiOptions.sourceError, log }) });
  for (const lis of listeners) {
    try {
      servers.set(lis.flag, await lis.start());
    } catch (err) {
      dashboard?.close();
      for (const srv of servers.values()) await srv.close();
      await nodePorts.close();
      await backend.stop();
      await dataVolumes.stop();
      await snapshots.stop();
      await domains.close();
      throw new Error(`${lis.flag}: cannot serve on ${lis.what}: ${(err as Error).message} (pass another ${lis.flag})`);
    }
  }
  const [api, tcpApi, webhookApi, metricsApi] = ['--state-dir', '--listen', '--webhook-listen', '--metrics-listen'].map((f) => servers.get(f));
  if (!api) throw new Error('unreachable: the socket listener always starts');
  // Where each listener is, for the CLI and for people (`listen` is the socket: the CLI's default).
  const upInfo = {
    pid: process.pid, listen: api.address, repo: config.repo, branch: config.branch, startedAt: new Date().toISOString(),
    ...(tcpApi ? { tcp: tcpApi.address, tokenFile: token!.path } : {}),
    ...(webhookApi ? { webhook: webhookApi.address } : {}),
    ...(metricsApi ? { metrics: metricsApi.address } : {}),
  };
  await store.writeUp(upInfo);
  log.info({ ...upInfo, stateDir: config.stateDir, interval: config.intervalMs, emulation: config.emulation, launcherRuntime: opts.launcherRuntime?.kind ?? 'process' }, `virtops up: serving on ${[...servers.values()].map((x) => x.address).join(', ')}`);
  if (dashboard && tcpApi) {
    // The token rides in the fragment, which browsers never send: it reaches no request line or log
    // but this one line, printed to the operator's terminal (stderr, outside the JSON log stream).
    const host = l!.host === '0.0.0.0' || l!.host === '::' ? '127.0.0.1' : l!.host.includes(':') ? `[${l!.host}]` : l!.host;
    const port = tcpApi.address.slice(tcpApi.address.lastIndexOf(':') + 1);
    log.info({ dashboard: `http://${host}:${port}/`, loginLink: 'printed on stderr' }, 'dashboard: open the login link printed on stderr');
    process.stderr.write(`virtops up: dashboard login link (keep it private, it holds the API token): http://${host}:${port}/login#token=${token!.token}\n`);
  }
  // The first check fetches and validates; run it after the API is up so `get vms` answers meanwhile.
  void source.start().catch((err: unknown) => log.error({ err }, 'the git source failed to start'));

  let stopped: Promise<void> | undefined;
  return {
    address: api.address,
    ...(tcpApi ? { tcpAddress: tcpApi.address } : {}),
    ...(webhookApi ? { webhookAddress: webhookApi.address } : {}),
    ...(metricsApi ? { metricsAddress: metricsApi.address } : {}),
    backend,
    source,
    stop: () =>
      (stopped ??= (async () => {
        log.info('stopping: VMs keep running; the next virtops up adopts them');
        try {
          pendingApply = undefined;
          clearTimeout(retryTimer);
          await source.stop();
          await nodePorts.close();
          await backend.stop();
          await dataVolumes.stop();
          await snapshots.stop();
        } finally {
          dashboard?.close();
          // Whatever failed above, the listeners go: no socket or port is left behind.
          for (const srv of servers.values()) await srv.close().catch((err: unknown) => log.warn({ err, address: srv.address }, 'closing a listener failed'));
          await domains.close();
          await store.removeUp();
        }
        log.info({ vms: backend.list().filter((v) => v.instance).length }, 'stopped');
      })()),
  };
}
