/**
 * Validation and conversion of a VMI in a worker thread that lives only around a sync.
 *
 * The closed KubeVirt schema (api/validate.ts) costs ~35 MB once compiled (and ~250 ms of
 * CPU to compile, unless the bundle's precompiled code answers: launcher/precompiled/),
 * and the converter's XML library ~3.5 MiB: a launcher needs both for its first sync only
 * (later syncs of the same spec hash skip validation, and a domain is converted once per
 * incarnation). So the worker is warmed when the launcher starts (the schema compiles
 * while libvirt connects and the first PUT arrives), does the sync's validation and
 * conversion, and is stopped afterwards: the launcher's steady state carries neither ajv
 * nor xmlbuilder2. A changed spec brings the worker back. Where no worker can run, both
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

export class PrepareWorker {
  private worker: Worker | undefined;
  private seq = 0;
  private broken = false;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  /** Starts the worker and compiles the schema in the background. */
  warm(): void {
    if (this.worker || this.broken) return;
    // Workers take the loader flags (tsx) but reject V8 heap flags such as --max-semi-space-size.
    const execArgv = process.execArgv.filter((a) => !/^--max-/.test(a));
    let w: Worker;
    try {
      w = new Worker(siblingEntry(import.meta.url, './prepare-worker.ts', 'prepare-worker'), { execArgv });
    } catch (err) {
      this.broken = true;
      throw err;
    }
    w.unref();
    w.on('message', (m: PrepareReply) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(deserializeError(m.error));
      else p?.resolve(m.result);
    });
    const fail = (err: Error) => {
      // Stopped on purpose (stop() let go of it first): nothing to fall back to.
      const died = this.worker === w;
      for (const p of this.pending.values()) p.reject(died ? new WorkerUnavailableError(err.message) : new Error('prepare worker stopped'));
      this.pending.clear();
      if (died) this.worker = undefined;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`prepare worker exited with code ${code}`)));
    this.worker = w;
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
    if (!this.worker) throw new WorkerUnavailableError('no worker');
    const id = ++this.seq;
    const worker = this.worker;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  }

  /** Frees the worker (its compiled schema and converter); the next request starts a new one. */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}

/** The worker could not start or died: the caller does the work in-process. */
class WorkerUnavailableError extends Error {}
