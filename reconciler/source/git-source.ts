/**
 * GitSource: watches one branch of a git repository and yields validated revisions.
 *
 * - Local repositories (a path) are watched with chokidar; remote URLs (any git URL,
 *   `file://` included) are polled with `git ls-remote`. Both also resync periodically.
 * - Events are only hints: on any of them the branch is re-read and compared by SHA, so a
 *   missed, merged or mislabelled event costs latency, never correctness (git rewrites
 *   refs through lock files and `pack-refs` moves them into packed-refs).
 * - A new SHA is fetched into a private cache repository and its dist/ read from the git
 *   objects and validated (as data: nothing from the commit runs; files the last read
 *   parsed are not parsed again), and, only when `freshness` is asked for, its synth checked
 *   in a sandbox on a throw-away worktree (freshness.ts). The result is a `Revision`, or a
 *   `RevisionRefused` that leaves the last good revision current.
 *
 *   const source = new GitSource({ repo: '/srv/git/vms.git', branch: 'main' });
 *   source.on('revision', (r) => apply(r));
 *   await source.start();
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, relative, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'chokidar';
import { pino, type Logger } from 'pino';
import type { ObjectKey, Revision, RevisionRefused } from '../core/types.js';
import { manifestHash, objectKey } from '../core/inventory.js';
import { checkFreshness, type FreshnessOptions } from './freshness.js';
import { sandboxLimitProblems, sandboxUnavailable } from './sandbox.js';
import * as g from './git.js';
import { isManifestPath, parseManifestFiles, type ParsedFileCache, type Validator } from './manifests.js';

export interface GitSourceOptions {
  /** A local repository path (bare or not) or any git URL (`https://`, `ssh://`, `file://`, `host:path`). */
  repo: string;
  /** Default `main`. */
  branch?: string;
  /** Directory of manifests inside the repository. Default `dist`. */
  distPath?: string;
  /** Default: `watch` for a local path, `poll` for a URL. */
  mode?: 'watch' | 'poll';
  /** Poll interval for remotes. Default 30 s. */
  pollIntervalMs?: number;
  /** Periodic re-read in either mode, to heal missed events. Default 5 min. */
  resyncIntervalMs?: number;
  /**
   * Quiet time after a filesystem event before re-reading the ref. Default 20 ms: enough to
   * take a push's burst (lock file, rename) as one check. Correctness does not depend on it (a
   * check reads the ref; an event during a check causes one more), and it is on the path of
   * every push, so it is kept short.
   */
  debounceMs?: number;
  /**
   * Where the private cache repository and worktrees live. Default: a new temp directory,
   * removed on stop(); a given directory is kept (as a warm cache) but its worktrees are not.
   */
  cacheDir?: string;
  /**
   * The opt-in synth verifier (CLI: `--verify-synth`): `true` or options run `synth --check`
   * on each commit in the sandbox of sandbox.ts. Default off: dist/ is data, and code from the
   * repository never runs here (its own CI checks freshness).
   */
  freshness?: FreshnessOptions | boolean;
  /** Refuse commits whose dist/ holds no manifests (protects against pruning everything). Default true. */
  refuseEmpty?: boolean;
  /** Default: validateManifest from api/validate.ts. */
  validate?: Validator;
  logger?: Logger;
  /** Metrics hook: called after every check. */
  onCheck?: (info: CheckInfo) => void;
}

export type CheckTrigger = 'start' | 'watch' | 'poll' | 'resync' | 'webhook' | 'manual';

export interface CheckInfo {
  trigger: CheckTrigger;
  outcome: 'unchanged' | 'revision' | 'refused' | 'missing-branch' | 'error';
  sha?: string;
  durationMs: number;
  /** With outcome `error`: what failed. */
  error?: string;
}

export interface SourceCounters {
  checks: number;
  revisions: number;
  refused: number;
  errors: number;
}

export type SourceEvent = { type: 'revision'; revision: SourceRevision } | { type: 'refused'; refused: RevisionRefused };

/** A revision plus where each manifest came from (`dist/file.yaml#doc`). */
export interface SourceRevision extends Revision {
  origins: string[];
}

export class GitSource extends EventEmitter {
  readonly branch: string;
  readonly mode: 'watch' | 'poll';
  readonly counters: SourceCounters = { checks: 0, revisions: 0, refused: 0, errors: 0 };
  private readonly opts: GitSourceOptions;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private cacheRoot?: string;
  private ownsCacheRoot = false;
  private gitDir?: string;
  private watcher?: FSWatcher;
  private timers: NodeJS.Timeout[] = [];
  private debounceTimer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private again: CheckTrigger | undefined;
  private lastChecked?: string;
  private good?: SourceRevision;
  private started = false;
  private stopped = false;
  private readonly iterators = new Set<(e: SourceEvent | undefined) => void>();
  private checkouts: Promise<unknown> = Promise.resolve();
  /** The files the last read parsed without an issue, by blob (manifests.ts). */
  private parsedFiles: ParsedFileCache = new Map();

