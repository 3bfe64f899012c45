/**
 * The node agent (virt-handler's role on one host): runs each VMI's launcher as a detached,
 * supervised process built from the launcher Pod in git, pushes the VMI to it over its
 * command socket, reads its state back, and stops it with the grace period.
 *
 * Stateless by design: the caller (the standalone backend) persists the InstanceRecord it
 * gets back, before and after the process starts, so a reconciler killed at any point
 * finds its launchers again (by pid, or by the VMI uid on their command line).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { VirtualMachineInstance, VirtualMachineInstanceSpec } from '../../api/kubevirt.js';
import type { LauncherInfo, SyncResponse } from '../../launcher/launcher.js';
import { callLauncher, launcherEvents } from '../../launcher/server/client.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { type LauncherObservation, type LauncherPhase, LauncherMemory, awaitingVmi } from '../core/launcher-phase.js';
import { serialSocketPath } from '../../launcher/convert/console.js';
import { MAX_STATE_DIR_BYTES, podKey } from './host-config.js';
import { type HostFlags, type ProcessSpec, launcherProcessSpec } from './pod-process.js';
import { CLEANUP_ONLY_FLAG, cleanupNeeded, findProcesses, launchOf, prepareHostDirs, processAlive, processesUnder, reapGroup, runToEnd, startDetached, stopProcess, tail, withLauncherNodeFlags } from './process-runtime.js';

/** What the backend persists about one running (or finished) launcher. */
export interface InstanceRecord {
  uid: string;
  createdAt: number;
  /** The VMI spec this incarnation was started with (compared with git for RestartRequired). */
  spec: VirtualMachineInstanceSpec;
  vmGeneration?: number;
  podDir: string;
  socketPath: string;
  shareDir: string;
  domainName: string;
  logFile: string;
  /** Set once the process is spawned. */
  pid?: number;
  /**
   * How the launcher process was started, so its supervisor can run the cleanup after a
   * SIGKILL with the same flags and environment (`launcher-monitor --cleanup-only`). Absent in
   * records written before it existed; then it is read from /proc while the process runs.
   */
  launch?: LaunchCommand;
  /** The launcher accepted the VMI (PUT /v1/vmi succeeded). */
  synced?: boolean;
  /** Pod terminationGracePeriodSeconds: how long a stop may take before SIGKILL. */
  podGraceSeconds: number;
  runningSince?: number;
  finishedAt?: number;
}

export interface LaunchCommand {
  argv: string[];
  env: Record<string, string>;
}

/** Removes a domain whose launcher is gone (only ever called for domains this host created). */
export interface DomainJanitor {
  removeDomain(name: string): Promise<'removed' | 'absent'>;
}

export interface AgentOptions {
  /** `<state-dir>/pods`. */
  podsDir: string;
  virtopsCommand: string[];
  hostFlags: HostFlags;
  /** Environment every launcher gets besides the Pod's own (PATH, HOME). */
  baseEnv: Record<string, string>;
  janitor: DomainJanitor;
  /** Who runs launchers. Default: one detached OS process per launcher (ProcessRuntime). */
  runtime?: LauncherRuntime;
  log: Logger;
  /** How long a launcher may take to open its socket. */
  startTimeoutMs?: number;
}

export type Observation = LauncherObservation &
  ({ reachable: true; info: LauncherInfo } | { reachable: false; processAlive: boolean; reason: string });

export const LAUNCHER_MARKER = 'launcher-monitor';

/**
 * Runs launchers. The default runs each as its own detached process (the Pod's command);
 * code may inject another (AgentOptions.runtime): the kubelet's (cluster/kubelet-launchers.ts),
 * or the benchmarks' pool runtime (bench/pool-runtime.ts), which hosts many in one process.
 */
export interface LauncherRuntime {
  readonly kind: string;
  /** Starts the launcher of `record` as `spec` says; returns the pid that holds it. */
  start(record: InstanceRecord, spec: ProcessSpec, env: Record<string, string>): Promise<number>;
  alive(record: InstanceRecord): Promise<boolean>;
  /**
   * Whether the process that supervises the launcher (its monitor) is still there. Only for
   * runtimes with a separate monitor; where the launcher answers only while its host runs it
   * (the benchmarks' pool), an answer is proof enough and this is absent.
   */
  supervised?(record: InstanceRecord): Promise<boolean>;
  /** The pid that holds it, found again (by the uid on its command line) when the record lost it. */
  pid?(record: InstanceRecord): Promise<number | undefined>;
  /** Stops it (the launcher stops its guest within its grace period first); waits until gone. */
  stop(record: InstanceRecord, graceMs: number, log: Logger): Promise<void>;
}

