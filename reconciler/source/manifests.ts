/**
 * Reading a revision's manifests: every `.yaml`/`.yml` file under dist/ (recursively, in
 * byte order of the path, so the same commit always yields the same list), every document
 * in each file, each validated with the project's one validator (api/validate.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { type Document, isMap, isScalar, parseAllDocuments, visit } from 'yaml';
import { formatIssues, validateManifest, type ValidationIssue } from '../../api/validate.js';
import { objectKey } from '../core/inventory.js';
import type { KubeObject } from '../core/types.js';

export interface ManifestFile {
  /** Path relative to the repository root, `/`-separated. */
  path: string;
  text: string;
  /** The file's git blob: the key of its entry in a ParsedFileCache. */
  blob?: string;
}

export interface ParsedManifests {
  manifests: KubeObject[];
  /** `file#document` for each manifest, parallel to `manifests`. */
  origins: string[];
  errors: string[];
}

export type Validator = (obj: unknown) => ValidationIssue[];

/**
 * A file that parsed and validated without an issue, by blob: its manifests as JSON text with
 * their document indexes. Text, not objects, so each read hands out objects of its own (no
 * revision shares an object with another) and the cache holds compact strings. Valid for one
 * validator: its owner keeps one per validator.
 */
export type ParsedFileCache = ReadonlyMap<string, readonly CachedDocument[]>;
interface CachedDocument { index: number; json: string }

/** One file's documents: the manifests with their document indexes, or what is wrong. */
interface FileResult { documents: { index: number; manifest: KubeObject }[]; errors: string[]; cacheable: readonly CachedDocument[] | undefined }

/**
 * Pure: parse and validate the given files. A file whose blob is in `cache` is not parsed
 * again; `cache` in the result holds the files of this call that had no issue (the caller
 * keeps it for the next call, so it never holds more than one revision's files).
 */
export function parseManifestFiles(files: ManifestFile[], validate: Validator = validateManifest, cache: ParsedFileCache = new Map()): ParsedManifests & { cache: ParsedFileCache } {
  const manifests: KubeObject[] = [];
  const origins: string[] = [];
  const errors: string[] = [];
  const next = new Map<string, readonly CachedDocument[]>();
  const seen = new Map<string, string>();
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) {
    const cached = file.blob === undefined ? undefined : cache.get(file.blob);
    const result: FileResult = cached
      ? { documents: cached.map((d) => ({ index: d.index, manifest: JSON.parse(d.json) as KubeObject })), errors: [], cacheable: cached }
      : parseFile(file, validate);
    errors.push(...result.errors);
    if (file.blob !== undefined && result.cacheable) next.set(file.blob, result.cacheable);
    for (const { index, manifest } of result.documents) {
      const origin = `${file.path}#${index}`;
      const key = objectKey(manifest);
      const first = seen.get(key);
      if (first) {
        errors.push(`${origin}: ${key} is also declared in ${first} (fix: keep one definition per object)`);
        continue;
      }
      seen.set(key, origin);
      manifests.push(manifest);
      origins.push(origin);
    }
  }
  return { manifests, origins, errors, cache: next };
}

/** How every git LFS pointer file begins (the LFS spec's first line). */
const LFS_POINTER_PREFIX = 'version https://git-lfs.github.com/spec/';