  constructor(opts: GitSourceOptions) {
    super();
    if (!opts.repo) throw new Error('GitSource: repo is required (a local repository path or a git URL)');
    this.opts = opts;
    this.branch = opts.branch ?? 'main';
    if (!/^[\w.\-/]+$/.test(this.branch) || this.branch.includes('..')) {
      throw new Error(`GitSource: branch "${this.branch}" is not a valid branch name`);
    }
    this.mode = opts.mode ?? (isLocalPath(opts.repo) ? 'watch' : 'poll');
    this.log = (opts.logger ?? pino({ name: 'virtops-source', level: process.env.VIRTOPS_LOG_LEVEL ?? 'info' })).child({
      component: 'source',
      repo: opts.repo,
      branch: this.branch,
    });
  }

  /** The last good revision, if any. */
  get current(): SourceRevision | undefined {
    return this.good;
  }

  /** Prepare the cache, start watching/polling and run the first check. */
  async start(): Promise<void> {
    if (this.started) throw new Error('GitSource: start() called twice');
    this.started = true;
    if (this.freshness) {
      // Fail at start, with the fix, rather than refuse every commit later.
      const problem = sandboxUnavailable() ?? sandboxLimitProblems(this.freshness.sandbox).join('; ');
      if (problem) throw new Error(`GitSource: ${problem}`);
    }
    const signal = this.abort.signal;
    if (this.opts.cacheDir) {
      this.cacheRoot = this.opts.cacheDir;
      await mkdir(this.cacheRoot, { recursive: true });
    } else {
      this.cacheRoot = await mkdtemp(join(tmpdir(), 'virtops-source-'));
      this.ownsCacheRoot = true;
    }
    if (!existsSync(this.cacheRepo)) await g.initCacheRepo(this.cacheRepo, { signal });
    await rm(this.worktreesDir, { recursive: true, force: true });
    await g.pruneWorktrees(this.cacheRepo, { signal });

    if (this.mode === 'watch') {
      this.gitDir = await g.resolveGitDir(this.opts.repo, { signal });
      await this.startWatcher(this.gitDir);
    } else {
      this.every(this.opts.pollIntervalMs ?? 30_000, 'poll');
    }
    this.every(this.opts.resyncIntervalMs ?? 300_000, 'resync');
    this.log.info({ mode: this.mode }, 'source started');
    await this.checkNow('start');
  }

