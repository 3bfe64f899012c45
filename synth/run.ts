/**
 * `virtops synth`: run the cdk8s app into a fresh temp dir, validate every emitted object,
 * and only then replace dist/ (all or nothing). `--check` compares a fresh synth with dist/
 * byte for byte instead, for CI and for the git source.
 *
 * The app runs as a child process (like `cdk8s synth`, so cdk8s' own validations run), with
 * CDK8S_OUTDIR pointing at the temp dir. Temp dirs are removed on every path.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import jsYaml from 'js-yaml';
import YAML from 'yaml';
import { installDiskCompiledSchemaStore } from '../api/compiled-schema-cache.js';
import { formatIssues, validateManifest, type ValidationIssue } from '../api/validate.js';
import { VALIDATED_REPORT_ENV, YAML_CACHE_FILE_ENV, type ValidatedReport } from './validated-report.js';
import { yamlCacheFile } from './yaml-cache.js';

export const DEFAULT_APP = 'npx tsx vms/main.ts';
export const DEFAULT_OUT = 'dist';

export interface SynthOptions {
  /** Command that runs the cdk8s app. @default `app` from cdk8s.yaml, else DEFAULT_APP */
  readonly app?: string;
  /** @default `output` from cdk8s.yaml, else 'dist' */
  readonly out?: string;
  /** Project directory (where cdk8s.yaml lives). @default process.cwd() */
  readonly cwd?: string;
}

export interface FileIssues {
  file: string;
  object: string;
  issues: ValidationIssue[];
}

/** Raised when the app fails or emits invalid manifests; carries every message. */
export class SynthError extends Error {
  constructor(message: string, readonly problems: FileIssues[] = []) {
    super(message);
    this.name = 'SynthError';
  }
}

export interface SynthResult {
  out: string;
  files: string[];
  objects: number;
}

export interface CheckResult {
  upToDate: boolean;
  differing: string[];
  missing: string[];
  extra: string[];
}

export interface ProjectConfig {
  app: string;
  out: string;
  cwd: string;
}

/** The app command, output dir and project dir: options first, then cdk8s.yaml, then defaults. */
export async function resolveConfig(opts: SynthOptions): Promise<ProjectConfig> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  let fromFile: { app?: unknown; output?: unknown } = {};
  try {
    fromFile = (YAML.parse(await fs.readFile(path.join(cwd, 'cdk8s.yaml'), 'utf8')) ?? {}) as typeof fromFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new SynthError(`cdk8s.yaml: ${(err as Error).message}`);
  }
  const app = opts.app ?? (typeof fromFile.app === 'string' ? fromFile.app : DEFAULT_APP);
  const out = path.resolve(cwd, opts.out ?? (typeof fromFile.output === 'string' ? fromFile.output : DEFAULT_OUT));
  return { app, out, cwd };
}

/** Runs the app into `dir` and validates what it wrote. Throws SynthError with all problems. */
export async function synthInto(dir: string, cfg: ProjectConfig): Promise<{ files: string[]; objects: number }> {
  // Beside the output dir, not in it: the app lists the VMs its own validation covered.
  const reportFile = `${dir}.validated.json`;
  try {
    return await runAndValidate(dir, cfg, reportFile);
  } finally {
    await fs.rm(reportFile, { force: true });
  }
}

async function runAndValidate(dir: string, cfg: ProjectConfig, reportFile: string): Promise<{ files: string[]; objects: number }> {
  const child = await execa(cfg.app, {
    shell: true,
    cwd: cfg.cwd,
    env: { CDK8S_OUTDIR: dir, [VALIDATED_REPORT_ENV]: reportFile, [YAML_CACHE_FILE_ENV]: yamlCacheFile(cfg.cwd) },
    all: true,
    reject: false,
    stdin: 'ignore',
  });
  if (child.exitCode !== 0 || child.failed) {
    const output = (child.all ?? '').trim();
    throw new SynthError(`the app '${cfg.app}' failed (exit ${child.exitCode ?? child.signal ?? '?'})${output ? `:\n${output}` : ''}`);
  }
  return validateOutput(dir, cfg.app, reportFile);
}

/** What validating one output file found; reused while the file's text and the app's report for it stay the same. */
interface FileVerdict {
  text: string;
  validated: string;
  objects: number;
  /** Identity (objectIdentity) and description of each named object, for the cross-file duplicate check. */
  ids: Array<[string, string]>;
  problems: FileIssues[];
}

