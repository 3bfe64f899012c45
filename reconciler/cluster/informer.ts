/**
 * An informer that keeps going. client-node's ListWatch re-lists by itself on 410 Gone but
 * stops on any other error (the API server restarting, a dropped connection, a 403); here
 * it is restarted with exponential backoff until `stop()` is called, and never after.
 * A restart re-lists, so objects that changed while disconnected are delivered again
 * (consumers are level-triggered and only use events as hints).
 *
 * Neither a list nor a watch may hang for good (client-node sets no timeout on either): a
 * list that has not answered in LIST_TIMEOUT_MS fails, and each watch asks the server to end
 * it after a random 30–60 s (`timeoutSeconds`, with bookmarks) and is given up client-side
 * when nothing at all arrived for that long plus WATCH_GRACE_MS (`deadlineWatch`). So a watch
 * that died without a word (a half-open connection across an API server restart) is
 * replaced within about a minute. client-go's reflector renews its watches every 5–10 min;
 * virtops watches few objects, so renewing more often costs little and bounds staleness.
 */
import { randomInt } from 'node:crypto';
import { ListWatch } from '@kubernetes/client-node/dist/cache.js';
import type { KubernetesObject, Watch } from '@kubernetes/client-node';
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
  /**
   * Applied to every listed and watched object before it is cached and handed to the
   * handler; may change the object in place. @default stripForCache
   */
  transform?: (obj: KubernetesObject) => KubernetesObject;
}

/** The annotation `kubectl apply` keeps the whole applied object in. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what no reader of an informer cache uses and what costs the most memory per object:
 * `metadata.managedFields` (server-side apply's field ownership, often larger than the
 * object's spec) and `kubectl apply`'s last-applied annotation (a second copy of the whole
 * object). In place, so no copy of the object is made. Safe because virtops writes with
 * server-side apply and merge patches, never by PUTting a cached object back (which would
 * drop the annotation on the server). Anything without metadata (a watch's ERROR Status)
 * passes unchanged.
 */
export function stripForCache<T extends KubernetesObject>(obj: T): T {
  const meta = obj?.metadata;
  if (!meta) return obj;
  if (meta.managedFields !== undefined) delete meta.managedFields;
  const annotations = meta.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) {
    delete annotations[LAST_APPLIED_ANNOTATION];
    if (Object.keys(annotations).length === 0) delete meta.annotations;
  }
  return obj;
}

/** `inner`'s watches with `transform` applied to each event's object before the callback sees it. */
export function transformingWatch(inner: Pick<Watch, 'watch'>, transform: (obj: KubernetesObject) => KubernetesObject): Watch {
  const watch = (path: string, queryParams: Parameters<Watch['watch']>[1], callback: WatchCallback, done: WatchDone) =>
    inner.watch(path, queryParams, (phase, obj, raw) => callback(phase, phase === 'ERROR' ? obj : transform(obj as KubernetesObject), raw), done);
  return { watch } as unknown as Watch;
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
  /** Errors reported so far (tells a start() that failed from one that succeeded). */
  private errors = 0;
  private timer: NodeJS.Timeout | undefined;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  /** Restarts after an error (for tests and metrics). */
  restarts = 0;

  constructor(
    client: Pick<HttpKubeClient, 'list' | 'watch'>,
    private readonly spec: InformerSpec,
    handler: InformerHandler<T>,
    private readonly log: Logger,
  ) {
    const { path, apiVersion, kind, labelSelector, fieldSelector, namespace } = spec;
    const transform = spec.transform ?? stripForCache;
    const listFn = async () => {
      const list = await client.list<T>(apiVersion, kind, { ...(namespace ? { namespace } : {}), ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) });
      list.items = list.items.map((o) => transform(o) as T);
      return list;
    };
    // One ListWatch for the informer's life: restarting it keeps its cache and resumes from
    // its resourceVersion (a 410 then re-lists, reporting deletions missed meanwhile).
    this.lw = new ListWatch<T>(path, deadlineWatch(transformingWatch(client.watch, transform)), () => withTimeout(listFn(), LIST_TIMEOUT_MS, `listing ${path}`), false, labelSelector, fieldSelector);
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
    const errorsBefore = this.errors;
    this.lw.start().then(
      () => {
        // start() also resolves after a failed list or watch (the error callback has run then).
        if (this.errors !== errorsBefore || this.lw.latestResourceVersion() === '' || this.stopped) return;
        if (this.failures > 0) this.log.info({ path: this.spec.path, failures: this.failures }, 'watch restored');
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
    this.errors++;
    if (this.stopped || this.timer) return;
    this.failures++;
    const delay = retryDelay(this.failures, { baseMs: 200, maxMs: 5000 });
    const message = ((err as Error)?.message ?? String(err)).split('\n').slice(0, 3).join(' ').slice(0, 300);
    // The first failures of a streak and every tenth at warn, the rest at debug (a missing
    // CRD retries for a while), so a streak that never ends still shows in the log.
    this.log[this.failures <= 3 || this.failures % 10 === 0 ? 'warn' : 'debug']({ path: this.spec.path, err: message, retryInMs: delay, failures: this.failures }, 'watch failed; restarting after backoff');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.restarts++;
      this.open();
    }, delay);
  }
}