  /**
   * Re-read the branch now (webhooks call this). Resolves when that check (and any check
   * requested while it ran) is done. Never rejects: failures are logged and counted.
   */
  checkNow(trigger: CheckTrigger = 'manual'): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.inFlight) {
      this.again = trigger;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      let next: CheckTrigger | undefined = trigger;
      while (next && !this.stopped) {
        this.again = undefined;
        await this.checkOnce(next);
        next = this.again;
      }
    })().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Async iteration over revisions and refusals, ending when the source stops. */
  events(): AsyncIterable<SourceEvent> {
    const queue: SourceEvent[] = [];
    let wake: (() => void) | undefined;
    let done = this.stopped;
    const push = (e: SourceEvent | undefined) => {
      if (e) queue.push(e);
      else done = true;
      wake?.();
    };
    this.iterators.add(push);
    const iterators = this.iterators;
    return {
      [Symbol.asyncIterator]: () => ({
        async next(): Promise<IteratorResult<SourceEvent>> {
          while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
          const value = queue.shift();
          if (value) return { value, done: false };
          iterators.delete(push);
          return { value: undefined, done: true };
        },
        async return(): Promise<IteratorResult<SourceEvent>> {
          iterators.delete(push);
          return { value: undefined, done: true };
        },
      }),
    };
  }

  /** Stop watching and polling, cancel a running check, remove worktrees (and an owned cache). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    await this.watcher?.close();
    await this.inFlight?.catch(() => undefined);
    if (this.cacheRoot) {
      if (this.ownsCacheRoot) await rm(this.cacheRoot, { recursive: true, force: true });
      else {
        await rm(this.worktreesDir, { recursive: true, force: true });
        await g.pruneWorktrees(this.cacheRepo).catch(() => undefined);
      }
    }
    for (const push of this.iterators) push(undefined);
    this.iterators.clear();
    this.log.info('source stopped');
  }

  // ---- internals ------------------------------------------------------------------------

  /** The verifier's options when it is on. */
  private get freshness(): FreshnessOptions | undefined {
    const f = this.opts.freshness;
    return f === true ? {} : f === false || f === undefined ? undefined : f;
  }

  private get cacheRepo(): string {
    return join(this.cacheRoot as string, 'repo.git');
  }

  private get worktreesDir(): string {
    return join(this.cacheRoot as string, 'worktrees');
  }

  private every(ms: number, trigger: CheckTrigger): void {
    if (ms <= 0) return;
    this.timers.push(setInterval(() => void this.checkNow(trigger), ms));
  }

  private async startWatcher(gitDir: string): Promise<void> {
    // Watch the repository root and let through only the ref storage: watching refs/heads
    // and packed-refs directly misses the first push when packed-refs does not exist yet.
    const allowed = (path: string): boolean => {
      const rel = relative(gitDir, path).split(sep).join('/');
      return rel === '' || rel === 'refs' || rel === 'refs/heads' || rel.startsWith('refs/heads/') || rel === 'packed-refs';
    };
    const watcher = watch(gitDir, { ignoreInitial: true, ignored: (path: string) => !allowed(path) });
    this.watcher = watcher;
    watcher.on('all', (event, path) => {
      this.log.debug({ event, path }, 'ref storage changed');
      if (this.debounceTimer) clearTimeout(this.debounceTimer);
      this.debounceTimer = setTimeout(() => void this.checkNow('watch'), this.opts.debounceMs ?? 20);
    });
    watcher.on('error', (err) => this.log.warn({ err }, 'watcher error; the periodic resync still runs'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  }

  private async checkOnce(trigger: CheckTrigger): Promise<void> {
    const began = Date.now();
    const signal = this.abort.signal;
    this.counters.checks++;
    const report = (outcome: CheckInfo['outcome'], sha?: string, error?: string) => {
      const info: CheckInfo = { trigger, outcome, durationMs: Date.now() - began, ...(sha ? { sha } : {}), ...(error ? { error } : {}) };
      try {
        this.opts.onCheck?.(info);
      } catch (err) {
        this.log.warn({ err }, 'onCheck hook threw');
      }
    };
    try {
      const tip =
        this.mode === 'watch'
          ? await g.readLocalBranch(this.gitDir as string, this.branch, { signal })
          : await g.readRemoteBranch(this.opts.repo, this.branch, { signal });
      if (!tip) {
        this.log.warn({ trigger }, `branch ${this.branch} not found; waiting for it to appear`);
        return report('missing-branch');
      }
      if (tip === this.lastChecked) return report('unchanged', tip);
      const sha = await g.fetchBranch(this.cacheRepo, this.opts.repo, this.branch, { signal });
      if (sha === this.lastChecked) return report('unchanged', sha);
      const verdict = await this.evaluate(sha, signal);
      if (this.stopped) return;
      this.lastChecked = sha;
      if ('errors' in verdict) {
        this.counters.refused++;
        this.log.warn({ sha, trigger, errors: verdict.errors, current: this.good?.sha }, 'revision refused; keeping the last good revision');
        this.publish({ type: 'refused', refused: verdict });
        return report('refused', sha);
      }
      this.good = verdict;
      this.counters.revisions++;
      this.log.info({ sha, trigger, manifests: verdict.manifests.length }, 'new revision');
      this.publish({ type: 'revision', revision: verdict });
      return report('revision', sha);
    } catch (err) {
      if (this.stopped) return;
      this.counters.errors++;
      this.log.error({ err, trigger }, 'source check failed; will retry on the next event, poll or resync');
      return report('error', undefined, (err as Error).message);
    }
  }

  private publish(e: SourceEvent): void {
    if (e.type === 'revision') this.emit('revision', e.revision);
    else this.emit('refused', e.refused);
    for (const push of this.iterators) push(e);
  }

  /**
   * Which of `keys` a good commit after `base` and before `sha` changed, created or removed,
   * compared commit by commit. An override lasts until the next commit that changes its VM,
   * and a commit the reconciler never applied (a newer one was fetched first, or it was down)
   * is still such a commit: `base` → A (changes the VM) → B (changes it back) must clear the
   * override although `base` and B declare the same VM. Commits that would have been refused
   * (their dist/ does not parse or validate) do not count; neither does history when `base`
   * is not an ancestor of `sha` (a force-push: only the net change is known).
   */
  async changedBetween(base: string, sha: string, keys: readonly ObjectKey[]): Promise<ObjectKey[]> {
    if (keys.length === 0 || base === sha) return [];
    const signal = this.abort.signal;
    const gitDir = ['--git-dir', this.cacheRepo];
    const ancestor = await g.git([...gitDir, 'merge-base', '--is-ancestor', base, sha], { signal }).then(() => true, () => false);
    if (!ancestor) return [];
    const distPath = this.opts.distPath ?? 'dist';
    const between = (await g.git([...gitDir, 'rev-list', '--reverse', '--ancestry-path', `${base}..${sha}`, '--', distPath], { signal }))
      .split('\n').filter((c) => c && c !== sha);
    if (between.length === 0) return [];
    const wanted = new Set(keys);
    const hashesAt = async (commit: string): Promise<Map<ObjectKey, string> | undefined> => {
      const read = await this.readCommit(commit, signal, false);
      if ('errors' in read) return undefined;
      const out = new Map<ObjectKey, string>();
      for (const m of read.manifests) {
        const k = objectKey(m);
        if (wanted.has(k)) out.set(k, manifestHash(m));
      }
      return out;
    };
    let previous = await hashesAt(base);
    if (!previous) return [];
    const changed = new Set<ObjectKey>();
    for (const commit of between) {
      const now = await hashesAt(commit);
      if (!now) continue; // refused: never applied, changes nothing
      for (const k of wanted) if (now.get(k) !== previous.get(k)) changed.add(k);
      previous = now;
      if (changed.size === wanted.size) break;
    }
    return [...changed].sort();
  }

  private async evaluate(sha: string, signal: AbortSignal): Promise<SourceRevision | RevisionRefused> {
    return this.readCommit(sha, signal, true);
  }

  /**
   * A commit's dist/, read from the cache repository's objects, parsed and validated (and its
   * synth checked in a checkout when `fresh` and asked for). One at a time: the parse cache is
   * replaced by each read, and `worktree remove` prunes, which must not race another checkout.
   */
  private readCommit(sha: string, signal: AbortSignal, fresh: boolean): Promise<SourceRevision | RevisionRefused> {
    const run = this.checkouts.then(() => this.readDist(sha, signal, fresh));
    this.checkouts = run.catch(() => undefined);
    return run;
  }

  private async readDist(sha: string, signal: AbortSignal, fresh: boolean): Promise<SourceRevision | RevisionRefused> {
    const distPath = this.distPath;
    const tree = await g.listTreeFiles(this.cacheRepo, sha, distPath, { signal });
    if (!tree) return { sha, errors: [`${distPath}/ does not exist in commit ${sha} (fix: run synth and commit ${distPath}/)`] };
    // Only files whose blob the last read did not parse are read and parsed: a push that
    // changes one VM of 1,000 parses one file.
    const yamlFiles = tree.filter((f) => isManifestPath(f.path));
    const texts = await g.readBlobs(this.cacheRepo, [...new Set(yamlFiles.filter((f) => !this.parsedFiles.has(f.blob)).map((f) => f.blob))], { signal });
    const parsed = parseManifestFiles(yamlFiles.map((f) => ({ path: f.path, blob: f.blob, text: texts.get(f.blob) ?? '' })), this.opts.validate, this.parsedFiles);
    this.parsedFiles = parsed.cache;
    if (parsed.errors.length > 0) return { sha, errors: parsed.errors };
    if (parsed.manifests.length === 0 && this.opts.refuseEmpty !== false) {
      return { sha, errors: [`${distPath}/ holds no manifests in commit ${sha}: refusing to prune everything (fix: commit the synthesized manifests)`] };
    }
    const freshness = fresh ? this.freshness : undefined;
    if (freshness) {
      const verdict = await this.inWorktree(sha, signal, (dir) => checkFreshness(dir, distPath, freshness, signal));
      if (!verdict.fresh) return { sha, errors: verdict.errors };
    }
    return { sha, manifests: parsed.manifests, origins: parsed.origins };
  }

  /** dist/'s path in the repository, without `./` or a trailing slash (as `git ls-tree` names it). */
  private get distPath(): string {
    return posix.normalize(this.opts.distPath ?? 'dist').replace(/\/+$/, '');
  }

  /** Runs `use` on a throw-away checkout of `sha`, removed afterwards. */
  private async inWorktree<T>(sha: string, signal: AbortSignal, use: (dir: string) => Promise<T>): Promise<T> {
    await mkdir(this.worktreesDir, { recursive: true });
    const dir = join(this.worktreesDir, `${sha.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    try {
      await g.addWorktree(this.cacheRepo, dir, sha, { signal });
      return await use(dir);
    } finally {
      await g.removeWorktree(this.cacheRepo, dir).catch(async (err: unknown) => {
        this.log.warn({ err, dir }, 'could not remove worktree through git; deleting it');
        await rm(dir, { recursive: true, force: true });
      });
    }
  }
}

/** A filesystem path (absolute or relative) rather than a URL or scp-like `host:path`. */
export function isLocalPath(repo: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo)) return false;
  if (/^[^/]+:/.test(repo)) return false; // user@host:path
  return true;
}
