/**
 * `virtops synth --watch`: synthesize once, then again on every change under the app's
 * directory (vms/) or to cdk8s.yaml, rewriting only the output files whose content changed
 * and removing those the app no longer emits. Like `virtops synth`, all or nothing: an app
 * error or an invalid manifest writes nothing and reports every problem; the watch goes on.
 *
 * Two modes (the app command decides, synth/watch-plan.ts appEntry):
 * - `worker`: the app is `[npx] tsx|node <module>`. A long-lived worker (synth/watch-worker.ts,
 *   forked with tsx) keeps cdk8s, the DSL, the compiled schema and the YAML of unchanged
 *   documents in memory and re-evaluates the app's own modules on each change. The app's
 *   code runs only there. A worker whose RSS passes `maxWorkerRssMiB` (old module instances
 *   are never freed by Node) is replaced after its run; its successor starts cold.
 * - `process`: any other command runs as a child process per change, as `virtops synth` does.
 *
 * Files are renamed into the output directory one by one from a staging directory beside it,
 * so each file is replaced atomically; a reader may see some files of a new synthesis and
 * not yet others for the few milliseconds of the renames.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { watch, type FSWatcher } from 'chokidar';
import { listFiles, resolveConfig, SynthError, synthInto, type ProjectConfig, type SynthOptions } from './run.js';
import { appEntry, isRelevantChange, planWrites } from './watch-plan.js';
import type { WatchReply, WatchRequest } from './watch-protocol.js';

export interface WatchOptions extends SynthOptions {
  /** Quiet time after a change before synthesizing (editors write in bursts). @default 25 */
  readonly debounceMs?: number;
  /** Replace the worker after a run leaves it above this RSS. @default 1024 */
  readonly maxWorkerRssMiB?: number;
  /** Force the child-process mode even when a worker could run the app. */
  readonly noWorker?: boolean;
}

export interface WatchUpdate {
  generation: number;
  mode: 'worker' | 'process';
  /** Relative paths written / removed in the output directory. */
  written: string[];
  removed: string[];
  unchanged: number;
  objects: number;
  /** From the change (or start) to the output directory updated, milliseconds. */
  ms: number;
  /** Set when nothing was written: the app's failure or every invalid manifest, by field. */
  error?: string;
  /** Worker mode: the app's run (import + synth), the validation, the worker's CPU time; milliseconds. */
  appMs?: number;
  validateMs?: number;
  cpuMs?: number;
}

export interface SynthWatcher {
  /** The first synthesis (done at start, like `virtops synth`). */
  readonly first: Promise<WatchUpdate>;
  readonly out: string;
  readonly mode: 'worker' | 'process';
  /** Resolves after the synthesis under way (if any); stops the watch and the worker. */
  close(): Promise<void>;
}

const WORKER = fileURLToPath(new URL('./watch-worker.ts', import.meta.url));

function tsxImport(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

function packageType(file: string): string | undefined {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { type?: string }).type ?? 'commonjs';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

const sha256 = (content: Buffer | string): string => createHash('sha256').update(content).digest('hex');

/**
 * What the output directory holds: relative path → content hash, kept up to date cheaply.
 * Each refresh lists the directory and stats every file; only a file whose size, mtime or
 * inode changed since it was last seen (someone edited, restored or deleted it behind the
 * watch's back) is read and hashed again.
 */
class OutputState {
  readonly hashes = new Map<string, string>();
  private readonly seen = new Map<string, string>();

  constructor(private readonly dir: string) {}

  async refresh(): Promise<void> {
    let files: string[];
    try {
      files = await listFiles(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      files = [];
    }
    const present = new Set(files);
    for (const f of [...this.hashes.keys()]) {
      if (!present.has(f)) {
        this.hashes.delete(f);
        this.seen.delete(f);
      }
    }
    for (const f of files) {
      const p = path.join(this.dir, f);
      const st = await fs.stat(p).catch(() => undefined);
      if (!st) continue;
      const id = `${st.size}:${st.mtimeMs}:${st.ino}`;
      if (this.seen.get(f) === id && this.hashes.has(f)) continue;
      this.hashes.set(f, sha256(await fs.readFile(p)));
      this.seen.set(f, id);
    }
  }

  /** Records a file the watch just wrote (renamed into place) with content hash `hash`. */
  async wrote(file: string, hash: string): Promise<void> {
    const st = await fs.stat(path.join(this.dir, file));
    this.hashes.set(file, hash);
    this.seen.set(file, `${st.size}:${st.mtimeMs}:${st.ino}`);
  }

  removed(file: string): void {
    this.hashes.delete(file);
    this.seen.delete(file);
  }
}

async function hashDir(dir: string): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const f of await listFiles(dir)) hashes.set(f, sha256(await fs.readFile(path.join(dir, f))));
  return hashes;
}

