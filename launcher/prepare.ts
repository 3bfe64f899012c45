/**
 * Validation and conversion of a VMI in a worker thread that lives only around a sync.
 *
 * A launcher needs the VMI validator (in the bundle, ajv's standalone code for the closed
 * KubeVirt schema: launcher/precompiled/) and the converter for its first sync only (later
 * syncs of the same spec hash skip validation, and a domain is converted once per
 * incarnation). Loaded in the launcher's own isolate they would stay for its life: +4.8 MiB
 * RSS per launcher, against the worker's ~40 ms of CPU to start (BENCHMARKS.md, "launcher
 * CPU"). So the worker is warmed when the launcher starts (its modules load while libvirt
 * connects and the first PUT arrives), does the sync's validation and conversion, and is
 * stopped afterwards. A changed spec brings the worker back. Where no worker can run, both
 * happen in-process rather than not at all.
 */
import { Worker } from 'node:worker_threads';
import type { ValidationIssue } from '../api/validate.js';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import type { ConversionContext } from './convert/context.js';
import { siblingEntry } from './bundled.js';

export type PrepareRequest =
  | { id: number; op: 'validate'; obj: unknown }
  | { id: number; op: 'convert'; vmi: VirtualMachineInstance; ctx: ConversionContext };
export type PrepareReply = { id: number; result?: unknown; error?: SerializedError };
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** An error across the thread boundary: name, message and own fields (ConversionError's `path`, VolumeError's `reason`). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, unknown>;
}

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) {
    if (k !== 'name' && (v === null || ['string', 'number', 'boolean'].includes(typeof v))) fields[k] = v;
  }
  return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}), fields };
}

export function deserializeError(e: SerializedError): Error {
  const err = Object.assign(new Error(e.message), e.fields);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

interface Slot {
  worker: Worker;
  /** Requests sent to this worker, by id (each worker has its own, so a dying worker never fails its successor's). */
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
}

export class PrepareWorker {
  private current: Slot | undefined;
  private seq = 0;
  private broken = false;
  /** Told when a worker dies (its requests then run in-process); the launcher logs it. */
  onFailure: ((err: Error) => void) | undefined;

  /** Starts the worker and compiles the schema in the background. */
  warm(): void {
    if (this.current || this.broken) return;
    // Workers reject V8 heap flags such as --max-semi-space-size; the loader they need from
    // source is registered by prepare-worker-tsx.mjs (an `--import tsx` here would not apply).
    const execArgv = process.execArgv.filter((a) => !/^--max-/.test(a));
    let worker: Worker;
    try {
      worker = new Worker(siblingEntry(import.meta.url, './prepare-worker-tsx.mjs', 'prepare-worker'), { execArgv });
    } catch (err) {
      this.broken = true;
      throw err;
    }
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (m: PrepareReply) => {
      const p = slot.pending.get(m.id);
      slot.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(deserializeError(m.error));
      else p?.resolve(m.result);
    });
    const fail = (err: Error) => {
      // Stopped on purpose (stop() let go of it first): nothing to fall back to.
      const died = this.current === slot;
      for (const p of slot.pending.values()) p.reject(died ? new WorkerUnavailableError(err.message) : new Error('prepare worker stopped'));
      slot.pending.clear();
      if (died) {
        this.current = undefined;
        this.onFailure?.(err);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`prepare worker exited with code ${code}`)));
    this.current = slot;
    void this.validate({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'warm-up' }, spec: { domain: { devices: {} } } }).catch(() => undefined);
  }

  /** api/validate.ts's validateManifest. */
  async validate(obj: unknown): Promise<ValidationIssue[]> {
    try {
      return (await this.request({ op: 'validate', obj })) as ValidationIssue[];
    } catch (err) {
      if (!(err instanceof WorkerUnavailableError)) throw err;
      const { validateManifest } = await import('../api/validate.js');
      return validateManifest(obj);
    }
  }

  /** launcher/convert's convertVmi (its ConversionError keeps name and path). */
  async convert(vmi: VirtualMachineInstance, ctx: ConversionContext): Promise<{ xml: string; warnings: string[] }> {
    try {
      return (await this.request({ op: 'convert', vmi, ctx })) as { xml: string; warnings: string[] };
    } catch (err) {
      if (!(err instanceof WorkerUnavailableError)) throw err;
      const { convertVmi } = await import('./convert/index.js');
      return convertVmi(vmi, ctx);
    }
  }

  private async request(req: WithoutId<PrepareRequest>): Promise<unknown> {
    try {
      this.warm();
    } catch (err) {
      throw new WorkerUnavailableError((err as Error).message);
    }
    const slot = this.current;
    if (!slot) throw new WorkerUnavailableError('no worker');
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...req, id });
    });
  }

  /** Frees the worker (its compiled schema and converter); the next request starts a new one. */
  async stop(): Promise<void> {
    const slot = this.current;
    this.current = undefined;
    await slot?.worker.terminate();
  }
}

/** The worker could not start or died: the caller does the work in-process. */
class WorkerUnavailableError extends Error {}
