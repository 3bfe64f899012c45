/**
 * An informer that keeps going. client-node's ListWatch re-lists by itself on 410 Gone but
 * stops on any other error (the API server restarting, a dropped connection, a 403); here
 * it is restarted with exponential backoff until `stop()` is called, and never after.
 * A restart re-lists, so objects that changed while disconnected are delivered again
 * (consumers are level-triggered and only use events as hints).
 */
import { ListWatch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { HttpKubeClient } from './kube.js';
import { retryDelay } from '../queue.js';

export interface InformerSpec {
  /** Watch path, e.g. `/apis/kubevirt.io/v1/virtualmachines` or `/api/v1/pods`. */
  path: string;
  apiVersion: string;
  kind: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** List in this namespace only (the watch path must name it too). */
  namespace?: string;
}

export type InformerHandler<T> = (type: 'add' | 'update' | 'delete', obj: T) => void;

/** What the controller and the agent use of an informer (`KubeClient.informer` makes them). */
export interface Informer<T> {
  /** Starts listing and watching; resolves after the first successful list. */
  start(): Promise<void>;
  /** Resolves once the first list has been delivered (or the informer stopped). */
  hasSynced(): Promise<void>;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
  /** Stops for good; never restarts afterwards. */
  stop(): Promise<void>;
}

export class ResilientInformer<T extends KubernetesObject> implements Informer<T> {
  private readonly lw: ListWatch<T>;
  private stopped = false;
  private started = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  /** Restarts after an error (for tests and metrics). */
  restarts = 0;

  constructor(
    client: HttpKubeClient,
    private readonly spec: InformerSpec,
    handler: InformerHandler<T>,
    private readonly log: Logger,
  ) {
    const { path, apiVersion, kind, labelSelector, fieldSelector, namespace } = spec;
    const listFn = () =>
      client.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, fieldSelector, labelSelector) as Promise<KubernetesListObject<T>>;
    // One ListWatch for the informer's life: restarting it keeps its cache and resumes from
    // its resourceVersion (a 410 then re-lists, reporting deletions missed meanwhile).
    this.lw = new ListWatch<T>(path, client.watch, listFn, false, labelSelector, fieldSelector);
    this.lw.on('add', (o) => handler('add', o));
    this.lw.on('update', (o) => handler('update', o));
    this.lw.on('delete', (o) => handler('delete', o));
    this.lw.on('error', (err: unknown) => this.onError(err));
  }

  /** Starts listing and watching; resolves after the first successful list. */
  start(): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.open();
    }
    return this.hasSynced();
  }

  hasSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.lw.stop().catch(() => undefined);
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private open(): void {
    if (this.stopped) return;
    this.lw.start().then(
      () => {
        // start() also resolves after a failed list (the error callback has run then).
        if (this.lw.latestResourceVersion() === '' || this.stopped) return;
        this.failures = 0;
        if (!this.synced) {
          this.synced = true;
          for (const w of this.syncWaiters.splice(0)) w();
        }
      },
      (err: unknown) => this.onError(err),
    );
  }

  private onError(err: unknown): void {
    if (this.stopped || this.timer) return;
    this.failures++;
    const delay = retryDelay(this.failures, { baseMs: 200, maxMs: 5000 });
    const message = ((err as Error)?.message ?? String(err)).split('\n').slice(0, 3).join(' ').slice(0, 300);
    // The first failures of a streak at warn, the rest at debug (a missing CRD retries for a while).
    this.log[this.failures <= 3 ? 'warn' : 'debug']({ path: this.spec.path, err: message, retryInMs: delay, failures: this.failures }, 'watch failed; restarting after backoff');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.restarts++;
      this.open();
    }, delay);
  }
}