/** A forked worker with one request in flight at most. */
class Worker {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private pending: ((reply: WatchReply | Error) => void) | undefined;
  exited = false;

  constructor(entry: string, roots: string[], cfg: ProjectConfig) {
    this.child = fork(WORKER, [entry, JSON.stringify(roots), cfg.app], {
      cwd: cfg.cwd,
      execArgv: ['--import', tsxImport()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', (m: WatchReply) => (m.type === 'ready' ? resolve() : reject(new Error(`watch worker: unexpected ${m.type}`))));
      this.child.once('exit', (code, signal) => reject(new Error(`the synth worker exited at start (${code ?? signal})`)));
    });
    this.ready.catch(() => {});
    this.child.on('message', (m: WatchReply) => {
      if (m.type !== 'result') return;
      const p = this.pending;
      this.pending = undefined;
      p?.(m);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const p = this.pending;
      this.pending = undefined;
      // The app may call process.exit or crash the worker: report it as the app's failure.
      p?.(new SynthError(`the app '${cfg.app}' ended the synth worker (exit ${code ?? signal}); it will be restarted on the next change`));
    });
  }

  async run(req: WatchRequest): Promise<WatchReply> {
    await this.ready;
    if (this.exited) throw new SynthError('the synth worker is gone');
    return new Promise((resolve, reject) => {
      this.pending = (r) => (r instanceof Error ? reject(r) : resolve(r));
      this.child.send(req);
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  }
}

/** Starts the watch: synthesizes once (see `first`), then on every relevant change. */
export async function watchSynth(opts: WatchOptions, onUpdate: (u: WatchUpdate) => void): Promise<SynthWatcher> {
  let cfg = await resolveConfig(opts);
  const configFile = path.join(cfg.cwd, 'cdk8s.yaml');
  const debounceMs = opts.debounceMs ?? 25;
  const maxRss = (opts.maxWorkerRssMiB ?? 1024) * 1024 * 1024;

  let entry: string | undefined;
  let roots: string[] = [];
  const setup = (): void => {
    entry = opts.noWorker ? undefined : appEntry(cfg.app, cfg.cwd, packageType);
    // The app's directory (vms/ for `tsx vms/main.ts`); for other commands, vms/ by convention.
    roots = [entry ? path.dirname(entry) : path.join(cfg.cwd, 'vms')];
  };
  setup();
  let worker: Worker | undefined;
  let current = new OutputState(cfg.out);
  let generation = 0;
  let running: Promise<void> | undefined;
  let dirty = false;
  let dirtySince = 0;
  let configChanged = false;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const synthesize = async (since: number): Promise<WatchUpdate> => {
    const gen = ++generation;
    const base: Omit<WatchUpdate, 'ms'> = { generation: gen, mode: entry ? 'worker' : 'process', written: [], removed: [], unchanged: 0, objects: 0 };
    await fs.mkdir(path.dirname(cfg.out), { recursive: true });
    const staging = await fs.mkdtemp(path.join(path.dirname(cfg.out), `.${path.basename(cfg.out)}.watch-`));
    try {
      let emitted: Map<string, string>;
      let objects: number;
      if (entry) {
        if (!worker || worker.exited) worker = new Worker(entry, roots, cfg);
        const reply = await worker.run({ type: 'synth', generation: gen, staging });
        if (reply.type !== 'result') throw new Error('watch worker: unexpected reply');
        if (reply.rss > maxRss) {
          const old = worker;
          worker = undefined;
          void old.stop();
        }
        Object.assign(base, { appMs: reply.appMs, validateMs: reply.validateMs, cpuMs: reply.cpuMs });
        if (reply.error !== undefined) return { ...base, ms: performance.now() - since, error: reply.error };
        emitted = new Map(Object.entries(reply.files ?? {}));
        objects = reply.objects ?? 0;
      } else {
        const result = await synthInto(staging, cfg);
        emitted = await hashDir(staging);
        objects = result.objects;
      }
      await current.refresh();
      const plan = planWrites(emitted, current.hashes);
      await fs.mkdir(cfg.out, { recursive: true });
      for (const file of plan.write) {
        const to = path.join(cfg.out, file);
        await fs.mkdir(path.dirname(to), { recursive: true });
        await fs.chmod(path.join(staging, file), 0o644);
        await fs.rename(path.join(staging, file), to);
        await current.wrote(file, emitted.get(file)!);
      }
      for (const file of plan.remove) {
        await fs.rm(path.join(cfg.out, file), { force: true });
        current.removed(file);
      }
      return { ...base, written: plan.write, removed: plan.remove, unchanged: plan.unchanged, objects, ms: performance.now() - since };
    } catch (err) {
      if (!(err instanceof SynthError)) throw err;
      return { ...base, ms: performance.now() - since, error: err.message };
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  };

  const reconfigure = async (): Promise<void> => {
    configChanged = false;
    const before = `${cfg.app}\n${cfg.out}`;
    try {
      cfg = await resolveConfig(opts);
    } catch (err) {
      onUpdate({ generation, mode: entry ? 'worker' : 'process', written: [], removed: [], unchanged: 0, objects: 0, ms: 0, error: (err as Error).message });
      return;
    }
    if (`${cfg.app}\n${cfg.out}` === before) return;
    await worker?.stop();
    worker = undefined;
    setup();
    current = new OutputState(cfg.out);
  };

  let failed: (err: Error) => WatchUpdate;
  const loop = async (): Promise<void> => {
    while (dirty && !closed) {
      dirty = false;
      if (configChanged) await reconfigure();
      const update = await synthesize(dirtySince).catch(failed);
      if (!closed) onUpdate(update);
    }
    running = undefined;
  };

  const changed = (file: string): void => {
    if (closed) return;
    if (file === configFile) configChanged = true;
    else if (!isRelevantChange(file, cfg.cwd, cfg.out)) return;
    if (!dirty) dirtySince = performance.now();
    dirty = true;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      running ??= loop();
    }, debounceMs);
  };

  failed = (err: Error): WatchUpdate => ({
    generation, mode: entry ? 'worker' : 'process', written: [], removed: [], unchanged: 0, objects: 0, ms: 0, error: `synth --watch: ${err.message}`,
  });
  const first = synthesize(performance.now()).catch(failed).then((update) => {
    onUpdate(update);
    return update;
  });
  // Changes during the first synthesis wait for it.
  running = first.then(() => {
    running = undefined;
    if (dirty && !timer) running = loop();
  });
  let watcher: FSWatcher | undefined = watch([...roots, configFile], { ignoreInitial: true, ignored: (p: string) => p.includes(`${path.sep}node_modules${path.sep}`) || p.endsWith(`${path.sep}node_modules`) });
  watcher.on('all', (_event, file) => changed(path.resolve(cfg.cwd, file)));
  const watcherReady = new Promise<void>((resolve) => watcher!.once('ready', () => resolve()));
  await watcherReady;

  return {
    first,
    out: cfg.out,
    mode: entry ? 'worker' : 'process',
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await watcher?.close();
      watcher = undefined;
      await first;
      await running;
      await worker?.stop();
    },
  };
}

/** One line (or, on error, the error's lines) per synthesis, for the CLI. */
export function formatUpdate(u: WatchUpdate): string {
  const ms = `${Math.round(u.ms)} ms`;
  if (u.error !== undefined) return `synth #${u.generation} failed after ${ms}; nothing was written:\n${u.error}`;
  const parts = [
    u.written.length ? `wrote ${u.written.join(', ')}` : 'no file changed',
    ...(u.removed.length ? [`removed ${u.removed.join(', ')}`] : []),
  ];
  return `synth #${u.generation} (${u.objects} objects) in ${ms}: ${parts.join('; ')}${u.unchanged ? ` (${u.unchanged} unchanged)` : ''}`;
}
