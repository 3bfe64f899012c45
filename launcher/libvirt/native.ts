/**
 * LibvirtDriver on the @unraid/libvirt N-API binding (promise-based, runs on libuv's
 * worker pool so it never blocks the event loop).
 *
 * Connection handling: the binding does not notice a dead daemon until a call fails, so
 * every call that fails with a connection-loss message marks the connection lost and
 * starts a background re-open with exponential backoff; read-only calls are retried once
 * the connection is back. Domain handles are never cached: each call looks the domain up
 * by name, so handles from a dead connection are never reused.
 */
import { EventEmitter, on } from 'node:events';
import type { Hypervisor, Domain } from '@unraid/libvirt';
import {
  type ConnectionStatus, type DomainEvent, type DomainInfo, type DomainState, type LibvirtDriver, DOMAIN_STATES,
} from './driver.js';
import {
  type LibvirtOperation, DomainNotFoundError, LibvirtError, LibvirtUnavailableError, classifyError, messageOf,
} from './errors.js';
import { backoffDelay, sleep } from './backoff.js';
import { type EventSource, PollingEventSource, VirshEventSource } from './events.js';

/**
 * The binding's Hypervisor class, from its own module: the package's index also loads its
 * domain-XML helpers and xml2js, which nothing here uses (~14 ms of CPU and ~1.4 MiB per
 * launcher). A file URL, because the package exports only its index. In the launcher
 * bundle, which runs from V8's code cache, `import()` has no loader: the bundle's runner
 * (scripts/code-cache.mjs, IMPORT_PACKAGE_FILE) imports the file instead.
 */
async function loadBinding(): Promise<{ Hypervisor: typeof Hypervisor }> {
  const fromRunner = (globalThis as Record<symbol, unknown>)[Symbol.for('virtops.importPackageFile')] as ((pkg: string, path: string) => Promise<unknown>) | undefined;
  const binding = fromRunner ? fromRunner('@unraid/libvirt', './hypervisor.js') : import(new URL('./hypervisor.js', import.meta.resolve('@unraid/libvirt')).href);
  return (await binding) as { Hypervisor: typeof Hypervisor };
}

export interface NativeDriverOptions {
  uri: string;
  /** 'virsh' (default; falls back to polling when virsh is missing) or 'poll'. */
  eventSource?: 'virsh' | 'poll';
  pollIntervalMs?: number;
  /**
   * With 'poll': watch only these domains (one state read each per interval) instead of
   * listing every domain on the host, so N launchers cost N reads per interval, not N².
   */
  watchDomains?: readonly string[];
  /** How long a call waits for a lost connection to come back before failing. */
  reconnectWaitMs?: number;
  virshPath?: string;
}

// virDomainGetXMLDesc flag.
const XML_INACTIVE = 2;

export class NativeLibvirtDriver implements LibvirtDriver {
  readonly uri: string;
  private hv: Hypervisor | undefined;
  private state: ConnectionStatus = 'disconnected';
  private readonly emitter = new EventEmitter();
  private eventSource: EventSource | undefined;
  private eventListeners = 0;
  private reconnecting: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
  private readonly closing = new AbortController();

  constructor(private readonly opts: NativeDriverOptions) {
    this.uri = opts.uri;
    this.emitter.setMaxListeners(0);
  }

  status(): ConnectionStatus {
    return this.state;
  }

  private setStatus(s: ConnectionStatus, err?: Error): void {
    if (this.state === s) return;
    this.state = s;
    this.emitter.emit('status', s, err);
  }

  connect(opts: { retry?: boolean; signal?: AbortSignal; onRetry?: (err: Error, delayMs: number) => void } = {}): Promise<void> {
    // Calls made while a first connect is under way wait for it (see waitConnected).
    const p = this.connectLoop(opts);
    this.connecting = p.catch(() => undefined).finally(() => {
      if (this.connecting === tracked) this.connecting = undefined;
    });
    const tracked = this.connecting;
    return p;
  }

