/**
 * `virtops init DIR [--name NAME] [--virtops-from TARBALL|DIR]`: scaffold a VMs-as-code
 * repository.
 *
 * Functional core: `scaffoldFiles` renders every file from templates/init/ (pure, given the
 * template texts, the running virtops' package.json and the dependency spec). Imperative
 * shell: `initProject` checks DIR, writes the files, runs `git init` and makes the first commit.
 *
 * The scaffold carries its own freshness check (ci/check-dist.sh, run by the GitHub Actions
 * and GitLab CI files): the reconciler applies dist/ as data and runs no repository code.
 *
 * The scaffold depends on virtops by a version range (`^<this version>`), like any npm
 * package; `--virtops-from` points it at a packed tarball or a directory instead (offline or
 * unpublished use), by an absolute `file:` spec: npm ci resolves that the same from any
 * directory (the synth verifier installs the lockfile elsewhere), a relative one would not.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { packageRoot } from './version.js';

/**
 * Root of the virtops package this CLI runs from: the checkout (cli/commands/init.ts) or the
 * installed package (build/cli/commands/init.js), i.e. the nearest directory above with a
 * package.json named virtops.
 */
export const VIRTOPS_ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));
export const TEMPLATE_DIR = path.join(VIRTOPS_ROOT, 'templates/init');

/** Packages the scaffold pins to the same versions as virtops itself. */
const PINNED_DEPENDENCIES = ['cdk8s', 'cdk8s-plus-33', 'constructs', 'yaml'] as const;
const PINNED_DEV_DEPENDENCIES = ['@types/node', 'tsx', 'typescript', 'vitest'] as const;

/** npm package names (lower case; what `--name` must look like). */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9._-]*$/;

export class InitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InitError';
  }
}

export interface VirtopsPackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  exports?: Record<string, unknown>;
}

export interface ScaffoldInput {
  /** Project (package) name. */
  readonly name: string;
  /**
   * Where the scaffold gets virtops: `{ range }` from a registry (default `^<version>`), or
   * `{ from, kind }` a local tarball or directory (absolute path).
   */
  readonly virtops: VirtopsSource;
  /** virtops' own package.json (versions to pin, exports to import from). */
  readonly virtopsPackage: VirtopsPackageJson;
  /** Template files by relative path (`_name` → `.name` for gitignore, npmrc, github, gitlab-ci.yml: npm drops some dotfiles when packing). */
  readonly templates: ReadonlyMap<string, string>;
}

export type VirtopsSource = { readonly range: string } | { readonly from: string; readonly kind: 'tarball' | 'dir' };

/** The package.json spec of the virtops dependency. Pure. */
export function virtopsSpec(source: VirtopsSource): string {
  return 'range' in source ? source.range : `file:${source.from}`;
}

/** Why `name` cannot be a project name, or undefined. */
export function projectNameProblem(name: string): string | undefined {
  if (name.length > 214) return 'is longer than 214 characters';
  if (!PACKAGE_NAME.test(name)) return 'must be lower-case letters, digits, ".", "_" and "-", starting with a letter or digit';
  return undefined;
}

/**
 * Module specifiers for the DSL and the synth app: the package's `exports` entries when it
 * declares them (`virtops/dsl`, `virtops/synth`), otherwise deep paths into the package
 * (which Node allows only while package.json has no `exports`).
 */
export function virtopsModules(pkg: VirtopsPackageJson): { dslModule: string; synthModule: string } {
  const exported = (key: string): boolean => pkg.exports !== undefined && key in pkg.exports;
  return {
    dslModule: exported('./dsl') ? 'virtops/dsl' : 'virtops/dsl/index.js',
    synthModule: exported('./synth') ? 'virtops/synth' : 'virtops/synth/app.js',
  };
}

/** Every file of the new repository, by relative path. Pure. */
export function scaffoldFiles(input: ScaffoldInput): Map<string, string> {
  const { dslModule, synthModule } = virtopsModules(input.virtopsPackage);
  const values: Record<string, string> = { name: input.name, virtopsSpec: virtopsSpec(input.virtops), dslModule, synthModule };
  const files = new Map<string, string>();
  for (const [rel, text] of [...input.templates].sort(([a], [b]) => a.localeCompare(b))) {
    // install-links (copy, not symlink, a directory dependency) matters only for --virtops-from DIR.
    if (rel === '_npmrc' && !('kind' in input.virtops && input.virtops.kind === 'dir')) continue;
    const target = rel.split('/').map((seg) => seg.replace(/^_(gitignore|npmrc|github|gitlab-ci\.yml)$/, '.$1')).join('/');
    files.set(target, text.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => {
      if (!(key in values)) throw new Error(`template ${rel}: unknown placeholder ${whole}`);
      return values[key]!;
    }));
  }
  files.set('package.json', `${JSON.stringify(packageJson(input), null, 2)}\n`);
  return files;
}

function packageJson(input: ScaffoldInput): Record<string, unknown> {
  const pin = (names: readonly string[]): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const n of names) {
      const version = input.virtopsPackage.dependencies?.[n] ?? input.virtopsPackage.devDependencies?.[n];
      if (version === undefined) throw new Error(`virtops' package.json does not list ${n}; cannot pin it for the scaffold`);
      out[n] = version;
    }
    return out;
  };
  return {
    name: input.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    engines: { node: '>=20.11' },
    scripts: {
      synth: 'virtops synth',
      check: 'virtops synth --check',
      typecheck: 'tsc --noEmit',
      test: 'tsc --noEmit && vitest run',
    },
    dependencies: { ...pin(PINNED_DEPENDENCIES), virtops: virtopsSpec(input.virtops) },
    devDependencies: pin(PINNED_DEV_DEPENDENCIES),
  };
}