/**
 * One detached OS process per launcher (`launcher-monitor`: the launcher and its monitor's
 * duties in one Node process), found again by pid or by the uid on its command line. This
 * runtime is that process's supervisor: when it is found dead (or must be killed) with its
 * socket or state file left behind, `stop` reaps its process group and runs the same cleanup
 * the process runs after its own failure, as `launcher-monitor --cleanup-only <its flags>`,
 * and throws when that fails so the caller retries the stop (never forgets the domain).
 */
export class ProcessRuntime implements LauncherRuntime {
  readonly kind = 'process';

  async start(record: InstanceRecord, spec: ProcessSpec, env: Record<string, string>): Promise<number> {
    return (await startDetached(withLauncherNodeFlags(spec.argv), env, { cwd: record.podDir, logFile: record.logFile })).pid;
  }

  async alive(record: InstanceRecord): Promise<boolean> {
    return (await this.pids(record)).length > 0;
  }

  /** The one launcher process is its own monitor: it answers only while it supervises itself. */
  supervised(record: InstanceRecord): Promise<boolean> {
    return this.alive(record);
  }

  async pid(record: InstanceRecord): Promise<number | undefined> {
    return (await this.pids(record))[0];
  }

  async pids(record: InstanceRecord): Promise<number[]> {
    if (record.pid !== undefined && (await processAlive(record.pid, record.uid))) return [record.pid];
    return findProcesses([LAUNCHER_MARKER, record.uid], [CLEANUP_ONLY_FLAG]);
  }

  async stop(record: InstanceRecord, graceMs: number, log: Logger): Promise<void> {
    const pids = await this.pids(record);
    // Adopted from an older record: its command line is read while it still runs.
    const launch = record.launch ?? (pids[0] !== undefined ? await launchOf(pids[0]) : undefined);
    for (const pid of pids) {
      const how = await stopProcess(pid, graceMs, record.uid);
      log.info({ vmi: record.domainName, uid: record.uid, pid, how }, 'launcher stopped');
    }
    // A launcher child of the two-process layout (before one process per VM) may be left.
    for (const pid of await findProcesses(['--uid', record.uid], [CLEANUP_ONLY_FLAG])) {
      const how = await stopProcess(pid, 10_000, record.uid);
      log.warn({ vmi: record.domainName, uid: record.uid, pid, how }, 'stopped a launcher process left behind');
    }
    // Helpers it ran (qemu-img, skopeo) stay in its process group after it is gone.
    for (const pid of new Set([...pids, ...(record.pid !== undefined ? [record.pid] : [])])) await reapGroup(pid);
    if (!launch || !(await cleanupNeeded(launch.argv, record.socketPath))) return;
    // It died without its cleanup (SIGKILL, or killed here after the grace period).
    log.warn({ vmi: record.domainName, uid: record.uid }, 'the launcher died without cleaning up; running its cleanup');
    const argv = [...launch.argv, CLEANUP_ONLY_FLAG];
    const { code, signal } = await runToEnd(argv, launch.env, { cwd: record.podDir, logFile: record.logFile, timeoutMs: graceMs + 60_000 });
    if (code !== 0) {
      throw new LauncherError(
        `the cleanup after the launcher of ${record.domainName} failed (exit ${code ?? signal}); it is retried; last lines of ${record.logFile}:\n${await tail(record.logFile)}`,
        'CleanupFailed',
      );
    }
    log.info({ vmi: record.domainName, uid: record.uid }, 'cleaned up after the launcher');
  }
}

export class LauncherError extends Error {
  constructor(message: string, readonly reason: string, readonly status?: number) {
    super(message);
    this.name = 'LauncherError';
  }
}

/**
 * The node side of a VMI, as both modes drive it (virt-handler's role): plan its launcher
 * from the launcher Pod, start it and hand it the VMI, adopt one found running, observe it
 * (one observation → phase function), follow its events, pause it, stop it. `NodeAgent` is
 * the implementation; unit tests of the reconcilers use an in-memory fake.
 */
