/**
 * Wiring for `virtops controller` and `virtops agent`: flags → validated config → the
 * long-running loops. Kept apart from the CLI so tests and benchmarks start them in-process.
 * The agent's half is run-agent.ts (re-exported here): `virtops agent` loads only that, not
 * the controller's modules (git, apply, the VM controller, validation).
 */
export { CLI_BIN, claimsOnNode, defaultNodeIp, runAgent, validateAgentFlags, type AgentConfig, type AgentConsoleConfig, type AgentHandle, type RawAgentFlags } from './run-agent.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import { GitSource, type SourceRevision } from '../source/index.js';
import { durationFlag, formatDuration } from '../agent/duration-flag.js';
import { DEFAULT_BACKOFF_POLICY, OVERRIDE_ANNOTATION, parseObjectKey, vmObjectKey, type BackoffPolicy } from '../core/index.js';
import type { KubernetesObject } from '@kubernetes/client-node';
import { Applier, INVENTORY_CONFIGMAP, changedVmKeys, planApply, revisionHealth, isVm, type Health } from './apply.js';
import type { Informer } from './informer.js';
import { RECONCILE_HANDLED_KEY, RECONCILE_REQUESTED_ANNOTATION } from './requests.js';
import { MAX_SOCKET_DIR_BYTES } from './kubelet-launchers.js';
import { DEFAULT_NODE_SOCKET_DIR } from '../../synth/launcher-pod.js';
import { LIBVIRT_DAEMONS, type LibvirtDaemon } from '../../launcher/flags.js';
import { VmController } from './controller.js';
import { PoolController } from './pool-controller.js';
import { DataVolumeGate } from './datavolumes.js';
import { RESTORE_CRD_NAME, RestoreGate } from './snapshots.js';
import { isDataVolume } from '../../api/datavolume.js';
import { isSnapshotObject } from '../../api/snapshot.js';
import { isPool } from '../../api/pool.js';
import { vmKeyOf } from './instances.js';
import { HttpKubeClient, type KubeClient, errorMessage, loadKubeConfig } from './kube.js';
import { CONTROLLER_LEASE, LeaderElector } from './leader.js';

// ---- flags ---------------------------------------------------------------------------------

export interface RawControllerFlags {
  kubeconfig?: string;
  repo?: string;
  branch?: string;
  path?: string;
  namespace?: string;
  leaderElect?: boolean;
  interval?: string;
  /** `--no-freshness-check`: accepted for old scripts; the check is off unless --verify-synth. */
  freshnessCheck?: boolean;
  verifySynth?: boolean;
  identity?: string;
  leaseDuration?: string;
  cacheDir?: string;
  crashLoopBackoff?: string;
  crashLoopBackoffMax?: string;
  /** `--launcher-libvirt-daemon pod|external`: how launcher Pods run libvirt (unset: as their template in git says). */
  launcherLibvirtDaemon?: string;
  /** `--launcher-socket-dir`: the node socket dir launcher Pods mount with `pod` (the agents' flag of the same name). */
  launcherSocketDir?: string;
}