/** Reads templates/init/ recursively: relative path → text. */
export async function readTemplates(dir = TEMPLATE_DIR): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const abs = path.join(entry.parentPath, entry.name);
    out.set(path.relative(dir, abs).split(path.sep).join('/'), await fs.readFile(abs, 'utf8'));
  }
  return out;
}

export interface InitOptions {
  readonly dir: string;
  /** @default basename of dir */
  readonly name?: string;
  /** @default VIRTOPS_ROOT: the package this CLI runs from (its version, pins and templates) */
  readonly virtopsRoot?: string;
  /** A packed virtops tarball or a virtops directory to depend on instead of `^<version>`. */
  readonly virtopsFrom?: string;
}

export interface InitResult {
  readonly dir: string;
  readonly name: string;
  readonly files: string[];
  readonly commit: string;
}

/** Scaffolds `dir` (new or empty), then `git init` and a first commit. */
export async function initProject(opts: InitOptions): Promise<InitResult> {
  const dir = path.resolve(opts.dir);
  const name = opts.name ?? path.basename(dir).toLowerCase();
  const problem = projectNameProblem(name);
  if (problem) {
    throw new InitError(`project name "${name}" ${problem}. Fix: pass --name with a name such as my-vms`);
  }
  const virtopsRoot = opts.virtopsRoot ?? VIRTOPS_ROOT;
  const virtopsPackage = JSON.parse(await fs.readFile(path.join(virtopsRoot, 'package.json'), 'utf8')) as VirtopsPackageJson;
  const virtops = opts.virtopsFrom === undefined ? { range: `^${virtopsPackage.version ?? '0.1.0'}` } : await localSource(opts.virtopsFrom);
  await ensureEmptyDir(dir);
  const files = scaffoldFiles({ name, virtops, virtopsPackage, templates: await readTemplates(path.join(virtopsRoot, 'templates/init')) });
  for (const [rel, text] of files) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    // Scripts are committed executable (CI may run them directly).
    await fs.writeFile(path.join(dir, rel), text, { flag: 'wx', mode: rel.endsWith('.sh') ? 0o755 : 0o644 });
  }

  const { execa } = await import('execa');
  await execa('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  await execa('git', ['add', '-A'], { cwd: dir });
  // Use the user's identity; fall back to a neutral one where git has none configured.
  const identity = await execa('git', ['config', 'user.email'], { cwd: dir, reject: false });
  const author = identity.exitCode === 0 && identity.stdout.trim() !== '' ? [] : ['-c', 'user.name=virtops init', '-c', 'user.email=virtops@localhost'];
  await execa('git', [...author, 'commit', '-q', '-m', `Scaffold ${name} with virtops init`], { cwd: dir });
  const commit = (await execa('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim();
  return { dir, name, files: [...files.keys()], commit };
}

/** --virtops-from: an existing tarball (`npm pack` output) or a virtops package directory. */
async function localSource(from: string): Promise<VirtopsSource> {
  const abs = path.resolve(from);
  const stat = await fs.stat(abs).catch(() => undefined);
  if (!stat) throw new InitError(`--virtops-from ${from}: ${abs} does not exist. Fix: pass a tarball made by \`npm pack\` in a virtops checkout (virtops-<version>.tgz) or a virtops package directory`);
  if (stat.isDirectory()) {
    const pkg = await fs.readFile(path.join(abs, 'package.json'), 'utf8').then((t) => JSON.parse(t) as { name?: string }, () => undefined);
    if (pkg?.name !== 'virtops') throw new InitError(`--virtops-from ${from}: ${abs} has no package.json named virtops. Fix: pass a virtops package directory or a tarball made by \`npm pack\``);
    return { from: abs, kind: 'dir' };
  }
  if (!/\.(tgz|tar\.gz)$/.test(abs)) throw new InitError(`--virtops-from ${from}: expected a .tgz tarball (made by \`npm pack\`) or a directory. Fix: pass virtops-<version>.tgz or a virtops directory`);
  return { from: abs, kind: 'tarball' };
}

async function ensureEmptyDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    const stat = await fs.stat(dir);
    if (!stat.isDirectory()) throw new InitError(`${dir} exists and is not a directory. Fix: choose a new directory name`);
    entries = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      await fs.mkdir(dir, { recursive: true });
      return;
    }
    throw err;
  }
  if (entries.length > 0) {
    const shown = entries.sort().slice(0, 5).join(', ') + (entries.length > 5 ? ', ...' : '');
    throw new InitError(`${dir} is not empty (${shown}). Fix: choose a new or empty directory; init never overwrites files`);
  }
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('scaffold a new VMs-as-code repository (package.json, cdk8s.yaml, vms/, a snapshot test, a CI freshness check, git)')
    .argument('<dir>', 'directory to create (must be new or empty)')
    .option('--name <name>', 'package name (default: the directory name)')
    .option('--virtops-from <tarball|dir>', 'depend on this virtops tarball (npm pack) or directory by an absolute file: spec, instead of the version range ^<this version> (offline or unpublished use)')
    .addHelpText('after', '\nExamples:\n  virtops init my-vms\n  virtops init my-vms --virtops-from ./virtops-0.1.0.tgz')
    .action(async (dir: string, opts: { name?: string; virtopsFrom?: string }) => {
      const result = await initProject({ dir, name: opts.name, virtopsFrom: opts.virtopsFrom });
      process.stdout.write(
        `created ${result.name} in ${result.dir} (${result.files.length} files, commit ${result.commit.slice(0, 12)})\n`
        + `next:\n  cd ${relativeOrAbsolute(result.dir)}\n  npm install\n  npm test\n  npm run synth\n`,
      );
    });
}

function relativeOrAbsolute(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel === '' ? '.' : rel.startsWith('..') ? dir : rel;
}
