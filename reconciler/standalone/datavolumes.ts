/**
 * `virtops up`'s DataVolume worker: the DataVolumes of the applied revision (manifests and
 * VMs' dataVolumeTemplates, api/datavolume.ts) are imported into their claims outside the
 * reconcile loop, a few at a time, each attempt under a deadline; a failed attempt is retried
 * with backoff (CDI's restartCount). A DataVolume that Succeeded is never imported again;
 * its claim stays until the DataVolume leaves git (a template's with its VM), and is removed
 * only once no instance on this host uses it.
 *
 *   <state-dir>/datavolumes/<ns>_<name>.json    what the worker knows (ImportRecord)
 *   <state-dir>/pvcs/<ns>/<name>/disk.img       the claim (launcher/volumes/import.ts)
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type DataVolumeStatus,
  type DvIssue,
  type ImportPlan,
  type ImportRecord,
  dataVolumeStatus,
  dataVolumesOf,
  recordAttemptFailed,
  recordAttemptStarted,
  recordAttemptSucceeded,
} from '../../api/datavolume.js';
import { claimDir, runImport } from '../../launcher/volumes/import.js';
import type { ImageStore } from '../../launcher/volumes/image-store.js';

export interface DataVolumeWorkerOptions {
  stateDir: string;
  /** `<state-dir>/pvcs` */
  pvcDir: string;
  imageStore?: ImageStore;
  log: Logger;
  /** Imports at once (each is mostly I/O and one qemu-img). */
  concurrency?: number;
  /** One attempt's deadline. */
  deadlineMs?: number;
  /** A phase changed: the VMs waiting for it are looked at again. */
  onChange?: () => void;
  /** `ns/claim` of every claim a running instance on this host uses. */
  claimsInUse?: () => Set<string>;
  now?: () => number;
}

/** One DataVolume as the API and `virtops get dv` show it. */
export interface DataVolumeView {
  apiVersion: 'cdi.kubevirt.io/v1beta1';
  kind: 'DataVolume';
  metadata: { name: string; namespace: string; ownerReferences?: { apiVersion: string; kind: string; name: string; controller: boolean }[] };
  spec: { source: { kind: string } };
  status: DataVolumeStatus;
  /** The manifest in git cannot be imported as written. */
  errors?: string[];
}

export const DEFAULT_IMPORT_DEADLINE_MS = 60 * 60_000;