export interface InstanceHandler {
  podDir(namespace: string, name: string): string;
  plan(vmi: VirtualMachineInstance, pod: PodManifest, opts: { podName: string; now: number; vmGeneration?: number }): { spec: ProcessSpec; record: InstanceRecord };
  start(vmi: VirtualMachineInstance, record: InstanceRecord, spec: ProcessSpec, hooks?: StartHooks): Promise<SyncResponse>;
  adopt(vmi: VirtualMachineInstance, record: InstanceRecord): Promise<Observation>;
  observe(record: InstanceRecord): Promise<Observation>;
  observePhase(record: InstanceRecord, now?: number): Promise<{ observation: Observation; phase: LauncherPhase }>;
  alive(record: InstanceRecord): Promise<boolean>;
  command(record: InstanceRecord, action: 'pause' | 'unpause'): Promise<void>;
  stop(record: InstanceRecord, graceSeconds: number): Promise<void>;
  watch(record: InstanceRecord, onChange: (ended: boolean) => void): { stop(): void };
  removeVmFiles(namespace: string, name: string): Promise<void>;
  /** Removes launcher Pod dirs (and what runs from them) whose names `keep` does not hold; see NodeAgent. */
  sweepOrphans?(keep: () => ReadonlySet<string>): Promise<string[]>;
  /**
   * The launcher running in a VM's pod dir, found from what runs (its monitor's command line),
   * for a VM whose state record was lost: it is adopted, never started twice.
   */
  findRunning?(namespace: string, name: string): Promise<{ uid: string; pid: number } | undefined>;
}

/** Points in a launcher's start where the caller records progress. */
export interface StartHooks {
  /** The process exists (its pid is in the record): persist the record. */
  onSpawned?: () => Promise<void>;
  /** Its socket answers (kubelet would report the container started). */
  onReady?: () => Promise<void>;
  /** Still preparing the VMI after `elapsedMs` (image pulls, disks, QEMU start). */
  onWaiting?: (elapsedMs: number) => void;
}

export class NodeAgent implements InstanceHandler {
  private readonly runtime: LauncherRuntime;
  private readonly memory = new LauncherMemory(Date.now());

  constructor(private readonly opts: AgentOptions) {
    this.runtime = opts.runtime ?? new ProcessRuntime();
  }

  podDir(namespace: string, name: string): string {
    return join(this.opts.podsDir, podKey(namespace, name));
  }

  /**
   * Builds the process spec for a VMI's launcher (pure) and the record to persist before
   * spawning. `podName` names the host directory of the launcher Pod (`<ns>_<podName>`).
   */
  plan(vmi: VirtualMachineInstance, pod: PodManifest, opts: { podName: string; now: number; vmGeneration?: number }): { spec: ProcessSpec; record: InstanceRecord } {
    const uid = vmi.metadata.uid;
    if (!uid) throw new LauncherError(`VirtualMachineInstance ${vmi.metadata.namespace ?? 'default'}/${vmi.metadata.name} has no uid yet`, 'NoUid');
    const podDir = this.podDir(vmi.metadata.namespace ?? 'default', opts.podName);
    const spec = launcherProcessSpec({ pod, uid, podDir, virtopsCommand: this.opts.virtopsCommand, hostFlags: this.opts.hostFlags });
    // Fixed-length pod dirs make these fit any name; a long --state-dir is refused at start-up.
    for (const socket of [spec.socketPath, serialSocketPath(spec.shareDir)]) {
      if (Buffer.byteLength(socket) > 107) {
        throw new LauncherError(`launcher socket path ${socket} is over the 107-byte unix socket limit: use a --state-dir of at most ${MAX_STATE_DIR_BYTES} bytes`, 'SocketPathTooLong');
      }
    }
    const record: InstanceRecord = {
      uid,
      createdAt: opts.now,
      spec: structuredClone(vmi.spec),
      ...(opts.vmGeneration !== undefined ? { vmGeneration: opts.vmGeneration } : {}),
      podDir,
      socketPath: spec.socketPath,
      shareDir: spec.shareDir,
      domainName: spec.domainName,
      logFile: join(podDir, 'launcher.log'),
      podGraceSeconds: pod.spec.terminationGracePeriodSeconds,
    };
    return { spec, record };
  }

