/**
 * FakeInstanceHandler: an in-memory stand-in for the node side (reconciler/agent's
 * NodeAgent) for unit tests of the reconcilers. Launchers are records in a map; a test
 * crashes, hangs or finishes them and checks what the reconciler does about it. No processes,
 * sockets or libvirt: the real NodeAgent is covered by the integration tests.
 */
import type { VMIPhase, VirtualMachineInstance } from '../../api/kubevirt.js';
import type { SyncResponse } from '../../launcher/launcher.js';
import { type InstanceHandler, type InstanceRecord, LauncherError, type Observation, type StartHooks } from '../../reconciler/agent/agent.js';
import type { ProcessSpec } from '../../reconciler/agent/pod-process.js';
import { type LauncherPhase, LauncherMemory } from '../../reconciler/core/index.js';
import type { ObservedGuest } from '../../reconciler/core/launcher-phase.js';
import type { PodManifest } from '../../synth/pod-types.js';

export interface FakeLauncher {
  record: InstanceRecord;
  vmi?: VirtualMachineInstance;
  /** The process exists. */
  alive: boolean;
  /** Its socket answers. */
  answering: boolean;
  phase: VMIPhase;
  paused: boolean;
  /** Its monitor died (kill -9): the launcher still answers, unsupervised. */
  monitorGone?: boolean;
  /** What it reports of the guest (agent IPs, OS info), as /v1/info's `guest`. */
  guest?: ObservedGuest;
  /** libvirtd is down: the launcher answers with its last known state and this connection status. */
  libvirt?: 'connected' | 'disconnected';
}

export class FakeInstanceHandler implements InstanceHandler {
  readonly launchers = new Map<string, FakeLauncher>();
  /** Every stop, in order, with the guest grace period it was given. */
  readonly stops: { uid: string; graceSeconds: number }[] = [];
  readonly removedDirs: string[] = [];
  /** The next start fails with this reason (as a launcher that exits at once). */
  failNextStart: string | undefined;
  /**
   * While true, a launcher that answers waits before taking its VMI until `handOver(domain)`:
   * its prepare, define and start take their time.
   */
  holdSyncs = false;
  /** Launchers held that way, by domain name. */
  readonly held = new Map<string, () => void>();
  /** The clock observePhase reads when none is passed. */
  now: () => number = () => Date.now();
  private readonly memory = new LauncherMemory(0);
  private readonly watchers = new Map<string, Set<(ended: boolean) => void>>();

  podDir(namespace: string, name: string): string {
    return `/fake/pods/${namespace}_${name}`;
  }

  plan(vmi: VirtualMachineInstance, pod: PodManifest, opts: { podName: string; now: number; vmGeneration?: number }): { spec: ProcessSpec; record: InstanceRecord } {
    const uid = vmi.metadata.uid ?? '';
    const podDir = this.podDir(vmi.metadata.namespace ?? 'default', opts.podName);
    const domainName = `${vmi.metadata.namespace ?? 'default'}_${vmi.metadata.name}`;
    const record: InstanceRecord = {
      uid,
      createdAt: opts.now,
      spec: structuredClone(vmi.spec),
      ...(opts.vmGeneration !== undefined ? { vmGeneration: opts.vmGeneration } : {}),
      podDir,
      socketPath: `${podDir}/launcher.sock`,
      shareDir: `${podDir}/share`,
      domainName,
      logFile: `${podDir}/launcher.log`,
      podGraceSeconds: pod.spec.terminationGracePeriodSeconds,
    };
    return { spec: { argv: ['fake-launcher', uid], env: {}, dirs: [], hostFlagChanges: [], socketPath: record.socketPath, shareDir: record.shareDir, domainName }, record };
  }

  async start(vmi: VirtualMachineInstance, record: InstanceRecord, _spec: ProcessSpec, hooks: StartHooks = {}): Promise<SyncResponse> {
    const l: FakeLauncher = { record, alive: true, answering: false, phase: 'Scheduled', paused: false };
    this.launchers.set(record.uid, l);
    record.pid = 10_000 + this.launchers.size;
    await hooks.onSpawned?.();
    const fail = this.failNextStart;
    if (fail) {
      this.failNextStart = undefined;
      l.alive = false;
      throw new LauncherError(`fake launcher exited at start (${fail})`, fail);
    }
    l.answering = true;
    await hooks.onReady?.();
    if (this.holdSyncs) await new Promise<void>((resolve) => this.held.set(record.domainName, resolve));
    return this.sync(l, vmi);
  }

  handOver(domain: string): void {
    this.held.get(domain)?.();
    this.held.delete(domain);
  }

  /** Stops holding launchers and hands every held one its VMI (a test's teardown, also when it fails). */
  releaseSyncs(): void {
    this.holdSyncs = false;
    for (const d of [...this.held.keys()]) this.handOver(d);
  }

  async adopt(vmi: VirtualMachineInstance, record: InstanceRecord): Promise<Observation> {
    const l = this.launchers.get(record.uid);
    if (l?.alive && l.answering && !l.vmi) this.sync(l, vmi);
    const o = await this.observe(record);
    if (o.reachable && l?.vmi) record.synced = true;
    return o;
  }