/**
 * Per-file validation results kept across runs by `synth --watch` (synth/watch-worker.ts):
 * an unchanged file is neither parsed nor validated again.
 */
export type ValidationCache = Map<string, FileVerdict>;

/**
 * Validates every file the app wrote into `dir` (throws SynthError naming each problem).
 * With `cache`, files whose text is unchanged since the last call reuse their verdict.
 */
export async function validateOutput(dir: string, app: string, reportFile: string, cache?: ValidationCache): Promise<{ files: string[]; objects: number; texts: Map<string, string> }> {
  installDiskCompiledSchemaStore(); // the KubeVirt schema's validator loaded, not compiled, when a VM needs it
  const files = await listFiles(dir);
  if (files.length === 0) throw new SynthError(`the app '${app}' wrote no manifests; does it call app.synth()?`);
  const validatedByApp = await readValidatedReport(reportFile);
  const problems: FileIssues[] = [];
  // The same object twice (two VMs of one name in one namespace) would make git ambiguous: the
  // git source refuses such a commit, so synth must not write it.
  const declared = new Map<string, string>();
  const texts = new Map<string, string>();
  let objects = 0;
  for (const file of files.filter((f) => /\.ya?ml$/.test(f))) {
    const text = await fs.readFile(path.join(dir, file), 'utf8');
    texts.set(file, text);
    const validated = (validatedByApp.get(file) ?? []).join('\n');
    let verdict = cache?.get(file);
    if (verdict === undefined || verdict.text !== text || verdict.validated !== validated) {
      verdict = checkFile(file, text, validatedByApp.get(file) ?? []);
      cache?.set(file, verdict);
    }
    objects += verdict.objects;
    problems.push(...verdict.problems);
    for (const [id, object] of verdict.ids) {
      const first = declared.get(id);
      if (first) problems.push({ file, object, issues: [{ path: '/metadata/name', message: `${id} is also declared in ${first}: give each object a unique name in its namespace` }] });
      else declared.set(id, file);
    }
  }
  if (cache) for (const file of cache.keys()) if (!texts.has(file)) cache.delete(file);
  if (problems.length) {
    const text = problems.map((p) => formatIssues(p.issues, `${p.file}: ${p.object}`)).join('\n');
    throw new SynthError(`synthesized manifests are invalid; nothing was written:\n${text}`, problems);
  }
  return { files, objects, texts };
}

/** Parses and validates one output file on its own (duplicates across files are checked by the caller). */
function checkFile(file: string, text: string, validatedByApp: readonly string[]): FileVerdict {
  const verdict: FileVerdict = { text, validated: validatedByApp.join('\n'), objects: 0, ids: [], problems: [] };
  let docs: unknown[];
  try {
    docs = parseYamlDocuments(text);
  } catch (err) {
    verdict.problems.push({ file, object: '(unparsable)', issues: [{ path: '', message: (err as Error).message }] });
    return verdict;
  }
  const skip = alreadyValidated(docs, validatedByApp);
  const seen = new Set<string>();
  for (const obj of docs) {
    if (obj === null || obj === undefined) continue;
    verdict.objects++;
    const id = objectIdentity(obj);
    if (id) {
      if (seen.has(id)) verdict.problems.push({ file, object: describeObject(obj), issues: [{ path: '/metadata/name', message: `${id} is also declared in ${file}: give each object a unique name in its namespace` }] });
      else {
        seen.add(id);
        verdict.ids.push([id, describeObject(obj)]);
      }
    }
    if (skip.has(obj)) continue;
    const issues = validateManifest(obj);
    if (issues.length) verdict.problems.push({ file, object: describeObject(obj), issues });
  }
  return verdict;
}

/** `apiVersion/kind/namespace/name` of a manifest (namespace `default` when unset), if it has a name. */
function objectIdentity(obj: unknown): string | undefined {
  const o = obj as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (typeof o?.metadata?.name !== 'string') return undefined;
  return `${String(o.apiVersion)}/${String(o.kind)}/${typeof o.metadata.namespace === 'string' ? o.metadata.namespace : 'default'}/${o.metadata.name}`;
}

/** The app's report (see VALIDATED_REPORT_ENV); empty when it wrote none (not a VirtopsApp). */
async function readValidatedReport(file: string): Promise<Map<string, string[]>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  const report = JSON.parse(text) as Partial<ValidatedReport>;
  return new Map(Object.entries(report.validatedVirtualMachines ?? {}));
}

