/**
 * Pure decisions of `virtops synth --watch` (synth/watch.ts): which module the long-lived
 * worker can load for an app command, and which output files a new synthesis changes.
 */
import path from 'node:path';

/** Runners whose `<runner> <file>` command line the worker can replace by importing <file>. */
const RUNNERS = new Set(['tsx', 'node', 'ts-node', 'ts-node-esm']);
/** npx flags that do not change what runs. */
const NPX_FLAGS = new Set(['--yes', '-y', '--no-install', '--quiet', '-q']);

/**
 * The ES module an app command runs (`npx tsx vms/main.ts` → `<cwd>/vms/main.ts`), or
 * undefined when the command is anything else (a shell pipeline, extra flags or arguments, a
 * CommonJS file, a package without `"type": "module"` for .ts/.js), which the worker could
 * not reproduce exactly: then every change runs the app as a child process instead.
 *
 * @param packageType `type` of the package.json nearest to the file (undefined: none/CommonJS)
 */
export function appEntry(app: string, cwd: string, packageType: (file: string) => string | undefined): string | undefined {
  if (/[;&|<>$`'"\\(){}*?!~#=]/.test(app)) return undefined;
  const tokens = app.trim().split(/\s+/);
  if (tokens[0] === 'npx') {
    tokens.shift();
    while (tokens.length && NPX_FLAGS.has(tokens[0]!)) tokens.shift();
  }
  if (tokens.length !== 2 || !RUNNERS.has(path.basename(tokens[0]!))) return undefined;
  const file = tokens[1]!;
  if (file.startsWith('-')) return undefined;
  const abs = path.resolve(cwd, file);
  if (/\.m[tj]s$/.test(abs)) return abs;
  if (/\.[tj]s$/.test(abs) && packageType(abs) === 'module') return abs;
  return undefined;
}

export interface WritePlan {
  /** Emitted files whose content differs from the output directory's (or that it lacks). */
  write: string[];
  /** Files in the output directory the app no longer emits. */
  remove: string[];
  unchanged: number;
}

/**
 * What to do to the output directory: `emitted` and `current` map each relative file path to
 * a hash of its content (current: what the output directory holds now).
 */
export function planWrites(emitted: ReadonlyMap<string, string>, current: ReadonlyMap<string, string>): WritePlan {
  const write: string[] = [];
  let unchanged = 0;
  for (const [file, hash] of emitted) {
    if (current.get(file) === hash) unchanged++;
    else write.push(file);
  }
  const remove = [...current.keys()].filter((f) => !emitted.has(f));
  return { write: write.sort(), remove: remove.sort(), unchanged };
}

/**
 * Whether a changed path (absolute) should start a synthesis: not inside the output directory
 * or its staging directories (`.<out>.…` beside it), node_modules, or a dot-directory or
 * dot-file (.git, editors' swap files) below the project directory `cwd`.
 */
export function isRelevantChange(file: string, cwd: string, out: string): boolean {
  const inside = (dir: string): boolean => {
    const rel = path.relative(dir, file);
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  };
  if (inside(out)) return false;
  if (path.dirname(file) === path.dirname(out) && path.basename(file).startsWith(`.${path.basename(out)}.`)) return false;
  const rel = path.relative(cwd, file);
  const parts = rel.startsWith('..') || path.isAbsolute(rel) ? [path.basename(file)] : rel.split(path.sep);
  return !parts.some((part) => part === 'node_modules' || (part.startsWith('.') && part !== '.' && part !== '..'));
}
