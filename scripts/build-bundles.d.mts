/** Types of scripts/build-bundles.mjs (plain JavaScript: cli/bin.js loads it before any TypeScript loader). */
export interface LauncherBundle {
  /** The bundle directory (entry.mjs and its chunks; the launcher's: entry.mjs, code-cache.mjs, bundle.cjs and its V8 code cache). */
  dir: string;
  /** entry.mjs: `node <entry> launcher|launcher-monitor <flags>`. */
  entry: string;
}

/** The fresh bundle, built (in a child process) when its sources changed; undefined after `warn` when it cannot be built. */
export function launcherBundle(opts?: { warn?: (message: string) => void }): Promise<LauncherBundle | undefined>;

/** As launcherBundle, for `up`, `controller` and `agent` (entry.mjs runs reconciler/entry.ts: `node <entry> up|controller|agent <flags>`). */
export function reconcilerBundle(opts?: { warn?: (message: string) => void }): Promise<LauncherBundle | undefined>;

/** As launcherBundle, for bench/pool-bin.mjs (benchmarks only: `up` with the pool runtime, and the pool's host process). */
export function benchPoolBundle(opts?: { warn?: (message: string) => void }): Promise<LauncherBundle | undefined>;

/** The key of a bundle built from `inputs` (paths relative to `repo`). */
export function keyOf(inputs: readonly string[], repo?: string): string;

/** The stats (size, mtime, ctime, inode) of the files keyOf(inputs) reads, as one string: unchanged stats, unchanged contents. */
export function statsOf(inputs: readonly string[], repo?: string): string;

/** Marks a bundle directory as in use (spared by pruning). */
export function touch(dir: string): void;

/** The npm package's bundles, one directory per bundle under `outRoot` (the package's build/bundles). */
export function buildPackageBundles(outRoot: string): Promise<void>;