export interface ControllerConfig {
  kubeconfig?: string;
  repo: string;
  branch: string;
  distPath: string;
  namespace: string;
  leaderElect: boolean;
  /** Re-apply period (reverts drift), git poll period for URLs, VM resync. */
  intervalMs: number;
  /** `--verify-synth`: run `synth --check` on each commit in the sandbox. Default false: dist/ is data. */
  freshness: boolean;
  identity: string;
  leaseDurationMs: number;
  /**
   * Where the git source keeps its clone. Reused across restarts (a SIGKILLed controller
   * leaves nothing behind in /tmp); default: a temp dir removed on stop.
   */
  cacheDir?: string;
  /** `--crash-loop-backoff` / `--crash-loop-backoff-max`: CrashLoopBackOff's first delay and cap (as `up`'s). */
  backoffPolicy?: BackoffPolicy;
  /**
   * Every launcher Pod the controller creates runs its libvirt daemon so (synth's
   * withLibvirtDaemon over the template from git): `pod` on clusters of real kubelet nodes
   * (the install manifests pass it), `external` for process-runtime agents; unset: as git has it.
   */
  launcherLibvirtDaemon?: LibvirtDaemon;
  /** With `launcherLibvirtDaemon: 'pod'`: the node dir the Pods mount (default DEFAULT_NODE_SOCKET_DIR). */
  launcherSocketDir?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function validateControllerFlags(raw: RawControllerFlags): { ok: true; config: ControllerConfig } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (!raw.repo) errors.push('--repo is required: a local git repository path or a git URL');
  const namespace = raw.namespace ?? 'virtops-system';
  if (!DNS_LABEL.test(namespace)) errors.push(`--namespace "${namespace}" is not a valid namespace name (DNS label: lower-case letters, digits, '-')`);
  const branch = raw.branch ?? 'main';
  if (!/^[\w.\-/]+$/.test(branch) || branch.includes('..')) errors.push(`--branch "${branch}" is not a valid branch name`);
  const intervalMs = durationFlag(raw.interval ?? '1m', '--interval', errors, { min: 200 });
  // The leader renews every third of the lease and the Lease holds whole seconds: below 2s one slow API call costs leadership.
  const leaseDurationMs = durationFlag(raw.leaseDuration ?? '15s', '--lease-duration', errors, { min: 2000 });
  const identity = raw.identity ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (raw.verifySynth === true && raw.freshnessCheck === false) errors.push('--verify-synth and --no-freshness-check contradict each other: pass --verify-synth to run the sandboxed synth check, or neither to treat dist/ as data (the default)');
  const backoffInitial = durationFlag(raw.crashLoopBackoff ?? formatDuration(DEFAULT_BACKOFF_POLICY.initialMs), '--crash-loop-backoff', errors, { min: 100 });
  const backoffMax = durationFlag(raw.crashLoopBackoffMax ?? formatDuration(DEFAULT_BACKOFF_POLICY.maxMs), '--crash-loop-backoff-max', errors, { min: 100 });
  if (backoffInitial !== undefined && backoffMax !== undefined && backoffMax < backoffInitial) errors.push(`--crash-loop-backoff-max "${raw.crashLoopBackoffMax ?? formatDuration(backoffMax)}" is below --crash-loop-backoff "${formatDuration(backoffInitial)}": raise it to at least ${formatDuration(backoffInitial)}`);
  const daemon = raw.launcherLibvirtDaemon;
  if (daemon !== undefined && !(LIBVIRT_DAEMONS as readonly string[]).includes(daemon)) errors.push(`--launcher-libvirt-daemon "${daemon}" is not one of ${LIBVIRT_DAEMONS.join(', ')}: pass pod on real kubelet nodes (libvirt inside each launcher Pod), external for process-runtime agents (the host's libvirtd)`);
  const socketDir = raw.launcherSocketDir ?? DEFAULT_NODE_SOCKET_DIR;
  if (raw.launcherSocketDir !== undefined && daemon !== 'pod') errors.push(`--launcher-socket-dir "${raw.launcherSocketDir}" only applies with --launcher-libvirt-daemon pod: add that, or drop --launcher-socket-dir`);
  else if (!isAbsolute(socketDir)) errors.push(`--launcher-socket-dir "${socketDir}" is not an absolute path: pass the agents' --launcher-socket-dir (default ${DEFAULT_NODE_SOCKET_DIR})`);
  else if (Buffer.byteLength(socketDir.replace(/\/+$/, '')) > MAX_SOCKET_DIR_BYTES) errors.push(`--launcher-socket-dir "${socketDir}" is over ${MAX_SOCKET_DIR_BYTES} bytes: the sockets under it would pass the 107-byte unix socket limit; use a shorter path (the same as the agents')`);
  if (errors.length || intervalMs === undefined || leaseDurationMs === undefined || backoffInitial === undefined || backoffMax === undefined) return { ok: false, errors };
  return {
    ok: true,
    config: {
      ...(daemon !== undefined ? { launcherLibvirtDaemon: daemon as LibvirtDaemon, ...(daemon === 'pod' ? { launcherSocketDir: socketDir.replace(/(.)\/+$/, '$1') } : {}) } : {}),
      ...(raw.kubeconfig ? { kubeconfig: raw.kubeconfig } : {}),
      backoffPolicy: { ...DEFAULT_BACKOFF_POLICY, initialMs: backoffInitial, maxMs: backoffMax },
      ...(raw.cacheDir ? { cacheDir: raw.cacheDir } : {}),
      repo: raw.repo!, branch, distPath: raw.path ?? 'dist', namespace, leaderElect: raw.leaderElect === true,
      intervalMs, freshness: raw.verifySynth === true, identity, leaseDurationMs,
    },
  };
}

// ---- controller ----------------------------------------------------------------------------

export interface ControllerHandle {
  client: KubeClient;
  controller: VmController;
  /** VirtualMachinePools: started once an applied revision declares one. */
  pools: PoolController;
  source: GitSource;
  /** Health of the applied revision, as last computed. */
  health(): { sha?: string; health: Health; pending: string[]; failed: string[] } | undefined;
  stop(): Promise<void>;
  /** Resolves when leadership is lost (the CLI exits then). */
  lostLeadership: Promise<void>;
}

