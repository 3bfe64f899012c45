/**
 * Runs the shared manifest validator (api/validate.ts) in a worker thread. Compiling the
 * closed KubeVirt schema costs ~250 ms and ~35 MB per process; a launcher validates a spec
 * once (later syncs of the same spec hash skip it), so the worker is warmed at start, used
 * by the first sync and then stopped, and the launcher's steady state does not carry ajv.
 */
import { Worker } from 'node:worker_threads';
import type { ValidationIssue } from '../api/validate.js';

export class WorkerValidator {
  private worker: Worker | undefined;
  private seq = 0;
  private broken = false;
  private readonly pending = new Map<number, { resolve: (v: ValidationIssue[]) => void; reject: (e: Error) => void }>();

  /** Starts the worker and compiles the schema in the background. */
  warm(): void {
    if (this.worker || this.broken) return;
    // Workers take the loader flags (tsx) but reject V8 heap flags such as --max-semi-space-size.
    const execArgv = process.execArgv.filter((a) => !/^--max-/.test(a));
    let w: Worker;
    try {
      w = new Worker(new URL('./validator-worker.ts', import.meta.url), { execArgv });
    } catch (err) {
      this.broken = true;
      throw err;
    }
    w.unref();
    w.on('message', (m: { id: number; issues?: ValidationIssue[]; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.issues ?? []);
    });
    const fail = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (this.worker === w) this.worker = undefined;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`validator worker exited with code ${code}`)));
    this.worker = w;
    void this.validate({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'warm-up' }, spec: { domain: { devices: {} } } }).catch(() => undefined);
  }

  async validate(obj: unknown): Promise<ValidationIssue[]> {
    try {
      this.warm();
      const id = ++this.seq;
      return await new Promise<ValidationIssue[]>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.worker!.postMessage({ id, obj });
      });
    } catch {
      // No worker here (or it died): validate in-process rather than not at all.
      const { validateManifest } = await import('../api/validate.js');
      return validateManifest(obj);
    }
  }

  /** Frees the worker (and its compiled schema); the next validate() starts a new one. */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}
