/**
 * `virtops --version` (and `virtops version [-o json]`): the version, the git commit it was
 * built from and the KubeVirt API its schema comes from. An installed package reads
 * build-info.json (written at pack time by scripts/build-package.mjs); a checkout has none and
 * asks package.json, `git rev-parse HEAD` and the vendored OpenAPI spec instead.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

export interface BuildInfo {
  version: string;
  commit: string;
  kubevirtApi: string;
  kubevirtOpenApi?: { title?: string; version?: string | null; sha256?: string };
}

/** The package root: the nearest directory up from this file whose package.json is virtops'. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'virtops') return dir;
    if (dirname(dir) === dir) throw new Error(`no virtops package.json above ${from}`);
  }
}

export function buildInfo(root: string = packageRoot()): BuildInfo {
  const file = join(root, 'build-info.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as BuildInfo;
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' });
  const spec = readFileSync(join(root, 'api/kubevirt-openapi.v1.json'));
  return {
    version,
    commit: head.status === 0 ? `${head.stdout.trim()}${dirty.stdout.trim() ? '+dirty' : ''}` : 'unknown (not a git checkout)',
    kubevirtApi: 'kubevirt.io/v1',
    kubevirtOpenApi: { title: 'KubeVirt API', version: null, sha256: createHash('sha256').update(spec).digest('hex').slice(0, 16) },
  };
}

/** Pure: the lines `virtops --version` prints. */
export function formatVersion(b: BuildInfo): string {
  const o = b.kubevirtOpenApi;
  const schema = o ? ` (schema: vendored ${o.title ?? 'KubeVirt API'} OpenAPI subset${o.version ? ` ${o.version}` : ''}${o.sha256 ? `, sha256 ${o.sha256}` : ''})` : '';
  return [`virtops ${b.version}`, `commit: ${b.commit}`, `KubeVirt API: ${b.kubevirtApi}${schema}`].join('\n');
}

/**
 * What `virtops <argv>` prints when argv asks only for the version (`--version`, `-V`,
 * `version`, `version -o json` in commander's spellings), or undefined for anything else
 * (`version --help`, `version -o yaml`, ...), which the full CLI answers. cli/bin.js of the
 * installed package calls this before loading commander or any command: the same text the
 * `version` command prints, in a fraction of the start time. Pure given `info`.
 */
export function versionFastPath(argv: readonly string[], info: () => BuildInfo = buildInfo): string | undefined {
  const [first, ...rest] = argv;
  if ((first === '--version' || first === '-V') && rest.length === 0) return versionOutput(info());
  if (first !== 'version') return undefined;
  const asked = rest.join(' ');
  if (asked === '') return versionOutput(info());
  if (['-o json', '-ojson', '--output json', '--output=json'].includes(asked)) return versionOutput(info(), 'json');
  return undefined;
}

/** Pure: the output of `virtops version [-o json]`, newline included. */
export function versionOutput(b: BuildInfo, output?: 'json'): string {
  return `${output === 'json' ? JSON.stringify(b, null, 2) : formatVersion(b)}\n`;
}

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the version, the git commit it was built from and the KubeVirt API version of its schema (same as --version)')
    .option('-o, --output <format>', 'json')
    .action((opts: { output?: string }) => {
      if (opts.output !== undefined && opts.output !== 'json') throw new Error(`-o "${opts.output}": only json is supported`);
      process.stdout.write(versionOutput(buildInfo(), opts.output));
    });
}
