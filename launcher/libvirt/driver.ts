/**
 * The small surface of libvirt the launcher needs. One implementation sits on the
 * @unraid/libvirt N-API binding (native.ts); lifecycle events come from an
 * EventSource (events.ts) so a native event binding can replace `virsh event` later.
 */

/** libvirt's virDomainState, named as KubeVirt names them. */
export type DomainState =
  | 'NoState' | 'Running' | 'Blocked' | 'Paused' | 'Shutdown' | 'Shutoff' | 'Crashed' | 'PMSuspended';

export const DOMAIN_STATES: readonly DomainState[] = [
  'NoState', 'Running', 'Blocked', 'Paused', 'Shutdown', 'Shutoff', 'Crashed', 'PMSuspended',
];

export interface DomainInfo {
  name: string;
  state: DomainState;
  /** Bytes. */
  maxMemory: number;
  memory: number;
  vcpus: number;
  /** Nanoseconds of CPU time used by the guest. */
  cpuTimeNs: number;
}

/** libvirt lifecycle event kinds (virDomainEventType). */
export type DomainEventType =
  | 'Defined' | 'Undefined' | 'Started' | 'Suspended' | 'Resumed' | 'Stopped' | 'Shutdown'
  | 'PMSuspended' | 'Crashed';

export interface DomainEvent {
  domain: string;
  type: DomainEventType;
  /** libvirt's detail, e.g. "Booted", "Destroyed", "Finished after guest request". */
  detail: string;
  timestamp: Date;
  /** Where the event came from: the `virsh event` child or state polling. */
  source: 'virsh' | 'poll';
}

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface LibvirtDriver {
  readonly uri: string;
  /**
   * Opens the connection. With `retry`, keeps trying with exponential backoff until it
   * succeeds or `signal` aborts, calling `onRetry` before each wait.
   */
  connect(opts?: { retry?: boolean; signal?: AbortSignal; onRetry?: (err: Error, delayMs: number) => void }): Promise<void>;
  status(): ConnectionStatus;
  defineXML(xml: string): Promise<string>;
  start(name: string): Promise<void>;
  /** ACPI shutdown request; returns at once, the guest decides when to power off. */
  shutdown(name: string): Promise<void>;
  destroy(name: string): Promise<void>;
  suspend(name: string): Promise<void>;
  resume(name: string): Promise<void>;
  /** Removes the definition, including UEFI nvram if the domain has one. */
  undefine(name: string): Promise<void>;
  getInfo(name: string): Promise<DomainInfo>;
  getState(name: string): Promise<DomainState>;
  /** Live XML when running; `inactive` asks for the persistent definition. */
  getXML(name: string, opts?: { inactive?: boolean }): Promise<string>;
  listDomains(): Promise<{ name: string; state: DomainState }[]>;
  /** Whether the domain is defined; never throws DomainNotFoundError. */
  exists(name: string): Promise<boolean>;
  /** Subscribes to lifecycle events of all domains; returns an unsubscribe function. */
  onEvent(listener: (event: DomainEvent) => void): () => void;
  /** Connection status changes (dropped, re-opened). */
  onStatus(listener: (status: ConnectionStatus, err?: Error) => void): () => void;
  /** Same events as an async iterable (ends when `signal` aborts or the driver closes). */
  events(signal?: AbortSignal): AsyncIterable<DomainEvent>;
  close(): Promise<void>;
}
