/**
 * The cluster node agent (virt-handler's role, plus a virtual kubelet in process-runtime
 * mode). Per launcher Pod bound to this node (`spec.nodeName == --node`):
 *
 * - process runtime: runs the Pod's `compute` container as a supervised process through
 *   reconciler/agent (the single-host runtime: emptyDirs → host dirs, downward API, `$(VAR)`
 *   expansion) and reports the Pod's status like a kubelet (phase, conditions, container
 *   states), deleting it for good once it is terminating and its process has stopped;
 * - for the Pod's VMI: pushes it to the launcher (`PUT /v1/vmi`), writes the VMI status
 *   (phase, nodeName, Ready/Paused/Synchronized, interfaces) when it changes, and on VMI
 *   deletion stops the guest with its grace period, then removes the cleanup finalizer.
 *
 * With a real kubelet (no `--process-runtime`) the kubelet runs the Pods and owns their
 * status; this agent registers no Node and only drives the launchers, through the sockets
 * their monitors publish in the node's launcher socket directory (kubelet-launchers.ts:
 * the directory is handed to each Pod's user, and the peer is checked before use).
 *
 * Stateless like the single-host agent: everything is re-derived from the Pod (the process
 * spec is deterministic) and the running processes (found by VMI uid), so an agent restart
 * adopts its launchers.
 */
import { rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { basename } from 'node:path';
import type { KubernetesObject, V1Lease, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { vmiGraceSeconds } from '../../api/grace.js';
import type { VirtualMachineInstance } from '../../api/kubevirt.js';
import { LABEL_CREATED_BY, LABEL_VM_NAME } from '../../synth/launcher-pod.js';
import type { PodManifest } from '../../synth/pod-types.js';
import type { InstanceHandler, InstanceRecord } from '../agent/agent.js';
import type { SyncResponse } from '../../launcher/launcher.js';
import { LABEL_SCHEDULABLE, currentVmiStatus, holdRunningReport, nodeConditions, nodeManifest, podStatusFor, podStatusSignature, vmiReportAfterWrite, vmiStatusFor, vmiStatusSignature, type LauncherView, type ProcessState, type VmiReport } from './agent-status.js';
import { removeFinalizer } from './controller.js';
import { PAUSED_ANNOTATION } from './requests.js';
import { serialSocketPath } from '../../launcher/convert/console.js';
import type { Informer } from './informer.js';
import { VMI_FINALIZER, splitKey } from './instances.js';
import { errorMessage, type KubeClient } from './kube.js';
import { RateLimitedQueue, retryDelay, type ReconcileResult } from '../queue.js';
import { type LauncherObservation, type LauncherPhase, unsettledRecheckMs } from '../core/launcher-phase.js';

export const AGENT_COMPONENT = 'virtops-agent';
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

export interface ClusterAgentOptions {
  nodeName: string;
  /** Run launcher Pods as processes and act as this node's kubelet. */
  processRuntime: boolean;
  /** The single-host runtime that starts and stops launcher processes. */
  runtime: InstanceHandler;
  log: Logger;
  /** Node lease renewal (kubelet: 10 s). */
  leaseRenewMs?: number;
  /** Node status heartbeat (kubelet: 5 min when leases are used). */
  nodeStatusMs?: number;
  resyncMs?: number;
  capacity?: { cpus?: number; memoryBytes?: number; pods?: number; ephemeralStorageBytes?: number };
  concurrency?: number;
  /** The clock of VMI status times (phase transitions); tests share one with the controller. */
  now?: () => number;
  /** Beside a real kubelet (no process runtime): the launcher socket directory (KubeletLaunchers). */
  sockets?: LauncherSockets;
}

/** The node's launcher socket directory, beside a real kubelet (kubelet-launchers.ts; a fake in unit tests). */
export interface LauncherSockets {
  /** Hands `<dir>/<pod uid>` to the Pod's user. */
  prepare(pod: V1Pod): Promise<void>;
  /** Undefined when the launcher's socket may be used; else why not. */
  verify(record: InstanceRecord, pod: V1Pod): Promise<string | undefined>;
  removePod(podUid: string): Promise<void>;
  /** Removes the directories of Pods `keep` does not hold. */
  sweep(keep: () => ReadonlySet<string>): Promise<string[]>;
}

interface Tracked {
  podUid: string;
  vmiUid: string;
  record: InstanceRecord;
  startedAt?: Date;
  exited?: ProcessState & { state: 'exited' };
  /** Stops following the launcher's events. */
  watch?: { stop(): void };
  /** Beside a kubelet: since when its socket has not been usable (warned once after 30 s). */
  socketWaitSince?: number;
  socketWarned?: boolean;
  /** The guest was stopped (stopGuest): what follows its stop (reports, finalizer, Pod deletion) may run. */
  guestStopped?: boolean;
  /** The last guest stop failed: thrown by the next pass, which backs off and then stops it again. */
  guestStopError?: unknown;
  /** The VMI status this agent last wrote (currentVmiStatus: the cache may lag behind it). */
  reported?: VmiReport;
  /** Since when the first Running report waits for the domain's NICs (holdRunningReport). */
  nicWaitSince?: number;
  /** The Pod's compute container image (the VMI's launcherContainerImageVersion). */
  image?: string;
}

export class ClusterAgent {
  readonly pods: Informer<V1Pod>;
  readonly vmis: Informer<KubernetesObject>;
  readonly queue: RateLimitedQueue;
  private readonly tracked = new Map<string, Tracked>();
  private readonly podByVmiUid = new Map<string, string>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly client: KubeClient, private readonly opts: ClusterAgentOptions) {
    const log = opts.log;
    this.queue = new RateLimitedQueue((k) => this.reconcile(k), {
      concurrency: opts.concurrency ?? 16,
      onError: (key, err, retryInMs) => log.error({ pod: key, err: errorMessage(err), retryInMs }, 'reconcile failed; retrying with backoff'),
      onSlow: (key, ms) => log.warn({ pod: key, runningSeconds: ms / 1000 }, 'reconcile still running; this Pod is not looked at again until it ends'),
    });
    this.pods = client.informer<V1Pod>(
      { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', labelSelector: 'kubevirt.io=virt-launcher', fieldSelector: `spec.nodeName=${opts.nodeName}` },
      (_t, pod) => {
        const key = `${pod.metadata?.namespace ?? 'default'}/${pod.metadata?.name ?? ''}`;
        const vmiUid = pod.metadata?.labels?.[LABEL_CREATED_BY];
        if (vmiUid) this.podByVmiUid.set(vmiUid, key);
        this.queue.add(key);
      },
      log,
    );
    this.vmis = client.informer(
      { path: '/apis/kubevirt.io/v1/virtualmachineinstances', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance' },
      (_t, vmi) => {
        const key = vmi.metadata?.uid ? this.podByVmiUid.get(vmi.metadata.uid) : undefined;
        if (key) this.queue.add(key);
      },
      log,
    );
  }

  async start(): Promise<void> {
    if (this.opts.processRuntime) {
      // The API server may be away right now (restarting, its etcd down): retry as kubelet
      // does instead of exiting (found by the cluster fault test: an agent started during an
      // etcd restart got a 500 registering its Node and exited for good).
      await this.untilDone('registering the Node', () => this.registerNode());
      await this.untilDone('renewing the node Lease', () => this.renewLease());
      this.every(this.opts.leaseRenewMs ?? 10_000, () => this.renewLease());
      this.every(this.opts.nodeStatusMs ?? 60_000, () => this.heartbeat());
    } else {
      // The kubelet registered the Node; marking it schedulable for VMs is virt-handler's part.
      await this.untilDone('labelling the Node schedulable', () => this.markSchedulable());
    }
    // Not waiting for the VMI informer: its CRD may not exist yet (the controller installs
    // it); the informer keeps retrying and delivers the VMIs once it does.
    void this.vmis.start();
    await this.pods.start();
    this.every(this.opts.resyncMs ?? 60_000, () => {
      for (const p of this.pods.list()) this.queue.add(`${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`);
      return this.housekeeping();
    });
    for (const p of this.pods.list()) this.queue.add(`${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`);
    // The Pod cache is synced: host dirs of Pods that are gone can be told apart now.
    await this.housekeeping().catch((err: unknown) => this.opts.log.warn({ err: errorMessage(err) }, 'removing orphaned launcher Pod dirs failed'));
  }

  /**
   * Removes launcher Pod dirs of this node that belong to no launcher Pod in the cache and no
   * instance this agent tracks, and any launcher still running from them (kubelet's
   * orphaned-pod housekeeping): their Pod was deleted while this agent was down, or the
   * agent was killed between stopping a launcher and removing its dir.
   */
  private async housekeeping(): Promise<void> {
    const { runtime, processRuntime, sockets } = this.opts;
    if (this.stopped) return;
    if (!processRuntime && sockets) {
      const gone = await sockets.sweep(() => new Set([...this.pods.list().map((p) => p.metadata?.uid ?? ''), ...[...this.tracked.values()].map((t) => t.podUid)]));
      if (gone.length) this.opts.log.info({ pods: gone }, 'removed launcher socket dirs of Pods that are gone');
      return;
    }
    if (!processRuntime || !runtime.sweepOrphans) return;
    await runtime.sweepOrphans(() => new Set([
      ...this.pods.list().map((p) => basename(runtime.podDir(p.metadata?.namespace ?? 'default', podDirName(p)))),
      ...[...this.tracked.values()].map((t) => basename(t.record.podDir)),
    ]));
  }

  /** Runs `fn` until it succeeds, with backoff (200 ms doubling to 5 s); gives up only on stop(). */
  private async untilDone(what: string, fn: () => Promise<void>): Promise<void> {
    for (let failures = 1; ; failures++) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopped) throw err;
        const retryInMs = retryDelay(failures, { baseMs: 200, maxMs: 5000 });
        this.opts.log.warn({ err: errorMessage(err), retryInMs }, `${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
  }

  /** Stops watching; launchers keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.tracked.values()) t.watch?.stop();
    await Promise.all([this.pods.stop(), this.vmis.stop()]);
    await this.queue.stop();
  }

  /** Resolves once no reconcile is queued or running and no guest is still stopping. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => {
      if (!this.stopped) fn().catch((err: unknown) => this.opts.log.warn({ err: errorMessage(err) }, 'periodic node task failed'));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  // ---- the Node ---------------------------------------------------------------------------

  private capacity() {
    const c = this.opts.capacity ?? {};
    return { cpus: c.cpus ?? cpus().length, memoryBytes: c.memoryBytes ?? totalmem(), pods: c.pods ?? 110, ephemeralStorageBytes: c.ephemeralStorageBytes ?? 0 };
  }

  private async registerNode(): Promise<void> {
    const { nodeName, log } = this.opts;
    const node = nodeManifest(nodeName, this.capacity(), new Date(), 'virtops-agent/0.1.0');
    const created = await this.client.createNode(node);
    if (created) {
      log.info({ node: nodeName, capacity: node.status?.capacity }, 'registered Node');
      return;
    }
    // Re-registration after a restart: make sure it is schedulable and Ready again.
    const existing = await this.client.read<KubernetesObject & { metadata: { labels?: Record<string, string> } }>({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } });
    if (existing?.metadata.labels?.[LABEL_SCHEDULABLE] !== 'true') {
      await this.client.mergePatch({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } }, { metadata: { labels: { [LABEL_SCHEDULABLE]: 'true' } } });
    }
    await this.client.patchNodeStatus(nodeName, { capacity: node.status?.capacity, allocatable: node.status?.allocatable, conditions: node.status?.conditions });
    log.info({ node: nodeName }, 'Node exists; marked Ready');
  }

  private async markSchedulable(): Promise<void> {
    const { nodeName, log } = this.opts;
    const node = await this.client.read<KubernetesObject & { metadata: { labels?: Record<string, string> } }>({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } });
    if (!node) throw new Error(`Node ${nodeName} does not exist (yet): the kubelet registers it; check --node matches the kubelet's node name`);
    if (node.metadata.labels?.[LABEL_SCHEDULABLE] === 'true') return;
    await this.client.mergePatch({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } }, { metadata: { labels: { [LABEL_SCHEDULABLE]: 'true' } } });
    log.info({ node: nodeName }, `labelled the Node ${LABEL_SCHEDULABLE}=true`);
  }

  private async heartbeat(): Promise<void> {
    await this.client.patchNodeStatus(this.opts.nodeName, { conditions: nodeConditions(new Date()) });
  }

  private async renewLease(): Promise<void> {
    const name = this.opts.nodeName;
    const now = new Date();
    const current = await this.client.readLease(NODE_LEASE_NAMESPACE, name);
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: now };
    if (!current) {
      const lease: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: NODE_LEASE_NAMESPACE }, spec };
      await this.client.createLease(lease);
    } else {
      await this.client.updateLease({ ...current, spec: { ...current.spec, ...spec } });
    }
  }

  // ---- one launcher Pod ---------------------------------------------------------------------

  async reconcile(key: string): Promise<ReconcileResult> {
    // Its guest is being stopped (stopGuest): nothing else happens to the Pod until that ends.
    if (this.stopped || this.queue.busy(key)) return {};
    const { namespace, name } = splitKey(key);
    const pod = this.pods.get(name, namespace);
    let t = this.tracked.get(key);
    if (!pod || pod.spec?.nodeName !== this.opts.nodeName) {
      // Deleted for good (or force-deleted): its process must not outlive it.
      if (t) {
        await this.opts.runtime.stop(t.record, 0);
        // Its emptyDirs go with it, as in terminatePod; beside a kubelet, its socket dir (a hostPath the kubelet keeps).
        if (this.opts.processRuntime) await rm(t.record.podDir, { recursive: true, force: true });
        else await this.opts.sockets?.removePod(t.podUid);
        this.untrack(key);
      }
      return {};
    }
    const vmiUid = pod.metadata?.labels?.[LABEL_CREATED_BY] ?? '';
    const vmiName = pod.metadata?.ownerReferences?.find((r) => r.kind === 'VirtualMachineInstance')?.name;
    const cached = vmiName ? (this.vmis.get(vmiName, namespace) as unknown as VirtualMachineInstance | undefined) : undefined;
    let vmi = cached?.metadata.uid === vmiUid ? cached : undefined;
    if (!vmi && vmiName) {
      // A cache miss is not proof the VMI is gone (the informer may lag or be re-listing):
      // ask the API server before stopping a guest.
      const live = (await this.client.read<KubernetesObject>({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: vmiName, namespace } })) as unknown as VirtualMachineInstance | undefined;
      if (live?.metadata.uid === vmiUid) vmi = live;
    }
    if (!t || t.podUid !== pod.metadata?.uid) {
      t?.watch?.stop();
      t = this.track(key, pod, vmiUid, vmi);
    }

    if (pod.metadata?.deletionTimestamp) {
      return this.terminatePod(key, pod, t);
    }
    if (!vmi || vmi.metadata.deletionTimestamp) {
      // The VMI is going (or gone): stop the guest with the VMI's grace period.
      if (!(await this.stopInstance(key, pod, t, vmi))) return {};
      // A VMI that other finalizers keep must not go on saying Running: its guest is gone.
      // (With only ours it disappears right after, so the write is saved.)
      if (vmi && (vmi.metadata.finalizers ?? []).some((f) => f !== VMI_FINALIZER) && vmi.status?.phase !== 'Succeeded' && vmi.status?.phase !== 'Failed') {
        await this.reportVmi(vmi, t, { reachable: false, phase: 'Succeeded', reason: 'VMIDeleted', message: 'the guest was stopped because its VirtualMachineInstance is being deleted' });
      }
      if (vmi && (vmi.metadata.finalizers ?? []).includes(VMI_FINALIZER)) await removeFinalizer(this.client, vmi);
      if (!vmi && this.opts.processRuntime) return this.finishOrphanedPod(key, pod, t);
      return {};
    }

    const finishedPod = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    if (finishedPod) {
      // Beside a kubelet the Pod ending is the first word: the VMI says so too (the controller
      // already reads the Pod's end as the VMI's, LauncherPodFinished).
      if (!this.opts.processRuntime && vmi.status?.phase && vmi.status.phase !== 'Succeeded' && vmi.status.phase !== 'Failed') {
        const term = pod.status?.containerStatuses?.find((c) => c.name === 'compute')?.state?.terminated;
        await this.reportVmi(vmi, t, { reachable: false, phase: pod.status?.phase === 'Succeeded' ? 'Succeeded' : 'Failed', reason: 'LauncherExited', message: `launcher Pod ${pod.metadata?.name} is ${pod.status?.phase}${term ? `: the compute container exited with code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}` : ''}` });
      }
      return {};
    }

    if (!this.opts.processRuntime) {
      // Beside a kubelet: what the launcher says (or that it is gone) is in the view below.
      const waiting = await this.attachKubeletLauncher(key, pod, vmi, t);
      if (waiting) return waiting;
    } else {
      const alive = await this.opts.runtime.alive(t.record);
      if (!alive && !t.exited) {
        if (t.startedAt || pod.status?.phase === 'Running') {
          // It ran and is gone: the container "exited". The VMI failed unless the launcher said otherwise.
          t.exited = { state: 'exited', exitCode: 1, reason: 'Error', message: `launcher process exited; see ${t.record.logFile}`, ...(t.startedAt ? { startedAt: t.startedAt } : {}), finishedAt: new Date() };
        } else {
          await this.startLauncher(key, pod, vmi, t);
        }
      } else if (alive && !t.record.synced) {
        await this.adopt(vmi, t);
      }
    }

    let { view, recheckMs } = await this.view(t);
    // Pause or resume as the VMI asks ("true"/"false", set by the controller for `virtops
    // pause|unpause`); without the annotation a guest's pause state is left as it is.
    const asked = vmi.metadata.annotations?.[PAUSED_ANNOTATION];
    const wantPaused = asked === 'true';
    if ((asked === 'true' || asked === 'false') && view.reachable && view.phase === 'Running' && view.paused !== wantPaused) {
      this.opts.log.info({ pod: key, vmi: vmi.metadata.name, paused: wantPaused }, wantPaused ? 'pausing the guest' : 'resuming the guest');
      await this.opts.runtime.command(t.record, wantPaused ? 'pause' : 'unpause');
      ({ view, recheckMs } = await this.view(t));
    }
    // A guest that has just started is reported once its NICs are known: one write, not two.
    const hold = holdRunningReport(vmi.spec, currentVmiStatus(vmi.status, t.reported, this.now())?.phase, view, t.nicWaitSince, this.now());
    if (hold.hold) t.nicWaitSince = hold.since;
    else await this.reportVmi(vmi, t, view);
    if (this.opts.processRuntime) {
      // A finished VMI ends its launcher, as the compute container exits in KubeVirt.
      if ((view.phase === 'Succeeded' || view.phase === 'Failed') && (await this.opts.runtime.alive(t.record))) {
        await this.opts.runtime.stop(t.record, 0);
        t.exited = { state: 'exited', exitCode: view.phase === 'Succeeded' ? 0 : 1, reason: view.phase === 'Succeeded' ? 'Completed' : 'Error', ...(t.startedAt ? { startedAt: t.startedAt } : {}), finishedAt: new Date() };
      }
      await this.reportPod(pod, t.exited ?? (t.startedAt ? { state: 'running', startedAt: t.startedAt } : { state: 'starting' }));
    }
    this.watchLauncher(key, t);
    // Its launcher's events will not say when an unsettled phase settles: look again soon.
    const after = Math.min(hold.hold ? hold.retryInMs : Infinity, recheckMs ?? Infinity);
    return after < Infinity ? { requeueAfterMs: after } : {};
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** The launcher Pod on this node running VMI `vmiUid` (not exited); undefined when none. */
  launcherPod(vmiUid: string): V1Pod | undefined {
    for (const [key, t] of this.tracked) {
      if (t.vmiUid !== vmiUid || t.exited) continue;
      const { namespace, name } = splitKey(key);
      const pod = this.pods.get(name, namespace);
      if (pod?.metadata?.uid === t.podUid) return pod;
    }
    return undefined;
  }

  /**
   * The serial console socket of the running VMI `namespace/name` on this node (the console
   * server's lookup); undefined when it has no launcher running here.
   */
  consoleSocket(namespace: string, name: string): string | undefined {
    for (const [key, t] of this.tracked) {
      if (t.exited || !t.record.synced) continue;
      const pod = this.pods.get(splitKey(key).name, namespace);
      if (!pod || pod.metadata?.namespace !== namespace || pod.metadata?.deletionTimestamp) continue;
      if (pod.metadata?.ownerReferences?.find((r) => r.kind === 'VirtualMachineInstance')?.name !== name) continue;
      return serialSocketPath(t.record.shareDir);
    }
    return undefined;
  }

  /**
   * Beside a kubelet: hands the Pod its socket dir, follows the kubelet's word on the compute
   * container, and once it runs and its socket passes the peer check, gives the launcher its
   * VMI (or adopts it, after an agent restart). Returns a requeue while there is nothing to
   * drive yet.
   */
  private async attachKubeletLauncher(key: string, pod: V1Pod, vmi: VirtualMachineInstance, t: Tracked): Promise<ReconcileResult | undefined> {
    const sockets = this.opts.sockets;
    if (!sockets) throw new Error('the agent without --process-runtime needs the launcher socket directory (runAgent wires it)');
    await sockets.prepare(pod);
    const compute = pod.status?.containerStatuses?.find((c) => c.name === 'compute');
    const term = compute?.state?.terminated;
    if (term) {
      t.watch?.stop();
      t.watch = undefined;
      t.exited ??= {
        state: 'exited', exitCode: term.exitCode, reason: term.reason ?? 'Error',
        message: `the compute container exited with code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}; see ${t.record.logFile}`,
        ...(t.startedAt ? { startedAt: t.startedAt } : {}), finishedAt: term.finishedAt ? new Date(term.finishedAt) : new Date(),
      };
      return undefined;
    }
    if (t.record.synced) return undefined;
    const running = compute?.state?.running;
    if (!running) return { requeueAfterMs: 2000 }; // the kubelet has not started it yet
    t.startedAt ??= running.startedAt ? new Date(running.startedAt) : new Date();
    const problem = await sockets.verify(t.record, pod);
    if (problem) {
      t.socketWaitSince ??= Date.now();
      if (!t.socketWarned && Date.now() - t.socketWaitSince > 30_000) {
        t.socketWarned = true;
        this.opts.log.warn({ pod: key, socket: t.record.socketPath, problem }, 'the launcher socket is still not usable after 30 s; see the compute container\'s log');
      }
      return { requeueAfterMs: 1000 };
    }
    await this.adopt(vmi, t);
    if (!t.record.synced) return { requeueAfterMs: 1000 };
    this.opts.log.info({ pod: key, vmi: vmi.metadata.name, socket: t.record.socketPath }, 'driving the launcher the kubelet runs');
    return undefined;
  }

  private track(key: string, pod: V1Pod, vmiUid: string, vmi: VirtualMachineInstance | undefined): Tracked {
    const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : Date.now();
    const { record } = this.opts.runtime.plan(vmiOrStub(pod, vmi, vmiUid), pod as unknown as PodManifest, { podName: podDirName(pod), now: created });
    const running = pod.status?.containerStatuses?.find((c) => c.name === 'compute')?.state?.running?.startedAt;
    const image = pod.spec?.containers?.find((c) => c.name === 'compute')?.image;
    const t: Tracked = { podUid: pod.metadata?.uid ?? '', vmiUid, record, ...(running ? { startedAt: new Date(running) } : {}), ...(image ? { image } : {}) };
    this.tracked.set(key, t);
    return t;
  }

  private untrack(key: string): void {
    const t = this.tracked.get(key);
    t?.watch?.stop();
    if (t) this.podByVmiUid.delete(t.vmiUid);
    this.tracked.delete(key);
  }

  private async startLauncher(key: string, pod: V1Pod, vmi: VirtualMachineInstance, t: Tracked): Promise<void> {
    const { runtime, log } = this.opts;
    const { spec, record } = runtime.plan(vmi, pod as unknown as PodManifest, { podName: podDirName(pod), now: t.record.createdAt });
    t.record = record;
    try {
      const res = await runtime.start(vmi, record, spec, {
        onSpawned: () => {
          t.startedAt = new Date();
          return Promise.resolve();
        },
        // Running as soon as the process serves its socket, as kubelet reports a started container.
        // Then the slot goes to the next Pod, as on a single host (standalone/backend.ts): the
        // slots bound how many launchers boot at once; as many again are handed their VMI.
        onReady: async () => {
          await this.reportPod(pod, { state: 'running', startedAt: t.startedAt ?? new Date() });
          this.queue.leaveSlot(key);
        },
        onWaiting: (ms) => log.info({ pod: key, waitingSeconds: Math.round(ms / 1000) }, 'launcher still preparing the VMI (pulling images, building disks, starting QEMU)'),
      });
      this.logSynced(key, vmi, res);
    } catch (err) {
      log.error({ pod: key, err: errorMessage(err) }, 'launcher failed to start');
      throw err;
    }
  }

  /** A launcher found running (agent restart): give it its VMI if it never got it. */
  private async adopt(vmi: VirtualMachineInstance, t: Tracked): Promise<void> {
    if (!t.startedAt) t.startedAt = new Date();
    await this.opts.runtime.adopt(vmi, t.record);
  }

  private logSynced(key: string, vmi: VirtualMachineInstance, res: SyncResponse): void {
    for (const w of res.warnings ?? []) this.opts.log.warn({ pod: key, warning: w }, 'launcher warning');
    this.opts.log.info({ pod: key, vmi: vmi.metadata.name, domain: res.domain, state: res.state }, 'VMI synced to its launcher');
  }

  /** What the launcher says, as the VMI status shows it, and when to look again if that is not settled (unsettledRecheckMs). */
  private async view(t: Tracked): Promise<{ view: LauncherView; recheckMs?: number }> {
    if (t.exited) return { view: { reachable: false, phase: 'Failed', reason: 'LauncherExited', message: t.exited.message ?? 'launcher process exited' } };
    // The same observation → phase function as on a single host (timeouts included).
    const { observation, phase } = await this.opts.runtime.observePhase(t.record);
    const recheckMs = unsettledRecheckMs(phase);
    return { view: launcherView(observation, phase), ...(recheckMs !== undefined ? { recheckMs } : {}) };
  }

  private async reportVmi(vmi: VirtualMachineInstance, t: Tracked, view: LauncherView): Promise<void> {
    // Nothing worth reporting until the launcher has the VMI (avoids a Scheduled write).
    if ((view.phase === 'Scheduled' || view.phase === 'Scheduling') && !vmi.status?.phase) return;
    const now = this.now();
    // Built on what this agent last wrote while the cache still shows an older state.
    const known = currentVmiStatus(vmi.status, t.reported, now);
    const { status, signature } = vmiStatusFor(known === vmi.status ? vmi : { ...vmi, status: known }, view, this.opts.nodeName, new Date(now), t.image);
    const before = vmiStatusSignature(known);
    if (signature === before) return;
    this.opts.log.debug({ vmi: `${vmi.metadata.namespace}/${vmi.metadata.name}`, from: before, to: signature }, 'VMI status changed');
    await this.client.patchCustomStatus('virtualmachineinstances', vmi.metadata.namespace ?? 'default', vmi.metadata.name ?? '', status);
    t.reported = vmiReportAfterWrite(t.reported, status, signature, before, now);
  }

  private async reportPod(pod: V1Pod, p: ProcessState): Promise<void> {
    const { status, signature } = podStatusFor(pod, p, '127.0.0.1', new Date());
    const before = podStatusSignature(pod);
    if (signature === before) return;
    this.opts.log.debug({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, from: before, to: signature }, 'Pod status changed');
    const updated = await this.client.patchPodStatus(pod.metadata?.namespace ?? 'default', pod.metadata?.name ?? '', status);
    pod.status = updated.status ?? pod.status;
  }

  /**
   * Stops the launcher's guest outside the reconcile slots: a graceful stop takes up to the
   * VMI's grace period (30 s by default, all of it when the guest ignores ACPI), and inside
   * the reconcile 16 such guests stalled every other launcher on the node. True once it is
   * stopped; false while the stop runs (the Pod's pass ends there, and the stop's end queues
   * it again). A failed stop is thrown by the next pass, and the pass after the back-off
   * stops it again.
   */
  private async stopGuest(key: string, t: Tracked, stop: () => Promise<void>): Promise<boolean> {
    if (t.guestStopped) return true;
    if (t.guestStopError !== undefined) {
      const err = t.guestStopError;
      delete t.guestStopError;
      throw err;
    }
    this.queue.inBackground(key, () => stop().then(
      () => void (t.guestStopped = true),
      (err: unknown) => void (t.guestStopError = err),
    ));
    return false;
  }

  /** The guest's ACPI shutdown within the VMI's grace period, then its launcher process. */
  private async stopLauncher(key: string, t: Tracked, grace: number, why: string): Promise<void> {
    if (await this.opts.runtime.alive(t.record)) {
      this.opts.log.info({ pod: key, vmi: t.vmiUid, grace }, why);
      await this.opts.runtime.stop(t.record, grace);
    } else {
      // No process (already stopped, or never started): still make sure no domain is left.
      await this.opts.runtime.stop(t.record, 0);
    }
  }

  /** Stops the guest (VMI gone or terminating); true once it is stopped and reported. */
  private async stopInstance(key: string, pod: V1Pod, t: Tracked, vmi: VirtualMachineInstance | undefined): Promise<boolean> {
    const grace = vmiGraceSeconds(vmi?.spec ?? t.record.spec);
    if (!(await this.stopGuest(key, t, () => this.stopLauncher(key, t, grace, 'VMI deleted: stopping its guest')))) return false;
    t.watch?.stop();
    if (this.opts.processRuntime) {
      t.exited ??= { state: 'exited', exitCode: 0, reason: 'Completed', ...(t.startedAt ? { startedAt: t.startedAt } : {}), finishedAt: new Date() };
      // Reported until the Pod shows it: a report that failed (the API server restarting) is
      // retried with the reconcile, not forgotten.
      if (pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed' && t.startedAt) await this.reportPod(pod, t.exited);
    }
    return true;
  }

  /**
   * The Pod's VMI is gone for good (a live read said so) and its guest is stopped. Normally
   * the Pod's deletion follows (the controller's or the garbage collector's) and arrives as
   * an update; but a watch resumed across an API server restart has been seen to miss it,
   * leaving the Pod terminating for good. So ask the API server for the Pod itself: finish a
   * deletion it shows, forget a Pod that is gone, and look again shortly otherwise.
   */
  private async finishOrphanedPod(key: string, pod: V1Pod, t: Tracked): Promise<ReconcileResult> {
    const { namespace = 'default', name = '' } = pod.metadata ?? {};
    const live = await this.client.read<V1Pod & KubernetesObject>({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace } });
    if (!live || live.metadata?.uid !== pod.metadata?.uid) {
      await this.opts.runtime.removeVmFiles(namespace, podDirName(pod)).catch(() => undefined);
      this.untrack(key);
      return {};
    }
    if (live.metadata?.deletionTimestamp) return this.terminatePod(key, live, t);
    return { requeueAfterMs: 5000 };
  }

  /** The Pod is being deleted: stop its process, then remove the Pod for good (kubelet's last step). */
  private async terminatePod(key: string, pod: V1Pod, t: Tracked): Promise<ReconcileResult> {
    if (!this.opts.processRuntime) {
      // The kubelet stops the container (SIGTERM to the monitor, which gives the guest its
      // grace period); the agent asks the launcher for the same, and keeps tracking the Pod
      // until it is gone, to remove its socket dir then.
      t.watch?.stop();
      t.watch = undefined;
      await this.stopGuest(key, t, () => this.opts.runtime.stop(t.record, vmiGraceSeconds(t.record.spec)));
      return {};
    }
    // The guest gets the VMI's grace period (the Pod's own is that plus the launcher's margin).
    if (!(await this.stopGuest(key, t, () => this.stopLauncher(key, t, vmiGraceSeconds(t.record.spec), 'launcher Pod deleted: stopping its guest')))) return {};
    if (pod.metadata?.uid) {
      await this.client.deletePodNow(pod.metadata.namespace ?? 'default', pod.metadata.name ?? '', pod.metadata.uid);
      // The Pod's emptyDirs (ephemeral disks, sockets) go with it, as kubelet removes them.
      await this.opts.runtime.removeVmFiles(pod.metadata.namespace ?? 'default', podDirName(pod)).catch(() => undefined);
    }
    this.untrack(key);
    return {};
  }

  /** Follows the launcher's transitions so a stopped or crashed guest is reported at once. */
  private watchLauncher(key: string, t: Tracked): void {
    if (t.watch || !t.record.synced || t.exited || this.stopped) return;
    const watch = this.opts.runtime.watch(t.record, (ended) => {
      if (t.watch !== watch) return;
      if (ended) t.watch = undefined;
      if (!this.stopped) this.queue.add(key);
    });
    t.watch = watch;
  }
}