export async function runController(config: ControllerConfig, log: Logger, opts: { client?: KubeClient; statusCoalesceMs?: number } = {}): Promise<ControllerHandle> {
  const client = opts.client ?? new HttpKubeClient(loadKubeConfig(config.kubeconfig));
  const applier = new Applier(client, { namespace: config.namespace, log: log.child({ component: 'apply' }) });
  const controller: VmController = new VmController(client, {
    log: log.child({ component: 'vm-controller' }), resyncMs: Math.max(config.intervalMs, 10_000),
    ...(opts.statusCoalesceMs !== undefined ? { statusCoalesceMs: opts.statusCoalesceMs } : {}),
    ...(config.backoffPolicy ? { backoffPolicy: config.backoffPolicy } : {}),
    ...(config.launcherLibvirtDaemon ? { launcherLibvirtDaemon: config.launcherLibvirtDaemon, ...(config.launcherSocketDir ? { launcherSocketDir: config.launcherSocketDir } : {}) } : {}),
    // A restore into the VM holds it first (snapshots.ts), then its DataVolumes.
    volumeGate: async (vm) => restores.gate(vm) ?? dataVolumes.gate(vm),
  });
  const restores: RestoreGate = new RestoreGate(client, { log: log.child({ component: 'restores' }), enqueueVm: (k) => controller.queue.add(k) });
  // DataVolumes (datavolumes.ts): templates become DataVolumes, VMs wait for their imports.
  const dataVolumes: DataVolumeGate = new DataVolumeGate(client, { log: log.child({ component: 'datavolumes' }), vms: () => controller.listVms(), enqueueVm: (k) => controller.queue.add(k) });
  const pools = new PoolController(client, { log: log.child({ component: 'pool-controller' }), resyncMs: Math.max(config.intervalMs, 10_000) });
  const source = new GitSource({
    repo: config.repo, branch: config.branch, distPath: config.distPath, pollIntervalMs: config.intervalMs, resyncIntervalMs: Math.max(config.intervalMs, 30_000),
    freshness: config.freshness, ...(config.cacheDir ? { cacheDir: config.cacheDir } : {}), logger: log,
  });

  let latest: SourceRevision | undefined;
  let leading = false;
  let stopped = false;
  let applying: Promise<void> = Promise.resolve();
  let lastHealth: ReturnType<ControllerHandle['health']>;
  let recordedHealth: string | undefined;
  const timers: NodeJS.Timeout[] = [];

  /** The VMs with an override ("ns/name") that commits between `base` and `sha` changed (GitSource.changedBetween). */
  const overriddenChangedSince = async (base: string | undefined, sha: string): Promise<string[]> => {
    const keys = controller.listVms().filter((vm) => vm.metadata.annotations?.[OVERRIDE_ANNOTATION] !== undefined).map((vm) => vmObjectKey(vm.metadata.namespace ?? 'default', vm.metadata.name ?? ''));
    if (!base || keys.length === 0) return [];
    const changed = await source.changedBetween(base, sha, keys).catch((err: unknown) => {
      log.warn({ err: errorMessage(err), base, sha }, 'reading the commits between two revisions failed; overrides follow the net change only');
      return [];
    });
    return changed.map((k) => { const p = parseObjectKey(k); return `${p.namespace}/${p.name}`; });
  };

  const applyLatest = (): Promise<void> => {
    applying = applying.then(async () => {
      const rev = latest;
      if (!rev || !leading || stopped) return;
      controller.setTemplates(rev.sha, planApply(rev.manifests).templates);
      try {
        // Overrides clear when a commit changes their VM: the net change, and (commits fetched
        // together, or pushed while the controller was away) each good commit in between.
        await applier.apply(rev, { beforeInventory: async (plan, base) => controller.clearOverrides([...new Set([...changedVmKeys(plan), ...(await overriddenChangedSince(base, rev.sha))])]) });
        // No pool informers (nor 404 retries on clusters without the pool CRD) until git has a pool.
        if (rev.manifests.some((m) => isDataVolume(m as { apiVersion?: unknown; kind?: unknown }))) dataVolumes.start();
        if (rev.manifests.some((m) => isSnapshotObject(m as { apiVersion?: unknown; kind?: unknown }) || (m as { kind?: unknown; metadata?: { name?: unknown } }).kind === 'CustomResourceDefinition' && (m as { metadata?: { name?: unknown } }).metadata?.name === RESTORE_CRD_NAME)) restores.start();
        if (rev.manifests.some(isPool)) void pools.start().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'starting the pool controller failed'));
      } catch (err) {
        log.error({ sha: rev.sha, err: errorMessage(err) }, 'applying the revision failed; retrying at the next interval');
      }
    });
    return applying;
  };

  const checkHealth = async (): Promise<void> => {
    const rev = latest;
    if (!rev || !leading) return;
    const keys = rev.manifests.filter(isVm).map((m) => vmKeyOf(m));
    const h = revisionHealth(keys.map((k) => controller.getVm(k)));
    lastHealth = { sha: rev.sha, ...h };
    const summary = `${rev.sha}:${h.health}`;
    if (summary !== recordedHealth) {
      recordedHealth = summary;
      log.info({ sha: rev.sha, health: h.health, pending: h.pending.slice(0, 10), failed: h.failed.slice(0, 10) }, `revision ${rev.sha.slice(0, 12)} ${h.health}`);
      try {
        await applier.recordHealth(await applier.readInventory(), h.health);
      } catch (err) {
        // The API server may be away (restart): record it at the next check instead.
        recordedHealth = undefined;
        log.warn({ err: errorMessage(err) }, 'recording revision health failed; retrying at the next check');
      }
    }
  };

  // `virtops reconcile` (Flux's reconcile.fluxcd.io/requestedAt): re-read git, re-apply,
  // look at every VM, then say so in the inventory ConfigMap.
  let handledRequest: string | undefined;
  let handling: Promise<void> = Promise.resolve();
  const onRequest = (cm: KubernetesObject & { data?: Record<string, string> }): void => {
    const requested = cm.metadata?.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
    if (!requested || requested === cm.data?.[RECONCILE_HANDLED_KEY] || requested === handledRequest || !leading || stopped) return;
    handledRequest = requested;
    handling = handling.then(async () => {
      log.info({ requestedAt: requested }, 'reconcile requested: checking git, applying, resyncing every VM');
      await source.checkNow('manual');
      await applyLatest();
      controller.resync();
      await controller.idle();
      await client.mergePatch({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: INVENTORY_CONFIGMAP, namespace: config.namespace } }, { data: { [RECONCILE_HANDLED_KEY]: requested } });
    }).catch((err: unknown) => {
      handledRequest = undefined;
      log.warn({ err: errorMessage(err), requestedAt: requested }, 'handling a reconcile request failed; retried at the next change of the inventory ConfigMap');
    });
  };
  const requests: Informer<KubernetesObject> = client.informer(
    { path: `/api/v1/namespaces/${config.namespace}/configmaps`, apiVersion: 'v1', kind: 'ConfigMap', namespace: config.namespace, fieldSelector: `metadata.name=${INVENTORY_CONFIGMAP}` },
    (type, cm) => {
      if (type !== 'delete') onRequest(cm);
    },
    log.child({ component: 'reconcile-requests' }),
  );

  source.on('revision', (r: SourceRevision) => {
    latest = r;
    void applyLatest();
  });
  source.on('refused', (r: { sha: string; errors: string[] }) => log.warn({ sha: r.sha, errors: r.errors }, `commit ${r.sha.slice(0, 12)} refused; the applied revision stays`));

  let resolveLost!: () => void;
  const lostLeadership = new Promise<void>((r) => (resolveLost = r));

  const startLeading = (): void => {
    leading = true;
    void (async () => {
      // Templates first, so no launcher Pod is rendered from anything but git when git has one.
      if (latest) controller.setTemplates(latest.sha, planApply(latest.manifests).templates);
      await applyLatest();
      if (stopped) return;
      await controller.start();
      void requests.start();
      const reapply = setInterval(() => void applyLatest(), config.intervalMs);
      const health = setInterval(() => void checkHealth().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'health check failed')), Math.min(2000, config.intervalMs));
      reapply.unref();
      health.unref();
      timers.push(reapply, health);
    })().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'starting the controller failed'));
  };

  const elector = config.leaderElect
    ? new LeaderElector(client, { namespace: config.namespace, name: CONTROLLER_LEASE, identity: config.identity, leaseDurationMs: config.leaseDurationMs }, log.child({ component: 'leader' }), {
        onStartedLeading: startLeading,
        onStoppedLeading: () => {
          leading = false;
          resolveLost();
        },
      })
    : undefined;

  // The first check yields the current revision (if good) before anything acts.
  await source.start();
  if (elector) elector.start();
  else startLeading();
  log.info({ repo: config.repo, branch: config.branch, namespace: config.namespace, leaderElect: config.leaderElect, identity: config.identity }, 'virtops controller started');

  return {
    client, controller, pools, source, lostLeadership,
    health: () => lastHealth,
    stop: async () => {
      stopped = true;
      leading = false;
      for (const t of timers) clearInterval(t);
      await source.stop();
      await applying.catch(() => undefined);
      await requests.stop();
      await handling;
      await pools.stop();
      await controller.stop();
      await dataVolumes.stop();
      await restores.stop();
      await elector?.stop();
    },
  };
}