/** Pure: one file's documents, parsed and validated. */
function parseFile(file: ManifestFile, validate: Validator): FileResult {
  const documents: FileResult['documents'] = [];
  const errors: string[] = [];
  // dist/ is read as committed, through no smudge filter: a file kept in git LFS is its pointer.
  if (file.text.startsWith(LFS_POINTER_PREFIX)) {
    return { documents, errors: [`${file.path}: a git LFS pointer, not a manifest (fix: keep dist/ out of LFS: remove its pattern from .gitattributes, run \`git add --renormalize dist\` and commit)`], cacheable: undefined };
  }
  // yaml's own duplicate-key check compares each key with every earlier one (quadratic: a
  // 50,000-key mapping took 75 s); duplicateKeys() does the same check in linear time.
  const docs = parseAllDocuments(file.text, { prettyErrors: true, uniqueKeys: false });
  // parseAllDocuments returns an EmptyStream (not an array) for an empty file.
  if (!Array.isArray(docs)) return { documents, errors, cacheable: [] };
  let cacheable: CachedDocument[] | undefined = [];
  docs.forEach((doc, index) => {
    const origin = `${file.path}#${index}`;
    if (doc.errors.length > 0) {
      errors.push(...doc.errors.map((e) => `${origin}: YAML error: ${e.message} (fix: correct the YAML syntax)`));
      return;
    }
    const dup = duplicateKey(doc, file.text);
    if (dup) {
      errors.push(`${origin}: YAML error: map key ${JSON.stringify(dup.key.slice(0, 200))} appears twice${dup.line ? ` (line ${dup.line})` : ''} (fix: keep one)`);
      return;
    }
    let obj: unknown;
    try {
      // Throws on an alias that resolves to nothing and on alias bombs (the library's limit).
      obj = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      errors.push(`${origin}: YAML error: ${(err as Error).message} (fix: define every anchor before its aliases and do not expand aliases recursively; dist/ as synth writes it has none)`);
      return;
    }
    if (obj === null || obj === undefined) return; // empty document (e.g. a trailing ---)
    const issues = validate(obj);
    if (issues.length > 0) {
      errors.push(formatIssues(issues, origin));
      return;
    }
    // A copy with strings of its own: yaml's parsed strings are slices of the file's text,
    // each keeping the whole file alive (4 MiB for 1,000 VMs in one file) for as long as the
    // revision is kept (the controller and `up` keep the applied one for good).
    const json = exactJson(obj);
    if (json === undefined) cacheable = undefined;
    else cacheable?.push({ index, json });
    documents.push({ index, manifest: (json === undefined ? structuredClone(obj) : JSON.parse(json)) as KubeObject });
  });
  return { documents, errors, cacheable: errors.length === 0 ? cacheable : undefined };
}

/** JSON text that parses back to an equal object, or undefined (YAML's .inf, .nan and -0 do not survive JSON). */
function exactJson(obj: unknown): string | undefined {
  let exact = true;
  const json = JSON.stringify(obj, (_key, value: unknown) => {
    if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) exact = false;
    return value;
  });
  return exact ? json : undefined;
}

/** Which files under dist/ hold manifests: `.yaml` and `.yml`, in any case. */
export function isManifestPath(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/** All YAML files under `root/distPath`; undefined if the directory does not exist. */
export async function readManifestFiles(root: string, distPath: string): Promise<ManifestFile[] | undefined> {
  const base = join(root, distPath);
  let entries;
  try {
    entries = await readdir(base, { recursive: true, withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
  const files: ManifestFile[] = [];
  for (const e of entries) {
    if (!e.isFile() || !isManifestPath(e.name)) continue;
    const full = join(e.parentPath, e.name);
    files.push({ path: relative(root, full).split(sep).join('/'), text: await readFile(full, 'utf8') });
  }
  return files;
}

/** The first key that appears twice in one mapping of the document, in linear time. */
function duplicateKey(doc: Document, text: string): { key: string; line?: number } | undefined {
  let found: { key: string; line?: number } | undefined;
  visit(doc, {
    Map(_key, map) {
      if (!isMap(map)) return undefined;
      const seen = new Set<string>();
      for (const item of map.items) {
        const k = item.key;
        const id = isScalar(k) ? `${typeof k.value}:${String(k.value)}` : `node:${String(k)}`;
        if (seen.has(id)) {
          found = { key: isScalar(k) ? String(k.value) : String(k) };
          const offset = isScalar(k) ? k.range?.[0] : undefined;
          if (offset !== undefined) found.line = text.slice(0, offset).split('\n').length;
          return visit.BREAK;
        }
        seen.add(id);
      }
      return undefined;
    },
  });
  return found;
}