  observe(record: InstanceRecord): Promise<Observation> {
    const l = this.launchers.get(record.uid);
    if (l?.alive && l.answering) {
      return Promise.resolve({
        reachable: true,
        info: {
          vmi: { name: l.vmi?.metadata.name ?? '', namespace: l.vmi?.metadata.namespace ?? '', uid: record.uid },
          domain: record.domainName,
          state: l.vmi ? (l.phase === 'Running' ? (l.paused ? 'Paused' : 'Running') : 'Shutoff') : 'Absent',
          phase: l.phase as never,
          paused: l.paused,
          restartRequired: false,
          launcherUptimeSeconds: 1,
          libvirt: l.libvirt ?? 'connected',
          warnings: [],
          ...(l.guest ? { guest: l.guest } : {}),
        },
        supervised: !l.monitorGone,
      } as Observation);
    }
    return Promise.resolve({ reachable: false, processAlive: l?.alive ?? false, reason: l?.alive ? 'fake: not answering' : 'fake: no process' });
  }

  async observePhase(record: InstanceRecord, now = this.now()): Promise<{ observation: Observation; phase: LauncherPhase }> {
    const observation = await this.observe(record);
    return { observation, phase: this.memory.phase(record.uid, record.createdAt, observation, now, record.logFile) };
  }

  alive(record: InstanceRecord): Promise<boolean> {
    return Promise.resolve(this.launchers.get(record.uid)?.alive ?? false);
  }

  command(record: InstanceRecord, action: 'pause' | 'unpause'): Promise<void> {
    const l = this.launchers.get(record.uid);
    if (!l?.answering) return Promise.reject(new LauncherError('fake launcher does not answer', 'CommandFailed'));
    l.paused = action === 'pause';
    this.emit(record.uid, false);
    return Promise.resolve();
  }

  stop(record: InstanceRecord, graceSeconds: number): Promise<void> {
    this.stops.push({ uid: record.uid, graceSeconds });
    this.memory.forget(record.uid);
    const l = this.launchers.get(record.uid);
    if (l) {
      l.alive = false;
      l.answering = false;
    }
    return Promise.resolve();
  }

  watch(record: InstanceRecord, onChange: (ended: boolean) => void): { stop(): void } {
    const set = this.watchers.get(record.uid) ?? new Set();
    set.add(onChange);
    this.watchers.set(record.uid, set);
    return { stop: () => set.delete(onChange) };
  }

  findRunning(namespace: string, name: string): Promise<{ uid: string; pid: number } | undefined> {
    const l = [...this.launchers.values()].find((x) => x.alive && x.record.podDir === this.podDir(namespace, name));
    return Promise.resolve(l ? { uid: l.record.uid, pid: l.record.pid ?? 0 } : undefined);
  }

  removeVmFiles(namespace: string, name: string): Promise<void> {
    this.removedDirs.push(this.podDir(namespace, name));
    return Promise.resolve();
  }

  // ---- test controls ------------------------------------------------------------------

  /** The launcher of the only (or the given) live instance. */
  live(uid?: string): FakeLauncher {
    const found = [...this.launchers.values()].filter((l) => l.alive && (uid === undefined || l.record.uid === uid));
    if (found.length !== 1) throw new Error(`expected one live fake launcher, found ${found.length}`);
    return found[0]!;
  }

  /** The process dies (a crash, a kill -9). */
  crash(uid: string): void {
    const l = this.launchers.get(uid)!;
    l.alive = false;
    l.answering = false;
    this.emit(uid, true);
  }

  /** The launcher's monitor is killed; the launcher goes on answering. */
  killMonitor(uid: string): void {
    this.launchers.get(uid)!.monitorGone = true;
  }

  /** libvirtd goes away (or comes back) under the launcher: it answers with its last known state. */
  libvirt(uid: string, status: 'connected' | 'disconnected'): void {
    this.launchers.get(uid)!.libvirt = status;
    this.emit(uid, false);
  }

  /** A hung launcher answers again. */
  unhang(uid: string): void {
    this.launchers.get(uid)!.answering = true;
  }

  /** The process stays but its socket stops answering. */
  hang(uid: string): void {
    this.launchers.get(uid)!.answering = false;
  }

  /** The guest finishes: a clean shutdown (Succeeded) or a failure. */
  finish(uid: string, phase: 'Succeeded' | 'Failed'): void {
    this.launchers.get(uid)!.phase = phase;
    this.emit(uid, false);
  }

  private sync(l: FakeLauncher, vmi: VirtualMachineInstance): SyncResponse {
    l.vmi = vmi;
    l.phase = 'Running';
    l.record.synced = true;
    return { result: 'created' as never, domain: l.record.domainName, state: 'Running', phase: 'Running', warnings: [] };
  }

  private emit(uid: string, ended: boolean): void {
    for (const w of this.watchers.get(uid) ?? []) w(ended);
  }
}
