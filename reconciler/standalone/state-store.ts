/**
 * The single-host state dir. Every file is written atomically (temp file + rename), one
 * writer per file at a time, so a reconciler killed at any instant leaves either the old or
 * the new content, never a torn file.
 *
 *   <state-dir>/
 *     applied.json              last applied revision: sha, its VM + launcher Pod manifests,
 *                               the inventory (core's planRevision), the last refusal
 *     vms/<ns>_<name>.json      one per VM this host manages: instance (uid, pid, socket,
 *                               domain, pod dir), status (with the reconcile's
 *                               durable state), events, override
 *     pods/<ns>_<name>/         the VM's launcher "Pod": volumes/<emptyDir>/..., launcher.log
 *     images/                   shared OCI image cache of the launchers
 *     pvcs/  secrets/           host-wide volume sources (never pruned)
 *     source/                   the git source's cache repository
 *     up.json                   the running `virtops up`: pid, API address
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VirtualMachineStatus } from '../../api/kubevirt.js';
import { type AggregatedEvent, type Inventory, type KubeObject, type Override, recordEvent } from '../core/index.js';
import type { InstanceRecord } from '../agent/agent.js';
import { podsDir } from '../agent/host-config.js';

/** One entry of a VM's event history; repeats are aggregated with a count (core/events.ts). */
export type VmEvent = AggregatedEvent;

export interface VmRecord {
  namespace: string;
  name: string;
  /** When this host first saw the VM in git. */
  firstSeen: number;
  /** The revision the VM's manifest was last taken from. */
  revision?: string;
  instance?: InstanceRecord;
  override?: Override;
  /** Also holds the reconcile's durable state (CrashLoopBackOff, Once completion, last error): core/reconcile-state.ts. */
  status?: VirtualMachineStatus;
  events: VmEvent[];
  /** Its file was corrupt and moved aside: the instance is to be found again from what runs. */
  rebuilt?: boolean;
}

export interface AppliedState {
  sha?: string;
  appliedAt?: number;
  /** When the source yielded it (push-to-running latency starts here). */
  seenAt?: number;
  /** The VirtualMachines and launcher Pods of the applied revision. */
  manifests: KubeObject[];
  inventory: Inventory;
  refused?: { sha: string; errors: string[]; at: number };
}

export interface UpInfo {
  pid: number;
  listen: string;
  repo: string;
  branch: string;
  startedAt: string;
}

export const EVENTS_KEPT = 30;

/** A state file that was not what virtops writes: moved aside (kept for inspection) and rebuilt. */
export interface RecoveredFile {
  file: string;
  movedTo: string;
  why: string;
}

export class StateStore {
  private readonly chains = new Map<string, Promise<void>>();
  /** Corrupt files found by the reads so far, each moved aside. */
  readonly recovered: RecoveredFile[] = [];

  constructor(readonly dir: string) {}

  get podsDir(): string {
    return podsDir(this.dir);
  }

  async init(): Promise<void> {
    for (const d of ['vms', 'pods', 'images', 'pvcs', 'secrets']) await mkdir(join(this.dir, d), { recursive: true, mode: 0o750 });
  }

  /**
   * The last applied revision. A corrupt file is moved aside and nothing counts as applied: the
   * source's newest good revision is applied again (an empty inventory prunes nothing, and the
   * backend prunes no VM before a revision is applied).
   */
  async readApplied(): Promise<AppliedState> {
    const file = join(this.dir, 'applied.json');
    const a = await this.readJson<AppliedState>(file, (x) =>
      isObject(x) && Array.isArray(x.manifests) && isObject(x.inventory) && isObject(x.inventory.entries) ? undefined : 'not an applied revision (manifests, inventory.entries)');
    return a ?? { manifests: [], inventory: { entries: {} } };
  }

  writeApplied(state: AppliedState): Promise<void> {
    return this.write(join(this.dir, 'applied.json'), state);
  }

  async readVms(): Promise<VmRecord[]> {
    const dir = join(this.dir, 'vms');
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
    const out: VmRecord[] = [];
    for (const n of names) {
      const file = join(dir, n);
      const before = this.recovered.length;
      const r = await this.readJson<VmRecord>(file, (x) =>
        isObject(x) && typeof x.namespace === 'string' && typeof x.name === 'string' && Array.isArray(x.events) && (x.instance === undefined || isObject(x.instance)) ? undefined : 'not a VM record (namespace, name, events)');
      if (r) out.push(r);
      else if (this.recovered.length > before) {
        // Rebuilt from the file name (`<ns>_<name>.json`; a namespace has no `_`) and from what
        // runs: the backend finds the VM's launcher again in its pod dir (rebuilt: true).
        const m = /^([^_]+)_(.+)\.json$/.exec(n);
        if (m) out.push({ namespace: m[1]!, name: m[2]!, firstSeen: Date.now(), events: [], rebuilt: true });
      }
    }
    return out;
  }

  writeVm(rec: VmRecord): Promise<void> {
    return this.write(this.vmFile(rec.namespace, rec.name), rec);
  }

  async removeVm(namespace: string, name: string): Promise<void> {
    const file = this.vmFile(namespace, name);
    await this.serial(file, () => rm(file, { force: true }));
  }

  writeUp(info: UpInfo): Promise<void> {
    return this.write(join(this.dir, 'up.json'), info);
  }

  readUp(): Promise<UpInfo | null> {
    return this.readJson<UpInfo>(join(this.dir, 'up.json'), (x) => (isObject(x) && typeof x.pid === 'number' ? undefined : 'not an up.json (pid)'));
  }

  async removeUp(): Promise<void> {
    await rm(join(this.dir, 'up.json'), { force: true });
  }

  /**
   * A state file's content; null when absent. One that does not parse, or that `check` says is
   * not what virtops writes, is never trusted: it is moved to `<file>.corrupt-<time>` (kept for
   * inspection), recorded in `recovered`, and read as absent.
   */
  private async readJson<T>(file: string, check: (x: Record<string, unknown> | unknown) => string | undefined): Promise<T | null> {
    let why: string | undefined;
    try {
      const x = JSON.parse(await readFile(file, 'utf8')) as unknown;
      why = check(x);
      if (why === undefined) return x as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      why = (err as Error).message;
    }
    const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(file, movedTo);
    this.recovered.push({ file, movedTo, why });
    return null;
  }

  private vmFile(namespace: string, name: string): string {
    return join(this.dir, 'vms', `${namespace}_${name}.json`);
  }

  private write(file: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value, null, 1);
    return this.serial(file, async () => {
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text, { mode: 0o640 });
      await rename(tmp, file);
    });
  }

  /** Runs writes to one file one after another, in call order. */
  private serial(file: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(file) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.chains.set(file, settled);
    void settled.then(() => {
      if (this.chains.get(file) === settled) this.chains.delete(file);
    });
    return next;
  }
}

function isObject(x: unknown): x is Record<string, unknown> & object {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}



/** Records an event on the VM; a repeat within 10 minutes counts on the existing one (core/events.ts). */
export function pushEvent(rec: VmRecord, e: Omit<VmEvent, 'time' | 'count' | 'firstTime'>, now: number): void {
  rec.events = recordEvent(rec.events, e, now, EVENTS_KEPT);
}