  /** Spawns the launcher (detached) and waits for its socket. Returns the pid. */
  async spawn(record: InstanceRecord, spec: ProcessSpec): Promise<number> {
    const { log } = this.opts;
    for (const c of spec.hostFlagChanges) {
      log.info({ vmi: spec.domainName, flag: c.flag, pod: c.pod ?? null, host: c.host }, `host flag ${c.flag} ${c.host}${c.pod !== undefined ? ` (the Pod in git says ${c.pod})` : ' (added for this host)'}`);
    }
    await prepareHostDirs(spec.dirs);
    await rm(record.socketPath, { force: true });
    log.info({ vmi: spec.domainName, uid: record.uid, argv: spec.argv, runtime: this.runtime.kind }, 'starting launcher');
    const env = { ...this.opts.baseEnv, ...spec.env };
    record.launch = { argv: spec.argv, env };
    record.pid = await this.runtime.start(record, spec, env);
    return record.pid;
  }

  /** Waits until the launcher answers /healthz; fails early if the process exits. */
  async waitReady(record: InstanceRecord): Promise<void> {
    const began = Date.now();
    const deadline = began + (this.opts.startTimeoutMs ?? 60_000);
    let attempt = 0;
    for (;;) {
      const ok = await callLauncher(record.socketPath, 'GET', '/healthz', undefined, 2000).then((r) => r.status === 200, () => false);
      if (ok) return;
      if (record.pid !== undefined && !(await this.runtime.alive(record))) {
        throw new LauncherError(`launcher exited before opening its socket; last lines of ${record.logFile}:\n${await tail(record.logFile)}`, 'LauncherExited');
      }
      if (Date.now() > deadline) {
        throw new LauncherError(`launcher did not open ${record.socketPath} within ${(this.opts.startTimeoutMs ?? 60_000) / 1000}s; see ${record.logFile}`, 'LauncherTimeout');
      }
      // Every 20 ms for the first second (a launcher answers ~110 ms after its spawn, and a
      // coarser step would hide that), then back off.
      await new Promise((r) => setTimeout(r, Date.now() - began < 1000 ? 20 : Math.min(250, 20 * 1.5 ** attempt++)));
    }
  }

  /** Pushes the VMI to the launcher, with the record's uid and the spec it was started with. */
  async sync(vmi: VirtualMachineInstance, record: InstanceRecord, onWaiting?: (elapsedMs: number) => void): Promise<SyncResponse> {
    const body: VirtualMachineInstance = { ...vmi, metadata: { ...vmi.metadata, uid: record.uid }, spec: structuredClone(record.spec) };
    delete body.status;
    const started = Date.now();
    const ticker = onWaiting ? setInterval(() => onWaiting(Date.now() - started), 5000) : undefined;
    try {
      const res = await callLauncher<SyncResponse & { error?: string; reason?: string }>(record.socketPath, 'PUT', '/v1/vmi', body);
      if (res.status === 200 || res.status === 201) {
        record.synced = true;
        return res.body;
      }
      throw new LauncherError(res.body?.error ?? `launcher answered ${res.status}`, res.body?.reason ?? 'SyncFailed', res.status);
    } finally {
      if (ticker) clearInterval(ticker);
    }
  }

  /** Spawns the launcher, waits for its socket, then gives it the VMI. */
  async start(vmi: VirtualMachineInstance, record: InstanceRecord, spec: ProcessSpec, hooks: StartHooks = {}): Promise<SyncResponse> {
    await this.spawn(record, spec);
    await hooks.onSpawned?.();
    await this.waitReady(record);
    await hooks.onReady?.();
    return this.sync(vmi, record, hooks.onWaiting);
  }