/**
 * The VirtualMachine documents of one file that the app's own validation covered. A name is
 * trusted only when the file holds exactly as many VMs of that name as the app validated, so
 * a raw ApiObject sharing a DSL VM's name is still checked here.
 */
function alreadyValidated(docs: readonly unknown[], validated: readonly string[]): Set<unknown> {
  if (validated.length === 0) return new Set();
  const expected = new Map<string, number>();
  for (const key of validated) expected.set(key, (expected.get(key) ?? 0) + 1);
  const byKey = new Map<string, unknown[]>();
  for (const doc of docs) {
    const o = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (o?.apiVersion !== 'kubevirt.io/v1' || o.kind !== 'VirtualMachine' || typeof o.metadata?.name !== 'string') continue;
    const key = `${typeof o.metadata.namespace === 'string' ? o.metadata.namespace : ''}/${o.metadata.name}`;
    byKey.set(key, [...(byKey.get(key) ?? []), doc]);
  }
  const skip = new Set<unknown>();
  for (const [key, found] of byKey) if (found.length === expected.get(key)) found.forEach((d) => skip.add(d));
  return skip;
}

/**
 * All documents of a YAML stream. js-yaml (core schema: no timestamps or other implicit
 * types beyond JSON's) parses ~4x faster than the yaml package, which matters at thousands
 * of objects; cdk8s writes with the yaml package and quotes anything ambiguous.
 */
export function parseYamlDocuments(text: string): unknown[] {
  return jsYaml.loadAll(text, undefined, { schema: jsYaml.CORE_SCHEMA });
}

function describeObject(obj: unknown): string {
  const o = (obj ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const ns = typeof o.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  return `${String(o.kind ?? '?')} ${ns}${String(o.metadata?.name ?? '?')}`;
}

/** Synthesizes, validates, then swaps the result in place of `out`. Writes nothing on error. */
export async function runSynth(opts: SynthOptions = {}): Promise<SynthResult> {
  const cfg = await resolveConfig(opts);
  const parent = path.dirname(cfg.out);
  await fs.mkdir(parent, { recursive: true });
  // Beside `out`, so the final renames stay on one filesystem.
  const staging = await fs.mkdtemp(path.join(parent, `.${path.basename(cfg.out)}.synth-`));
  let retired: string | undefined;
  try {
    const { files, objects } = await synthInto(staging, cfg);
    await fs.chmod(staging, 0o755); // mkdtemp creates 0700
    // Two renames: readers see either the old or the new tree, never a partial one.
    if (await exists(cfg.out)) {
      retired = `${staging}.old`;
      await fs.rename(cfg.out, retired);
    }
    await fs.rename(staging, cfg.out);
    return { out: cfg.out, files, objects };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    if (retired) await fs.rm(retired, { recursive: true, force: true });
  }
}

/** Synthesizes into a temp dir and compares it with `out`, file by file. */
export async function checkSynth(opts: SynthOptions = {}): Promise<CheckResult> {
  const cfg = await resolveConfig(opts);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'virtops-synth-check-'));
  try {
    const { files: fresh } = await synthInto(tmp, cfg);
    const committed = (await exists(cfg.out)) ? await listFiles(cfg.out) : [];
    const committedSet = new Set(committed);
    const freshSet = new Set(fresh);
    const differing: string[] = [];
    for (const f of fresh.filter((x) => committedSet.has(x))) {
      const [a, b] = await Promise.all([fs.readFile(path.join(tmp, f)), fs.readFile(path.join(cfg.out, f))]);
      if (!a.equals(b)) differing.push(f);
    }
    const missing = fresh.filter((f) => !committedSet.has(f));
    const extra = committed.filter((f) => !freshSet.has(f));
    return { upToDate: differing.length + missing.length + extra.length === 0, differing, missing, extra };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

export function formatCheck(r: CheckResult, out: string): string {
  if (r.upToDate) return `${out} is up to date`;
  return [
    `${out} is stale; run 'npm run synth' and commit the result:`,
    ...r.differing.map((f) => `  differs: ${f}`),
    ...r.missing.map((f) => `  missing: ${f} (the app emits it; ${out} lacks it)`),
    ...r.extra.map((f) => `  extra:   ${f} (in ${out}, no longer emitted)`),
  ].join('\n');
}

/** Relative paths of all files under `dir`, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}