/** Short (unix socket paths under it are capped at 107 bytes) and unique per incarnation. */
function podDirName(pod: V1Pod): string {
  return (pod.metadata?.labels?.[LABEL_CREATED_BY] ?? pod.metadata?.uid ?? pod.metadata?.name ?? 'pod').replace(/[^a-z0-9]/g, '').slice(0, 12);
}

/** The VMI a launcher Pod belongs to, or a stand-in with its uid while the VMI is unknown (it is gone or not yet cached). */
function vmiOrStub(pod: V1Pod, vmi: VirtualMachineInstance | undefined, vmiUid: string): VirtualMachineInstance {
  if (vmi) return vmi;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: pod.metadata?.labels?.[LABEL_VM_NAME] ?? '', namespace: pod.metadata?.namespace ?? 'default', uid: vmiUid },
    spec: { domain: { devices: {} } },
  };
}

/** A launcher's observation and its phase as the VMI status shows them. */
function launcherView(observation: LauncherObservation, phase: LauncherPhase): LauncherView {
  // The guest's report (agent IPs, OS info, AgentConnected) goes into the VMI status too.
  if (observation.reachable && !phase.outOfSync) return { reachable: true, phase: phase.phase, ...(phase.reason ? { reason: phase.reason } : {}), ...(phase.message ? { message: phase.message } : {}), paused: phase.paused ?? false, ...(phase.guest ? { guest: phase.guest } : {}) };
  // Out of sync (libvirt unreachable, launcher silent): the last known phase with Synchronized=False.
  if (phase.outOfSync) return { reachable: false, phase: phase.phase, reason: phase.outOfSync.reason, message: phase.outOfSync.message, paused: phase.paused ?? false };
  return { reachable: false, phase: phase.phase, reason: phase.reason ?? 'LauncherUnreachable', message: phase.message ?? (observation.reachable ? 'launcher unreachable' : observation.reason) };
}