  /**
   * A launcher found running (after a reconciler or agent restart): if it never received its
   * VMI (the restart came between spawn and sync), it gets it now. Returns what it says then.
   */
  async adopt(vmi: VirtualMachineInstance, record: InstanceRecord): Promise<Observation> {
    // Killed between spawn and saving the pid: find the process again so describe shows it.
    if (record.pid === undefined) {
      const pid = await this.runtime.pid?.(record);
      if (pid !== undefined) record.pid = pid;
    }
    let o = await this.observe(record);
    if (awaitingVmi(o)) {
      this.opts.log.info({ vmi: record.domainName, uid: record.uid }, 'adopting a launcher that never received its VMI: syncing it');
      await this.sync(vmi, record);
      o = await this.observe(record);
    }
    if (o.reachable && !awaitingVmi(o)) record.synced = true;
    return o;
  }

  /**
   * The launcher's observation and what it means for the VMI (core's launcherPhase, the same
   * function in both modes). Remembers when each launcher last answered (a busy launcher is
   * not a dead one until it has been silent for UNRESPONSIVE_AFTER_MS), its last phase with the
   * guest in view and since when libvirt is unreachable (the last known phase stands meanwhile).
   */
  async observePhase(record: InstanceRecord, now = Date.now()): Promise<{ observation: Observation; phase: LauncherPhase }> {
    const observation = await this.observe(record);
    return { observation, phase: this.memory.phase(record.uid, record.createdAt, observation, now, record.logFile) };
  }

  /**
   * Follows a launcher's transitions (after its initial snapshot) and calls `onChange(false)`
   * for each, and `onChange(true)` when the stream ends (the launcher went away) unless
   * `stop()` was called first.
   */
  watch(record: InstanceRecord, onChange: (ended: boolean) => void): { stop(): void } {
    const abort = new AbortController();
    void (async () => {
      try {
        let first = true;
        for await (const _t of launcherEvents(record.socketPath, abort.signal)) {
          if (first) {
            first = false; // the snapshot
            continue;
          }
          onChange(false);
        }
      } catch {
        // The launcher went away: the caller's next pass notices.
      } finally {
        if (!abort.signal.aborted) onChange(true);
      }
    })();
    return { stop: () => abort.abort() };
  }

  async observe(record: InstanceRecord): Promise<Observation> {
    try {
      const res = await callLauncher<LauncherInfo>(record.socketPath, 'GET', '/v1/info', undefined, 5000);
      if (res.status === 200) {
        const supervised = this.runtime.supervised ? await this.runtime.supervised(record) : true;
        return { reachable: true, info: res.body, supervised };
      }
      return { reachable: false, processAlive: await this.alive(record), reason: `launcher answered ${res.status}` };
    } catch (err) {
      return { reachable: false, processAlive: await this.alive(record), reason: (err as Error).message };
    }
  }

  alive(record: InstanceRecord): Promise<boolean> {
    return this.runtime.alive(record);
  }

  async command(record: InstanceRecord, action: 'pause' | 'unpause'): Promise<void> {
    const res = await callLauncher<{ error?: string }>(record.socketPath, 'POST', `/v1/${action}`, undefined, 30_000);
    if (res.status !== 200) throw new LauncherError(res.body?.error ?? `launcher answered ${res.status}`, 'CommandFailed', res.status);
  }

  /**
   * Stops the instance: ACPI shutdown through the launcher (destroy after the grace period),
   * then the launcher process; a domain left behind by a dead launcher is removed directly.
   */
  async stop(record: InstanceRecord, graceSeconds: number): Promise<void> {
    const { log } = this.opts;
    const reachable = await callLauncher(record.socketPath, 'GET', '/healthz', undefined, 2000).then((r) => r.status === 200, () => false);
    if (reachable) {
      await callLauncher(record.socketPath, 'POST', '/v1/shutdown', { gracePeriodSeconds: graceSeconds }, (graceSeconds + 30) * 1000).catch((err: unknown) =>
        log.warn({ vmi: record.domainName, err: (err as Error).message }, 'shutdown through the launcher failed; stopping its process'),
      );
    }
    await this.runtime.stop(record, (record.podGraceSeconds + 5) * 1000, log);
    // The launcher undefines its domain on the way out; if it died first, do it here.
    // A failure here must not be forgotten: the caller keeps the instance and retries the stop
    // (a QEMU left running unmanaged would later block the VM's name for good).
    let removed: 'removed' | 'absent';
    try {
      removed = await this.opts.janitor.removeDomain(record.domainName);
    } catch (err) {
      log.warn({ domain: record.domainName, err: (err as Error).message }, 'removing the domain failed; the stop will be retried');
      throw new LauncherError(`stopping ${record.domainName}: its launcher is gone and removing the domain failed (${(err as Error).message}); retrying`, 'CleanupFailed');
    }
    if (removed === 'removed') log.warn({ domain: record.domainName }, 'removed a domain its launcher left behind');
    await rm(record.socketPath, { force: true });
    // So do the sockets QEMU bound for it (console, VNC): QEMU leaves the VNC one behind when it
    // exits, and nothing would ever use or remove it.
    const socketsDir = dirname(serialSocketPath(record.shareDir));
    for (const e of await readdir(socketsDir, { withFileTypes: true }).catch(() => [])) if (e.isSocket()) await rm(join(socketsDir, e.name), { force: true });
    // This incarnation's ephemeral files (overlays, ISOs) go with it; persistent disks stay with the VM.
    await rm(join(record.podDir, 'ephemeral-disks', 'volumes', 'ephemeral', record.uid), { recursive: true, force: true });
    // Stopped for good: what observePhase remembered about it goes too.
    this.memory.forget(record.uid);
  }

