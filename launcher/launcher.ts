/**
 * The launcher: one per VMI. Converges a libvirt domain to the VMI it is given
 * (PUT /v1/vmi), runs lifecycle commands, watches the domain and reports transitions.
 *
 * Level-triggered: lifecycle events only make it look sooner; a periodic refresh re-reads
 * the domain state, so a missed event (or a libvirtd restart) costs latency, not
 * correctness. Commands run one at a time (a promise queue), so a sync never races a kill.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import type { Emulation, PortForward } from './convert/context.js';
import { declaredPodPorts, portForwardsInDomainXml } from './convert/interfaces.js';
import { allocateForwards, podNetnsForwards } from './host-ports.js';
import type { DomainEvent, DomainState, LibvirtDriver } from './libvirt/driver.js';
import { LibvirtUnavailableError } from './libvirt/errors.js';
import type { Converter, MaterializedSet, VolumeBackend } from './backend.js';
import { type LauncherConfig, launcherPaths } from './flags.js';
import { annotateDomainXml, readSpecHash, specHash } from './annotate.js';
import { decideSync, vmiStatusFor, type VmiStatusView } from './status.js';
import { type FieldError, asVmi, checkVmi } from './vmi-check.js';
import { domainState, destroyIfActive, gracefulStop, isActive, undefineIfDefined, waitForState, type StopOutcome } from './cleanup.js';
import { removeState, writeState } from './state-file.js';
import { vmiGraceSeconds } from '../api/grace.js';
import { validateVmi, warmPreparation } from './prepare.js';
import { ovmfFirmware } from './firmware-files.js';
import { type GuestAgentClient, GuestAgentWatcher } from './guest-agent.js';
import type { GuestInfo } from './guest-agent-status.js';
import { agentSshKeyRequests, publicKeysOf, type SshKeyRequest } from './access-credentials.js';
import { LauncherRequestError } from './request-error.js';

/** A request the launcher refuses (its own module: the server loads it before this one). */
export { LauncherRequestError };

export type SyncResult = 'created' | 'unchanged';

export interface SyncResponse {
  result: SyncResult;
  domain: string;
  state: DomainState | 'Absent';
  phase: string;
  warnings: string[];
}

export interface LauncherInfo {
  vmi: { name: string; namespace: string; uid: string };
  domain: string;
  state: DomainState | 'Absent';
  phase: VmiStatusView['phase'];
  reason?: string;
  message?: string;
  paused: boolean;
  restartRequired: boolean;
  /** Seconds since the domain was started (absent when it is not running). */
  uptimeSeconds?: number;
  launcherUptimeSeconds: number;
  emulation?: Emulation;
  libvirt: string;
  warnings: string[];
  /** The pod network's forwarded guest ports, reachable at 127.0.0.1:host while the domain runs (absent from launchers older than the field). */
  ports?: PortForward[];
  /**
   * What the domain and the guest agent say of the guest while it runs: NICs with the guest's
   * IPs, OS info, whether the agent answers (absent when the domain is not running, and from
   * launchers older than the field). launcher/guest-agent-status.ts maps it to VMI status.
   */
  guest?: GuestInfo;
}

export interface Transition {
  time: string;
  kind: 'state' | 'sync' | 'command' | 'libvirt' | 'agent';
  from?: DomainState | 'Absent';
  to?: DomainState | 'Absent';
  phase?: string;
  reason?: string;
  detail?: string;
}

export interface LauncherDeps {
  driver: LibvirtDriver;
  volumes: VolumeBackend;
  convert: Converter;
  log: Logger;
  /** Resolves `--emulation auto`; called once at start. */
  resolveEmulation: () => Promise<{ emulation: Emulation; reason: string }>;
  /** How often the domain state is re-read without an event (ms). */
  refreshIntervalMs?: number;
  /** The guest agent (through libvirt); absent: no agent polling, stops are ACPI only. */
  agent?: GuestAgentClient;
  /** How often the agent is polled while the domain runs (ms; guest-agent.ts POLL_MS by default). */
  agentPollMs?: number;
  /** Reads accessCredentials' Secrets for the agent's ssh keys (the volumes' secret source). */
  readSecret?: (namespace: string, name: string) => Promise<Record<string, Buffer> | undefined>;
}

