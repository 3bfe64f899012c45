/**
 * The YAML of documents from an earlier synthesis, so a synthesis serializes only what
 * changed. (With the yaml package alone, serializing was about half of a synth; fast-yaml.ts
 * now emits 1,000 VMs' documents in ~0.15 s cold, so the cache saves less than it did.)
 * Two homes:
 * - in memory, in `synth --watch`'s worker (globalThis[YAML_CACHE_KEY], watch-protocol.ts);
 * - on disk for `virtops synth` (run.ts names the file in YAML_CACHE_FILE_ENV for the app's
 *   process): `node_modules/.cache/virtops/synth-yaml-<project>.json` of the project, or the
 *   file VIRTOPS_SYNTH_YAML_CACHE names.
 *
 * Keys are the sha256 of a document's JSON (exact for the JSON values manifests are: cdk8s
 * has already dropped undefined and null fields). The disk file also records which
 * serializer wrote it (the version of the yaml package, which writes every document with
 * cdk8s' options plus ours, and the YAML of a probe document covering quoting,
 * numbers-as-strings, multi-line strings and empty collections); a file from another one is
 * ignored, so an upgrade cannot serve YAML that synth would no longer write.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { YAML_CACHE_FILE_ENV } from './validated-report.js';
import type { YamlCache } from './watch-protocol.js';

export const YAML_CACHE_FORMAT = 1;
/** Unused for this long, a project's cache file is removed by the next save of any project. */
const PRUNE_AFTER_MS = 14 * 24 * 3600 * 1000;

export const yamlCacheKey = (doc: unknown): string => createHash('sha256').update(JSON.stringify(doc)).digest('base64');

const PROBE = {
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'probe', labels: { a: 'yes', b: 'on', c: '1.0', d: '0x1f', e: '', f: '0o17', g: '+0o7', '<<': '=' } },
  data: { multi: 'line one\nline two\n', quote: "it's \"q\"", colon: 'a: b', hash: '# c', star: '*', tilde: '~', unicode: 'é→', long: 'x'.repeat(120) },
  list: [1, 1.5, -0.5, true, false, [], {}, ['nested']],
};

/** Which serializer wrote a cache: the yaml package's version and its YAML of the probe document. */
export function serializerId(stringify: (doc: unknown) => string): string {
  let version = 'unknown';
  try {
    const require = createRequire(import.meta.url);
    for (let dir = path.dirname(require.resolve('yaml')); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
      const pkg = path.join(dir, 'package.json');
      if (fs.existsSync(pkg)) {
        const parsed = JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
        if (parsed.name === 'yaml') {
          version = parsed.version ?? version;
          break;
        }
      }
    }
  } catch {
    // unknown version: the probe alone decides
  }
  return `yaml@${version}\n${stringify(PROBE)}`;
}

interface CacheFile {
  format: number;
  serializer: string;
  entries: Record<string, string>;
}

/** The cache in `file`, or an empty one when it is missing, unreadable or from another serializer. */
export function loadYamlCache(file: string, serializer: string): YamlCache {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<CacheFile>;
    if (parsed.format !== YAML_CACHE_FORMAT || parsed.serializer !== serializer || typeof parsed.entries !== 'object' || !parsed.entries) return new Map();
    return new Map(Object.entries(parsed.entries));
  } catch {
    return new Map();
  }
}

/** Writes the cache atomically (temp file + rename); failures are ignored (a cache is optional). */
export function saveYamlCache(file: string, serializer: string, cache: YamlCache): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const body: CacheFile = { format: YAML_CACHE_FORMAT, serializer, entries: Object.fromEntries(cache) };
    fs.writeFileSync(tmp, JSON.stringify(body));
    fs.renameSync(tmp, file);
    pruneYamlCaches(path.dirname(file), Date.now());
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

function pruneYamlCaches(dir: string, now: number): void {
  for (const name of fs.readdirSync(dir)) {
    if (!/^synth-yaml-.*\.json$/.test(name)) continue;
    const p = path.join(dir, name);
    try {
      if (now - fs.statSync(p).mtimeMs > PRUNE_AFTER_MS) fs.rmSync(p, { force: true });
    } catch {
      // raced with another prune
    }
  }
}

/**
 * Where `virtops synth` keeps the YAML cache of the project in `cwd`: under its
 * node_modules/.cache (what build tools use), one file per project directory; undefined when
 * VIRTOPS_SYNTH_CACHE=off, or when the project has no node_modules of its own (none, or a
 * symlink to another tree's, as test and benchmark projects have: their caches would pile up
 * in that other tree).
 */
export function yamlCacheFile(cwd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.VIRTOPS_SYNTH_CACHE === 'off') return undefined;
  // Named explicitly (benchmarks, CI with a cache directory of its own).
  if (env[YAML_CACHE_FILE_ENV]) return path.resolve(env[YAML_CACHE_FILE_ENV]);
  const modules = path.join(cwd, 'node_modules');
  try {
    if (!fs.lstatSync(modules).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  const project = createHash('sha256').update(path.resolve(cwd)).digest('hex').slice(0, 16);
  return path.join(modules, '.cache', 'virtops', `synth-yaml-${project}.json`);
}