export class DataVolumeWorker {
  private readonly records = new Map<string, ImportRecord>();
  private desired = new Map<string, ImportPlan>();
  private invalid = new Map<string, DvIssue[]>();
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** Claims whose DataVolume left git while an instance still used them. */
  private readonly pendingDelete = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly opts: DataVolumeWorkerOptions) {
    this.now = opts.now ?? Date.now;
  }

  private get dir(): string {
    return join(this.opts.stateDir, 'datavolumes');
  }

  /** Loads what earlier runs recorded; an import that was running when up died is scheduled again. */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    for (const f of await readdir(this.dir)) {
      if (!f.endsWith('.json')) continue;
      const rec = await readFile(join(this.dir, f), 'utf8').then((t) => JSON.parse(t) as ImportRecord, () => undefined);
      if (!rec) continue;
      if (rec.phase === 'ImportInProgress') rec.phase = 'ImportScheduled';
      if (rec.phase === 'CloneInProgress') rec.phase = 'CloneScheduled';
      this.records.set(`${rec.namespace}/${rec.name}`, rec);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const r of this.running.values()) r.abort.abort(new Error('virtops up is stopping'));
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  /**
   * The applied revision's DataVolumes: new ones are scheduled, those that left git are removed.
   * `prune: false` (no revision applied yet: a first start, or applied.json rebuilt) removes
   * nothing, as the backend prunes no VM then: only a revision says a DataVolume left git.
   */
  async update(manifests: readonly { apiVersion?: unknown; kind?: unknown; metadata?: unknown; spec?: unknown }[], opts: { prune?: boolean } = {}): Promise<void> {
    const { plans, errors } = dataVolumesOf(manifests);
    this.desired = new Map(plans.map((p) => [`${p.namespace}/${p.name}`, p]));
    this.invalid = new Map(errors.map((e) => [e.key, e.issues]));
    const now = this.now();
    for (const [key, plan] of this.desired) {
      this.pendingDelete.delete(key);
      const rec = this.records.get(key);
      if (rec?.phase === 'Succeeded') {
        // Never re-imported; a changed spec only says so.
        const changed = rec.specHash !== plan.specHash;
        if (changed !== (rec.specChanged ?? false)) {
          rec.specChanged = changed;
          await this.save(rec);
        }
        continue;
      }
      if (rec && rec.specHash === plan.specHash) continue;
      // New, or changed before it succeeded: start over with the new spec.
      this.running.get(key)?.abort.abort(new Error('the DataVolume changed in git'));
      const scheduled = plan.source.kind === 'clone' ? 'CloneScheduled' : 'ImportScheduled';
      const next: ImportRecord = {
        namespace: plan.namespace, name: plan.name, specHash: plan.specHash, source: plan.source.kind,
        ...(plan.owner ? { owner: plan.owner } : {}), phase: scheduled, attempts: 0, since: { Bound: now, Ready: now, Running: now },
      };
      this.records.set(key, next);
      await this.save(next);
      this.opts.log.info({ dv: key, source: plan.source.kind, owner: plan.owner }, 'DataVolume scheduled for import');
    }
    if (opts.prune !== false) for (const key of this.records.keys()) if (!this.desired.has(key)) this.pendingDelete.add(key);
    await this.sweep();
    this.kick();
  }

  /**
   * Called with a revision before the backend applies it: its DataVolumes are known (Pending)
   * at once, so none of its VMs is started ahead of its import; update() does the rest.
   */
  expect(manifests: readonly { apiVersion?: unknown; kind?: unknown; metadata?: unknown; spec?: unknown }[]): void {
    const { plans } = dataVolumesOf(manifests);
    for (const p of plans) {
      const key = `${p.namespace}/${p.name}`;
      if (!this.desired.has(key)) this.desired.set(key, p);
    }
  }

  /** CDI's status of the DataVolume filling claim `ns/name`, if git declares it. */
  status(namespace: string, name: string): DataVolumeStatus | undefined {
    const key = `${namespace}/${name}`;
    const issues = this.invalid.get(key);
    if (issues) {
      // Declared but not importable here (e.g. a sourceRef): Failed, so its VM shows DataVolumeError.
      const t = this.now();
      return dataVolumeStatus({ namespace, name, specHash: '', source: 'blank', phase: 'Failed', attempts: 0, lastError: issues.map((i) => `${i.path}: ${i.message}${i.fix ? ` (fix: ${i.fix})` : ''}`).join('; '), since: { Bound: t, Ready: t, Running: t } });
    }
    const plan = this.desired.get(key);
    if (!plan) return undefined;
    const rec = this.records.get(key);
    if (rec) return this.statusOf(rec);
    // Declared, not yet recorded (update() is on its way): Pending, as CDI shows a new DataVolume.
    const now = this.now();
    return { ...dataVolumeStatus({ namespace, name, specHash: plan.specHash, source: plan.source.kind, phase: 'ImportScheduled', attempts: 0, since: { Bound: now, Ready: now, Running: now } }), phase: 'Pending' };
  }

  list(): DataVolumeView[] {
    const keys = [...new Set([...this.desired.keys(), ...this.invalid.keys()])].sort();
    const out: DataVolumeView[] = [];
    for (const key of keys) {
      const [namespace = 'default', name = ''] = key.split('/');
      const plan = this.desired.get(key);
      const rec = this.records.get(key);
      const owner = plan?.owner?.split('/')[1];
      const issues = this.invalid.get(key);
      out.push({
        apiVersion: 'cdi.kubevirt.io/v1beta1',
        kind: 'DataVolume',
        metadata: { name, namespace, ...(owner ? { ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner, controller: true }] } : {}) },
        spec: { source: { kind: plan?.source.kind ?? 'unknown' } },
        status: rec || plan
          ? (rec ? this.statusOf(rec) : this.status(namespace, name)!)
          : { phase: 'Failed', progress: 'N/A', claimName: name, conditions: [{ type: 'Ready', status: 'False', reason: 'InvalidSpec', message: (issues ?? []).map((i) => `${i.path}: ${i.message}`).join('; ') }] },
        ...(issues ? { errors: issues.map((i) => `${i.path}: ${i.message}${i.fix ? ` (fix: ${i.fix})` : ''}`) } : {}),
      });
    }
    return out;
  }

  private statusOf(rec: ImportRecord): DataVolumeStatus {
    return dataVolumeStatus(rec);
  }

  /** Starts due imports up to the concurrency; arms a timer for the next retry. */
  private kick(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const now = this.now();
    let next: number | undefined;
    const limit = this.opts.concurrency ?? 2;
    for (const [key, plan] of this.desired) {
      const rec = this.records.get(key);
      if (!rec || rec.phase === 'Succeeded' || this.running.has(key)) continue;
      if (rec.retryAt !== undefined && rec.retryAt > now) {
        next = Math.min(next ?? Infinity, rec.retryAt);
        continue;
      }
      if (plan.source.kind === 'clone') {
        const src = `${plan.source.namespace}/${plan.source.name}`;
        const srcDv = this.desired.has(src) ? this.records.get(src) : undefined;
        // A clone waits for its source DataVolume, and for no instance to be writing the source.
        if ((srcDv && srcDv.phase !== 'Succeeded') || this.opts.claimsInUse?.().has(src)) {
          next = Math.min(next ?? Infinity, now + 2000);
          continue;
        }
      }
      if (this.running.size >= limit) break;
      this.begin(key, plan, rec);
    }
    if (this.pendingDelete.size) next = Math.min(next ?? Infinity, now + 2000);
    if (next !== undefined) {
      this.timer = setTimeout(() => void this.sweep().finally(() => this.kick()), Math.max(50, next - now));
      this.timer.unref();
    }
  }

  private begin(key: string, plan: ImportPlan, rec: ImportRecord): void {
    const abort = new AbortController();
    const deadline = this.opts.deadlineMs ?? DEFAULT_IMPORT_DEADLINE_MS;
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(deadline)]);
    const now = this.now();
    recordAttemptStarted(rec, plan, now);
    const began = now;
    this.opts.log.info({ dv: key, attempt: rec.attempts + 1 }, 'DataVolume import started');
    const done = (async () => {
      await this.save(rec);
      this.opts.onChange?.();
      try {
        const res = await runImport(plan, {
          pvcDir: this.opts.pvcDir,
          ...(this.opts.imageStore ? { imageStore: this.opts.imageStore } : {}),
          signal,
          onProgress: (f) => (rec.fraction = f),
        });
        if (this.records.get(key) !== rec) return;
        const t = this.now();
        recordAttemptSucceeded(rec, t);
        this.opts.log.info({ dv: key, bytes: String(res.bytes), seconds: (t - began) / 1000 }, 'DataVolume import succeeded');
      } catch (err) {
        if (this.records.get(key) !== rec || abort.signal.aborted) return;
        const t = this.now();
        const timedOut = signal.aborted && !abort.signal.aborted;
        // The next attempt starts over (as CDI's restarted importer does).
        recordAttemptFailed(rec, timedOut ? { deadlineMs: deadline } : (err as Error), t);
        this.opts.log.warn({ dv: key, attempt: rec.attempts, err: rec.lastError, retryInMs: rec.retryAt! - t }, 'DataVolume import failed; retrying with backoff');
      } finally {
        this.running.delete(key);
      }
      await this.save(rec).catch((err: unknown) => this.opts.log.error({ err, dv: key }, 'recording the DataVolume failed'));
      this.opts.onChange?.();
      this.kick();
    })();
    this.running.set(key, { abort, done });
  }

  /** Removes the claims of DataVolumes that left git, once no instance uses them. */
  private async sweep(): Promise<void> {
    if (!this.pendingDelete.size) return;
    const inUse = this.opts.claimsInUse?.() ?? new Set<string>();
    for (const key of [...this.pendingDelete]) {
      if (inUse.has(key)) continue;
      const rec = this.records.get(key);
      const run = this.running.get(key);
      if (run) {
        run.abort.abort(new Error('the DataVolume left git'));
        await run.done.catch(() => undefined);
      }
      this.pendingDelete.delete(key);
      if (!rec) continue;
      await rm(claimDir(this.opts.pvcDir, rec.namespace, rec.name), { recursive: true, force: true });
      await rm(join(this.dir, `${rec.namespace}_${rec.name}.json`), { force: true });
      this.records.delete(key);
      this.opts.log.info({ dv: key }, 'DataVolume left git: its claim is removed');
    }
  }

  private async save(rec: ImportRecord): Promise<void> {
    const file = join(this.dir, `${rec.namespace}_${rec.name}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o640 });
    await rename(tmp, file);
  }
}