  /**
   * Removes the launcher Pod dirs under podsDir that are not in `keep` (dir names), with
   * whatever still runs from them: their owner is gone (a Pod deleted while the agent was
   * down, or an agent killed between stopping a launcher and removing its dir), so nothing
   * else would ever clean them up, as kubelet's orphaned-pod-dir housekeeping does. A
   * launcher found there is stopped (SIGTERM: the monitor gives the guest its grace period
   * and the launcher undefines its domain) and its domain removed if it is left. Returns the
   * dirs removed. The caller must build `keep` after this lists the dirs (every dir made
   * meanwhile then is in it).
   */
  async sweepOrphans(keep: () => ReadonlySet<string>): Promise<string[]> {
    const entries = await readdir(this.opts.podsDir).catch(() => [] as string[]);
    const orphans = orphanPodDirs(entries, keep());
    for (const name of orphans) {
      const dir = join(this.opts.podsDir, name);
      const procs = await processesUnder(dir);
      for (const p of procs) {
        this.opts.log.warn({ dir, pid: p.pid }, 'stopping a launcher whose Pod is gone');
        await stopProcess(p.pid, 60_000);
      }
      for (const domain of new Set(procs.map((p) => domainNameFromArgv(p.argv)).filter((d): d is string => d !== undefined))) {
        if ((await this.opts.janitor.removeDomain(domain)) === 'removed') this.opts.log.warn({ domain }, 'removed a domain an orphaned launcher left behind');
      }
      await rm(dir, { recursive: true, force: true });
      this.opts.log.info({ dir, launchers: procs.length }, 'removed a launcher Pod dir that belongs to no Pod');
    }
    return orphans;
  }

  async findRunning(namespace: string, name: string): Promise<{ uid: string; pid: number } | undefined> {
    const dir = this.podDir(namespace, name);
    // No pod dir, no launcher (a VM seen for the first time): skip the scan of /proc.
    if (!(await stat(dir).then(() => true, () => false))) return undefined;
    for (const p of await processesUnder(dir)) {
      const i = p.argv.indexOf('--uid');
      if (p.argv.includes(LAUNCHER_MARKER) && !p.argv.includes(CLEANUP_ONLY_FLAG) && i >= 0 && p.argv[i + 1]) return { uid: p.argv[i + 1]!, pid: p.pid };
    }
    return undefined;
  }

  /** Removes everything of a VM that left git: its directory (incl. its emptyDisks). */
  async removeVmFiles(namespace: string, name: string): Promise<void> {
    await rm(this.podDir(namespace, name), { recursive: true, force: true });
  }
}

/** Entries of the pods dir that are launcher Pod dirs (podKey-shaped) and not kept. */
export function orphanPodDirs(entries: readonly string[], keep: ReadonlySet<string>): string[] {
  return entries.filter((e) => /^[0-9a-f]{12}$/.test(e) && !keep.has(e));
}

/** The libvirt domain a launcher command line runs (`<namespace>_<name>`), if it says. */
export function domainNameFromArgv(argv: readonly string[]): string | undefined {
  const flag = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const name = flag('--name');
  return name ? `${flag('--namespace') ?? 'default'}_${name}` : undefined;
}