  private async connectLoop(opts: { retry?: boolean; signal?: AbortSignal; onRetry?: (err: Error, delayMs: number) => void }): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.openOnce();
        return;
      } catch (err) {
        if (!opts.retry || this.closing.signal.aborted) throw err;
        const delay = backoffDelay(attempt);
        opts.onRetry?.(err as Error, delay);
        await sleep(delay, anySignal(opts.signal, this.closing.signal));
      }
    }
  }

  private async openOnce(): Promise<void> {
    this.setStatus('connecting');
    const { Hypervisor } = await loadBinding();
    const hv = new Hypervisor({ uri: this.uri });
    try {
      await hv.connectOpen();
      // connectOpen succeeds lazily for some URIs; one cheap call proves the link.
      await hv.connectListDomains();
    } catch (err) {
      await hv.connectClose().catch(() => undefined);
      const e = new LibvirtUnavailableError('connect', undefined, messageOf(err), this.uri);
      this.setStatus('disconnected', e);
      throw e;
    }
    const old = this.hv;
    this.hv = hv;
    if (old) void old.connectClose().catch(() => undefined);
    this.setStatus('connected');
  }

  /** Starts (once) a background re-open; resolves when connected again or the driver closes. */
  private reconnect(cause: Error): Promise<void> {
    if (this.closing.signal.aborted) return Promise.resolve();
    if (!this.reconnecting) {
      this.setStatus('disconnected', cause);
      this.reconnecting = this.connectLoop({ retry: true, signal: this.closing.signal })
        .catch(() => undefined)
        .finally(() => {
          this.reconnecting = undefined;
        });
    }
    return this.reconnecting;
  }

  /** Runs `fn` against the current connection, translating errors and handling loss. */
  private async call<T>(
    operation: LibvirtOperation,
    domain: string | undefined,
    fn: (hv: Hypervisor) => Promise<T>,
    opts: { retryAfterReconnect?: boolean } = {},
  ): Promise<T> {
    if (this.state === 'closed') throw new LibvirtError(operation, domain, 'driver is closed', this.uri);
    for (let attempt = 0; ; attempt++) {
      if (!this.hv || this.state !== 'connected') await this.waitConnected(operation, domain);
      try {
        return await fn(this.hv as Hypervisor);
      } catch (err) {
        const e = classifyError(err, operation, domain, this.uri);
        if (!(e instanceof LibvirtUnavailableError)) throw e;
        void this.reconnect(e);
        if (!opts.retryAfterReconnect || attempt > 0) throw e;
      }
    }
  }

  private async waitConnected(operation: LibvirtOperation, domain: string | undefined): Promise<void> {
    if (this.state === 'connected' && this.hv) return;
    const wait = this.opts.reconnectWaitMs ?? 5_000;
    const pending = this.reconnecting ?? this.connecting ?? (this.hv ? this.reconnect(new Error('not connected')) : undefined);
    if (pending) {
      await Promise.race([pending, sleep(wait, this.closing.signal).catch(() => undefined)]);
    }
    if (this.state !== 'connected' || !this.hv) {
      throw new LibvirtUnavailableError(operation, domain, this.hv ? 'connection lost, reconnecting' : 'not connected', this.uri);
    }
  }

  private lookup(hv: Hypervisor, name: string): Promise<Domain> {
    return hv.domainLookupByName(name);
  }

  async defineXML(xml: string): Promise<string> {
    const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1];
    return this.call('define', name, async (hv) => hv.domainGetName(await hv.domainDefineXML(xml)));
  }

  start(name: string): Promise<void> {
    return this.call('start', name, async (hv) => hv.domainCreate(await this.lookup(hv, name)));
  }

  shutdown(name: string): Promise<void> {
    return this.call('shutdown', name, async (hv) => hv.domainShutdown(await this.lookup(hv, name)));
  }

  destroy(name: string): Promise<void> {
    return this.call('destroy', name, async (hv) => hv.domainDestroy(await this.lookup(hv, name)));
  }

  suspend(name: string): Promise<void> {
    return this.call('suspend', name, async (hv) => hv.domainSuspend(await this.lookup(hv, name)));
  }

  resume(name: string): Promise<void> {
    return this.call('resume', name, async (hv) => hv.domainResume(await this.lookup(hv, name)));
  }

  async undefine(name: string): Promise<void> {
    try {
      await this.call('undefine', name, async (hv) => hv.domainUndefine(await this.lookup(hv, name)));
    } catch (err) {
      // The binding has no virDomainUndefineFlags; libvirt refuses a plain undefine of a
      // domain with UEFI nvram, so fall back to virsh, which can pass --nvram.
      if (err instanceof LibvirtError && /nvram/i.test(err.libvirtMessage)) {
        const { execa } = await import('execa');
        const r = await execa(this.opts.virshPath ?? 'virsh', ['-c', this.uri, 'undefine', '--nvram', name], { reject: false });
        if (r.exitCode !== 0) throw classifyError(new Error(String(r.stderr).trim()), 'undefine', name, this.uri);
        return;
      }
      throw err;
    }
  }

  async getInfo(name: string): Promise<DomainInfo> {
    return this.call(
      'info',
      name,
      async (hv) => {
        const info = await hv.domainGetInfo(await this.lookup(hv, name));
        return {
          name,
          state: stateName(info.state),
          maxMemory: info.maxMem * 1024,
          memory: info.memory * 1024,
          vcpus: info.nrVirtCpu,
          cpuTimeNs: info.cpuTime,
        };
      },
      { retryAfterReconnect: true },
    );
  }

  async getState(name: string): Promise<DomainState> {
    return (await this.getInfo(name)).state;
  }

  getXML(name: string, opts: { inactive?: boolean } = {}): Promise<string> {
    return this.call(
      'getXML',
      name,
      async (hv) => hv.domainGetXMLDesc(await this.lookup(hv, name), opts.inactive ? XML_INACTIVE : 0),
      { retryAfterReconnect: true },
    );
  }

  listDomains(): Promise<{ name: string; state: DomainState }[]> {
    return this.call(
      'list',
      undefined,
      async (hv) => {
        const doms = await hv.connectListAllDomains();
        return Promise.all(
          doms.map(async (d) => ({ name: await hv.domainGetName(d), state: stateName((await hv.domainGetInfo(d)).state) })),
        );
      },
      { retryAfterReconnect: true },
    );
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.call('lookup', name, (hv) => this.lookup(hv, name), { retryAfterReconnect: true });
      return true;
    } catch (err) {
      if (err instanceof DomainNotFoundError) return false;
      throw err;
    }
  }

  onEvent(listener: (event: DomainEvent) => void): () => void {
    this.emitter.on('event', listener);
    this.eventListeners++;
    this.ensureEventSource();
    return () => {
      this.emitter.off('event', listener);
      this.eventListeners--;
      if (this.eventListeners === 0) void this.stopEventSource();
    };
  }

  onStatus(listener: (status: ConnectionStatus, err?: Error) => void): () => void {
    this.emitter.on('status', listener);
    return () => this.emitter.off('status', listener);
  }

  async *events(signal?: AbortSignal): AsyncIterable<DomainEvent> {
    const ac = new AbortController();
    const stop = anySignal(signal, this.closing.signal, ac.signal);
    const unsubscribe = this.onEvent(() => undefined); // keeps the source running while iterating
    try {
      for await (const [ev] of on(this.emitter, 'event', { signal: stop })) yield ev as DomainEvent;
    } catch (err) {
      if (!stop.aborted) throw err;
    } finally {
      ac.abort();
      unsubscribe();
    }
  }

  private ensureEventSource(): void {
    if (this.eventSource || this.state === 'closed') return;
    const sink = {
      emit: (e: DomainEvent) => this.emitter.emit('event', e),
      // virsh lost libvirtd: probe our own connection so a restart is noticed promptly.
      lost: (err: Error) => void this.listDomains().catch(() => undefined).then(() => err),
      unsupported: (_err: Error) => {
        void this.eventSource?.stop();
        this.eventSource = new PollingEventSource(() => this.pollStates(), sink, this.opts.pollIntervalMs);
        this.eventSource.start();
      },
    };
    this.eventSource =
      this.opts.eventSource === 'poll'
        ? new PollingEventSource(() => this.pollStates(), sink, this.opts.pollIntervalMs)
        : new VirshEventSource(this.uri, sink, this.opts.virshPath);
    this.eventSource.start();
  }

  /** What the polling event source diffs: the watched domains that exist, or all domains. */
  private async pollStates(): Promise<{ name: string; state: DomainState }[]> {
    const watch = this.opts.watchDomains;
    if (!watch) return this.listDomains();
    const states = await Promise.all(
      watch.map((name) =>
        this.getState(name).then(
          (state) => ({ name, state }),
          (err: unknown) => {
            if (err instanceof DomainNotFoundError) return undefined;
            throw err;
          },
        ),
      ),
    );
    return states.filter((s): s is { name: string; state: DomainState } => s !== undefined);
  }

  private async stopEventSource(): Promise<void> {
    const src = this.eventSource;
    this.eventSource = undefined;
    await src?.stop();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.closing.abort(new Error('driver closed'));
    await this.stopEventSource();
    const hv = this.hv;
    this.hv = undefined;
    this.setStatus('closed');
    await hv?.connectClose().catch(() => undefined);
    this.emitter.removeAllListeners();
  }
}

function stateName(n: number): DomainState {
  return DOMAIN_STATES[n] ?? 'NoState';
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}