interface Incarnation {
  hash: string;
  vmi: VirtualMachineInstance;
  materialized?: MaterializedSet;
  warnings: string[];
  startedAt?: number;
  /** Host ports forwarded to the guest (see launcher/host-ports.ts). */
  ports: PortForward[];
}

export class Launcher {
  private readonly paths: ReturnType<typeof launcherPaths>;
  private readonly emitter = new EventEmitter();
  private queue: Promise<unknown> = Promise.resolve();
  private current: Incarnation | undefined;
  private started = false;
  private finished = false;
  private restartRequired = false;
  private failure: { reason: string; message: string } | undefined;
  private lastEvent: { type: string; detail: string } | undefined;
  private state: DomainState | 'Absent' = 'Absent';
  private emulation: Emulation | undefined;
  private readonly bootTime = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void)[] = [];
  private watchStopped = false;
  private terminating = false;
  private validatedHash: string | undefined;
  private lastValidateMs = 0;
  private agentWatcher: GuestAgentWatcher | undefined;

  constructor(private readonly config: LauncherConfig, private readonly deps: LauncherDeps) {
    this.paths = launcherPaths(config);
    this.emitter.setMaxListeners(0);
  }

  get domainName(): string {
    return this.paths.domainName;
  }

  /** Connects to libvirt (retrying with backoff until `signal` aborts) and starts watching. */
  async start(signal?: AbortSignal): Promise<void> {
    const { driver, log } = this.deps;
    // Load the validator and the converter now, off the sync path (see prepare.ts): this
    // overlaps the libvirt connect and the first PUT arriving. A failure here is retried,
    // and reported, by the sync that needs them.
    warmPreparation().catch((err: unknown) => log.warn({ err }, 'cannot load the validator or the converter yet'));
    await driver.connect({
      retry: true,
      ...(signal ? { signal } : {}),
      onRetry: (err, delayMs) => log.warn({ uri: driver.uri, err: err.message, retryInMs: delayMs }, 'libvirt unavailable; retrying'),
    });
    log.info({ uri: driver.uri }, 'connected to libvirt');
    // libvirtd writes the serial log and binds the console socket here.
    await mkdir(this.paths.logDir, { recursive: true });
    await mkdir(this.paths.socketsDir, { recursive: true });
    // libvirt copies the OVMF variables template here for EFI guests.
    await mkdir(this.paths.nvramDir, { recursive: true });
    const chosen = await this.deps.resolveEmulation();
    this.emulation = chosen.emulation;
    log.info(chosen, 'emulation selected');
    // Exited before start got here (main.ts's exit without a connection): nothing to watch.
    if (this.watchStopped) return;
    this.unsubscribe.push(
      driver.onEvent((e) => this.onDomainEvent(e)),
      driver.onStatus((status, err) => {
        this.emit({ kind: 'libvirt', detail: status + (err ? `: ${err.message}` : '') });
        if (status === 'connected') void this.refresh();
      }),
    );
    await this.refresh();
    if (this.watchStopped) return;
    this.timer = setInterval(() => void this.refresh(), this.deps.refreshIntervalMs ?? 5000);
    this.timer.unref();
  }

  /** Subscribes to transitions (state changes, sync results, commands). */
  onTransition(listener: (t: Transition) => void): () => void {
    this.emitter.on('transition', listener);
    return () => this.emitter.off('transition', listener);
  }

  private emit(t: Omit<Transition, 'time'>): void {
    const full: Transition = { time: new Date().toISOString(), ...t };
    this.deps.log.info({ transition: full }, `${t.kind}${t.to ? ` ${t.from} → ${t.to}` : ''}${t.detail ? `: ${t.detail}` : ''}`);
    this.emitter.emit('transition', full);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private onDomainEvent(e: DomainEvent): void {
    if (e.domain !== this.domainName) return;
    this.lastEvent = { type: e.type, detail: e.detail };
    void this.refresh();
  }

  /** Re-reads the domain state; cleans up once a started domain has stopped. */
  private async refresh(): Promise<void> {
    let s: DomainState | 'Absent';
    try {
      s = await domainState(this.deps.driver, this.domainName);
    } catch (err) {
      if (!(err instanceof LibvirtUnavailableError)) this.deps.log.warn({ err }, 'reading domain state failed');
      return;
    }
    this.observe(s);
    if (this.started && !this.finished && !this.terminating && !isActive(s)) {
      await this.exclusive(() => this.afterStop()).catch((err: unknown) => this.deps.log.error({ err }, 'cleanup after stop failed'));
    }
  }

  private observe(s: DomainState | 'Absent'): void {
    if (s === this.state) return;
    const from = this.state;
    this.state = s;
    const status = this.status();
    this.emit({ kind: 'state', from, to: s, phase: status.phase, ...(status.reason ? { reason: status.reason } : {}), ...(this.lastEvent ? { detail: `${this.lastEvent.type} ${this.lastEvent.detail}` } : {}) });
  }

  private status(): VmiStatusView {
    return vmiStatusFor({
      state: this.state,
      started: this.started,
      ...(this.failure ? { failure: this.failure } : {}),
      ...(this.lastEvent ? { lastEvent: this.lastEvent } : {}),
    });
  }

  /** The domain stopped (or was stopped): release volumes and the definition; the VMI is finished. */
  private async afterStop(): Promise<void> {
    const { driver, volumes, log } = this.deps;
    const s = await domainState(driver, this.domainName);
    if (isActive(s)) return;
    if (this.started) this.finished = true;
    this.stopAgentWatcher();
    await undefineIfDefined(driver, this.domainName);
    const m = this.current?.materialized;
    if (m) {
      await volumes.release(m.handle, this.config);
      this.current!.materialized = undefined;
      log.info({ domain: this.domainName }, 'released volumes');
    }
    if (this.current) this.current.startedAt = undefined;
    await removeState(this.paths.stateFile);
    this.observe(await domainState(driver, this.domainName));
  }

  // ---- commands -------------------------------------------------------------------

  sync(body: unknown): Promise<SyncResponse> {
    const errs = checkVmi(body, { name: this.config.name, namespace: this.config.namespace, uid: this.config.uid });
    if (errs.length) {
      return Promise.reject(new LauncherRequestError(400, `invalid VMI: ${errs.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; ')}`, { fieldErrors: errs }));
    }
    return this.exclusive(async () => {
      // The one manifest validator (also used by synth and the git source): unknown or
      // misspelled fields and webhook rules, by path. A spec already validated is not
      // validated again; a new one is validated while its volumes are materialised, and
      // nothing is defined in libvirt before the verdict.
      const t0 = performance.now();
      const hash = this.hashOf(asVmi(body));
      const validation: Promise<void> =
        hash === this.validatedHash
          ? Promise.resolve()
          : validateVmi(body).then((issues) => {
              this.lastValidateMs = Math.round(performance.now() - t0);
              if (issues.length) {
                const fieldErrors = issues.map((i) => ({ path: pointerToPath(i.path), message: i.message + (i.fix ? ` (fix: ${i.fix})` : '') }));
                throw new LauncherRequestError(400, `invalid VMI: ${fieldErrors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { fieldErrors });
              }
              this.validatedHash = hash;
            });
      validation.catch(() => undefined); // awaited below; never unhandled
      const vmi = structuredClone(asVmi(body));
      vmi.metadata.namespace ??= this.config.namespace;
      vmi.metadata.uid ??= this.config.uid;
      return this.syncLocked(vmi, validation);
    });
  }

  private async syncLocked(vmi: VirtualMachineInstance, validation: Promise<void>): Promise<SyncResponse> {
    const { driver, log } = this.deps;
    const hash = this.hashOf(vmi);
    const state = await domainState(driver, this.domainName);
    const definedXml = state === 'Absent' ? '' : await driver.getXML(this.domainName, { inactive: true });
    const definedHash = state === 'Absent' ? null : readSpecHash(definedXml);
    const decision = decideSync({ desiredHash: hash, domain: { state, specHash: definedHash }, finished: this.finished });
    this.observe(state);
    if (decision.action !== 'create') await validation;

    if (decision.action === 'finished') {
      throw new LauncherRequestError(409, `VMI ${this.config.namespace}/${this.config.name} has finished (phase ${this.status().phase}); a new VMI needs a new launcher`, { result: 'finished' });
    }
    if (decision.action === 'restart-required') {
      if (!this.restartRequired) this.emit({ kind: 'sync', detail: 'spec changed while running: restart required', reason: 'RestartRequired' });
      this.restartRequired = true;
      throw new LauncherRequestError(409, 'the VMI spec differs from the running domain; restart the VMI to apply it (the running domain was left unchanged)', { result: 'restart-required', reason: 'RestartRequired' });
    }
    if (decision.action === 'unchanged') {
      if (!this.started) {
        // A domain this launcher (or a previous one) built from the same spec: adopt it.
        this.started = true;
        this.current = { hash, vmi, warnings: [], startedAt: Date.now(), ports: portForwardsInDomainXml(definedXml) };
        this.startAgentWatcher(vmi);
      }
      this.restartRequired = false;
      return this.syncResponse('unchanged');
    }

    // create: a stale inactive definition of the same name is replaced.
    if (state !== 'Absent') await undefineIfDefined(driver, this.domainName);
    this.failure = undefined;
    const t = { begin: performance.now(), volumesDone: 0, materialized: 0, converted: 0, defined: 0, started: 0, checked: 0 };
    const materializing = this.deps.volumes.materialize(vmi, this.config).finally(() => (t.volumesDone = performance.now()));
    const [verdict, volumes] = await Promise.allSettled([validation, materializing]);
    if (verdict.status === 'rejected') {
      if (volumes.status === 'fulfilled') await this.deps.volumes.release(volumes.value.handle, this.config).catch(() => undefined);
      throw verdict.reason;
    }
    const materialized = await this.recordMaterialized(volumes, vmiGraceSeconds(vmi.spec));
    t.materialized = performance.now();
    let xml: string;
    let warnings: string[];
    let ports: PortForward[];
    try {
      // In the Pod's own libvirt daemon QEMU shares the Pod's network namespace: the declared ports at the Pod IP.
      ports = this.config.libvirtDaemon === 'pod' ? podNetnsForwards(declaredPodPorts(vmi.spec)) : await allocateForwards(declaredPodPorts(vmi.spec));
      ({ xml, warnings } = await this.deps.convert(vmi, { ...this.conversionContext(materialized), podPortForwards: ports }));
      t.converted = performance.now();
    } catch (err) {
      await this.deps.volumes.release(materialized.handle, this.config).catch((e: unknown) => log.error({ err: e }, 'releasing volumes failed'));
      await removeState(this.paths.stateFile);
      throw toRequestError(err);
    }
    this.current = { hash, vmi, materialized, warnings, ports };
    for (const w of warnings) log.warn({ warning: w }, 'conversion warning');
    try {
      await driver.defineXML(annotateDomainXml(xml, hash));
      t.defined = performance.now();
      await driver.start(this.domainName);
      t.started = performance.now();
      // virDomainCreate returns once QEMU runs the vCPUs; the wait covers a slow NoState phase.
      const s = await waitForState(driver, this.domainName, (x) => x !== 'NoState', this.config.qemuTimeoutMs);
      if (s !== 'Running' && s !== 'Blocked') throw new Error(`domain did not reach Running within --qemu-timeout ${this.config.qemuTimeoutMs / 1000}s (state ${s})`);
    } catch (err) {
      this.failure = { reason: 'SyncFailed', message: err instanceof Error ? err.message : String(err) };
      log.error({ err }, 'defining or starting the domain failed; cleaning up');
      await destroyIfActive(driver, this.domainName).catch(() => undefined);
      await undefineIfDefined(driver, this.domainName).catch(() => undefined);
      await this.deps.volumes.release(materialized.handle, this.config).catch(() => undefined);
      await removeState(this.paths.stateFile);
      this.current.materialized = undefined;
      this.observe(await domainState(driver, this.domainName).catch(() => this.state));
      if (err instanceof LibvirtUnavailableError) throw new LauncherRequestError(503, err.message, { reason: 'LibvirtUnavailable' });
      throw new LauncherRequestError(500, this.failure.message, { reason: 'SyncFailed' });
    }
    this.started = true;
    this.restartRequired = false;
    this.current.startedAt = Date.now();
    this.observe('Running');
    this.startAgentWatcher(vmi);
    t.checked = performance.now();
    // validate and materialize run concurrently; `prepared` is when both were done.
    log.info({ ms: { validate: this.lastValidateMs, materialize: Math.round(t.volumesDone - t.begin), prepared: Math.round(t.materialized - t.begin), convert: Math.round(t.converted - t.materialized), define: Math.round(t.defined - t.converted), start: Math.round(t.started - t.defined), confirmRunning: Math.round(t.checked - t.started) } }, 'sync timings');
    this.emit({ kind: 'sync', detail: 'domain defined and started', phase: 'Running' });
    return this.syncResponse('created');
  }

  private async recordMaterialized(result: PromiseSettledResult<MaterializedSet>, guestGraceSeconds: number): Promise<MaterializedSet> {
    try {
      if (result.status === 'rejected') throw result.reason;
      const m = result.value;
      await writeState(this.paths.stateFile, { domainName: this.domainName, uid: this.config.uid, volumes: m.handle, launcherPid: process.pid, guestGraceSeconds });
      return m;
    } catch (err) {
      const reason = (err as { reason?: string }).reason;
      if (reason === 'ErrImagePull' || reason === 'ErrImageNeverPull') {
        this.failure = { reason, message: (err as Error).message };
        this.emit({ kind: 'sync', reason, phase: 'Failed', detail: (err as Error).message });
        throw new LauncherRequestError(422, (err as Error).message, { reason, result: 'failed' });
      }
      throw toRequestError(err);
    }
  }

  private conversionContext(m: MaterializedSet) {
    return {
      emulation: this.emulation ?? 'tcg',
      volumes: m.volumes,
      ...(m.kernelBoot ? { kernelBoot: m.kernelBoot } : {}),
      socketsDir: this.paths.socketsDir,
      logDir: this.paths.logDir,
      ovmf: ovmfFirmware(this.paths.nvramDir),
    };
  }

  private hashOf(vmi: VirtualMachineInstance): string {
    return specHash({ spec: vmi.spec, name: this.config.name, namespace: this.config.namespace, uid: this.config.uid });
  }

  private syncResponse(result: SyncResult): SyncResponse {
    return { result, domain: this.domainName, state: this.state, phase: this.status().phase, warnings: this.current?.warnings ?? [] };
  }

  /** ACPI shutdown; destroy after `graceSeconds` (default --grace-period-seconds). */
  shutdown(graceSeconds = this.config.gracePeriodSeconds): Promise<{ result: StopOutcome }> {
    return this.exclusive(async () => {
      this.emit({ kind: 'command', detail: `shutdown (grace ${graceSeconds}s)` });
      const result = await gracefulStop(this.deps.driver, this.domainName, graceSeconds, this.deps.log, this.agentShutdown());
      await this.afterStop();
      return { result };
    });
  }

  kill(): Promise<{ result: StopOutcome }> {
    return this.exclusive(async () => {
      this.emit({ kind: 'command', detail: 'kill' });
      const active = isActive(await domainState(this.deps.driver, this.domainName));
      if (active) await destroyIfActive(this.deps.driver, this.domainName);
      await this.afterStop();
      return { result: active ? 'destroyed' : 'not-running' };
    });
  }

  pause(): Promise<{ state: DomainState | 'Absent' }> {
    return this.exclusive(async () => {
      const s = await this.requireActive('pause');
      if (s !== 'Paused') await this.deps.driver.suspend(this.domainName);
      this.observe(await domainState(this.deps.driver, this.domainName));
      return { state: this.state };
    });
  }

  unpause(): Promise<{ state: DomainState | 'Absent' }> {
    return this.exclusive(async () => {
      const s = await this.requireActive('unpause');
      if (s === 'Paused') await this.deps.driver.resume(this.domainName);
      this.observe(await domainState(this.deps.driver, this.domainName));
      return { state: this.state };
    });
  }

  private async requireActive(what: string): Promise<DomainState | 'Absent'> {
    const s = await domainState(this.deps.driver, this.domainName);
    if (!isActive(s)) throw new LauncherRequestError(409, `cannot ${what}: domain ${this.domainName} is not running (state ${s})`);
    return s;
  }

  async info(): Promise<LauncherInfo> {
    // libvirt unreachable: report the last known state with the connection status at once (a
    // call would wait for the reconnect and the node's observation time out: the VM would look
    // like a launcher that is still starting).
    if (this.deps.driver.status() === 'connected') {
      try {
        this.observe(await domainState(this.deps.driver, this.domainName));
      } catch {
        // lost just now: the same
      }
    }
    const st = this.status();
    const startedAt = this.current?.startedAt;
    return {
      vmi: { name: this.config.name, namespace: this.config.namespace, uid: this.config.uid },
      domain: this.domainName,
      state: this.state,
      phase: st.phase,
      ...(st.reason ? { reason: st.reason } : {}),
      ...(st.message ? { message: st.message } : {}),
      paused: st.paused,
      restartRequired: this.restartRequired,
      ...(startedAt && isActive(this.state) ? { uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) } : {}),
      launcherUptimeSeconds: Math.round((Date.now() - this.bootTime) / 1000),
      ...(this.emulation ? { emulation: this.emulation } : {}),
      libvirt: this.deps.driver.status(),
      warnings: this.current?.warnings ?? [],
      ports: isActive(this.state) ? (this.current?.ports ?? []) : [],
      ...(isActive(this.state) && this.agentWatcher ? { guest: this.agentWatcher.info() } : {}),
    };
  }

  // ---- the guest agent ------------------------------------------------------------------

  private startAgentWatcher(vmi: VirtualMachineInstance): void {
    const { agent, log } = this.deps;
    if (!agent || this.agentWatcher) return;
    const keys = agentSshKeyRequests(vmi.spec);
    const watcher = new GuestAgentWatcher({
      client: agent,
      domain: this.domainName,
      domainXml: () => this.deps.driver.getXML(this.domainName),
      log: log.child({ component: 'guest-agent' }),
      ...(this.deps.agentPollMs !== undefined ? { pollMs: this.deps.agentPollMs } : {}),
      onChange: (info, what) => {
        if (what === 'updated') this.emit({ kind: 'agent', detail: 'guest info updated' });
        else this.emit({ kind: 'agent', detail: what === 'connected' ? `guest agent connected${info.guestOSInfo?.prettyName ? ` (${info.guestOSInfo.prettyName})` : ''}` : 'guest agent disconnected', reason: what === 'connected' ? 'AgentConnected' : 'AgentDisconnected' });
      },
      ...(keys.length ? { onConnect: () => this.addAgentSshKeys(keys) } : {}),
    });
    this.agentWatcher = watcher;
    watcher.start();
  }

  private stopAgentWatcher(): void {
    this.agentWatcher?.stop();
    this.agentWatcher = undefined;
  }

  /** accessCredentials with propagationMethod qemuGuestAgent: each user's keys, through the agent. */
  private async addAgentSshKeys(requests: SshKeyRequest[]): Promise<void> {
    const { agent, readSecret, log } = this.deps;
    if (!agent) return;
    for (const r of requests) {
      const data = readSecret ? await readSecret(this.config.namespace, r.secretName) : undefined;
      if (!data) throw new Error(`accessCredentials: secret "${this.config.namespace}/${r.secretName}" (${r.field}) not found`);
      const keys = publicKeysOf(data);
      for (const user of r.users) {
        await agent.command(this.domainName, 'guest-ssh-add-authorized-keys', { username: user, keys, reset: false }, 10);
        log.info({ user, keys: keys.length, secret: r.secretName }, 'ssh keys added through the guest agent (accessCredentials)');
      }
    }
    this.emit({ kind: 'agent', detail: `accessCredentials: ssh keys added through the guest agent for ${requests.flatMap((r) => r.users).join(', ')}` });
  }

  /** The agent's shutdown for gracefulStop, when the agent answers now; logged so a stop says how it went. */
  private agentShutdown(): (() => Promise<boolean>) | undefined {
    const { agent, log } = this.deps;
    const watcher = this.agentWatcher;
    if (!agent || !watcher?.connected) return undefined;
    return async () => {
      try {
        await agent.shutdown(this.domainName);
        log.info({ domain: this.domainName }, 'shutdown requested through the guest agent');
        this.emit({ kind: 'command', detail: 'shutdown requested through the guest agent' });
        return true;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'guest agent shutdown failed; using ACPI');
        return false;
      }
    };
  }

  /** SIGTERM: stop the domain within the grace period, release everything, stop watching. */
  async terminate(): Promise<void> {
    this.terminating = true;
    clearInterval(this.timer);
    const shutdownViaAgent = this.agentShutdown();
    await this.exclusive(async () => {
      const { driver, volumes, log } = this.deps;
      const outcome = await gracefulStop(driver, this.domainName, this.config.gracePeriodSeconds, log, shutdownViaAgent).catch((err: unknown) => {
        log.error({ err }, 'stopping the domain failed');
        return 'failed';
      });
      log.info({ outcome }, 'domain stopped for termination');
      this.stopAgentWatcher();
      await undefineIfDefined(driver, this.domainName);
      if (this.current?.materialized) await volumes.release(this.current.materialized.handle, this.config);
      await removeState(this.paths.stateFile);
    });
    this.stopWatching();
  }

  /**
   * Stops the periodic state refresh and the libvirt subscriptions. Called by terminate, and
   * by main.ts when it exits without terminating (libvirt not connected): the driver is closed
   * next, and a refresh after that would only log "driver is closed".
   */
  stopWatching(): void {
    this.watchStopped = true;
    clearInterval(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
  }
}

/** `/spec/volumes/0/name` → `spec.volumes[0].name` (the form ConversionError uses). */
export function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function toRequestError(err: unknown): Error {
  if (err instanceof LauncherRequestError) return err;
  const e = err as { name?: string; path?: string; message?: string };
  if ((e.name === 'ConversionError' || e.name === 'InvalidVolumeError') && typeof e.path === 'string') {
    return new LauncherRequestError(400, e.message ?? 'invalid VMI', { fieldErrors: [{ path: e.path, message: e.message ?? '' }], reason: 'Invalid' });
  }
  if (err instanceof LibvirtUnavailableError) return new LauncherRequestError(503, err.message, { reason: 'LibvirtUnavailable' });
  const reason = (err as { reason?: string }).reason;
  if (typeof reason === 'string') return new LauncherRequestError(422, e.message ?? reason, { reason });
  return err instanceof Error ? err : new Error(String(err));
}