/** How long a list may take before it counts as failed (the API server's own limit is 60 s). */
export const LIST_TIMEOUT_MS = 60_000;
/** The range of `timeoutSeconds` each watch asks for (random, so watches do not renew in step). */
export const WATCH_TIMEOUT_SECONDS = { min: 30, max: 60 } as const;
/** How long past its `timeoutSeconds` a watch that sent nothing is kept before it is given up. */
export const WATCH_GRACE_MS = 15_000;

type WatchCallback = Parameters<Watch['watch']>[2];
type WatchDone = Parameters<Watch['watch']>[3];

/**
 * `inner`'s watches, each with a server-side `timeoutSeconds` (and bookmarks, so a quiet
 * but healthy watch still hears from the server) and a client-side deadline: a watch that
 * delivered nothing for its timeout plus `graceMs` ends with an error (ListWatch then
 * restarts it). An abort by the caller (ListWatch replacing or stopping its watch) ends the
 * watch without calling `done`: reporting it would make ListWatch abort the watch that
 * replaces it.
 */
export function deadlineWatch(inner: Pick<Watch, 'watch'>, opts: { minSeconds?: number; maxSeconds?: number; graceMs?: number; checkMs?: number } = {}): Watch {
  const { minSeconds = WATCH_TIMEOUT_SECONDS.min, maxSeconds = WATCH_TIMEOUT_SECONDS.max, graceMs = WATCH_GRACE_MS, checkMs = 1000 } = opts;
  const watch = async (path: string, queryParams: Record<string, unknown>, callback: WatchCallback, done: WatchDone): Promise<AbortController> => {
    const timeoutSeconds = randomInt(minSeconds, maxSeconds + 1);
    const outer = new AbortController();
    let innerController: AbortController | undefined;
    let finished = false;
    let lastHeard = Date.now();
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      clearInterval(deadline);
      innerController?.abort();
      done(err);
    };
    const deadline = setInterval(() => {
      if (Date.now() - lastHeard > timeoutSeconds * 1000 + graceMs) finish(new Error(`the watch of ${path} delivered nothing for ${timeoutSeconds}s plus ${graceMs / 1000}s grace although the server was asked to end it by then; giving it up`));
    }, checkMs);
    deadline.unref();
    outer.signal.addEventListener('abort', () => {
      finished = true;
      clearInterval(deadline);
      innerController?.abort();
    });
    try {
      innerController = await inner.watch(path, { ...queryParams, timeoutSeconds, allowWatchBookmarks: true }, (phase, obj, raw) => {
        if (finished) return;
        lastHeard = Date.now();
        callback(phase, obj, raw);
      }, finish);
    } catch (err) {
      clearInterval(deadline);
      throw err;
    }
    if (finished) innerController.abort();
    return outer;
  };
  return { watch } as unknown as Watch;
}

/** `promise`, or a rejection after `ms` (the work itself is not cancelled: its result is ignored). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000}s`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
