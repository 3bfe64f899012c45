/**
 * A CompiledSchemaStore (api/schema-validators.ts) on disk: the validators ajv compiled, kept as ajv's
 * standalone code, so `virtops synth` and the app it runs load the KubeVirt schema's
 * validator (~15 ms) instead of compiling it (~250 ms of CPU) in every process.
 *
 * One file per compiled schema, `<key>.cjs`, in `node_modules/.cache/virtops/validators/` of
 * the tree virtops resolves ajv from, or the directory VIRTOPS_VALIDATOR_CACHE names
 * (`off`: no store). The key is the sha256 of the schema, schema-validators.ts's compile setup
 * (options, keywords, formats) and the versions of ajv and ajv-formats, so whatever changes
 * what ajv would compile is a different file; nothing in it depends on the project, so
 * every project and benchmark sharing that node_modules shares the files. Writes are atomic
 * (temp file + rename); an unreadable, broken or foreign file answers nothing and the schema
 * is compiled (and saved) again.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { hasCompiledSchemaStore, standaloneSource, useCompiledSchemaStore, type CompiledSchemaStore } from './schema-validators.js';

export const COMPILED_SCHEMA_CACHE_ENV = 'VIRTOPS_VALIDATOR_CACHE';
/** Bumped when the file layout changes. */
const FORMAT = 1;
/** Files not written for this long are removed by the next save (a virtops upgrade leaves old keys behind). */
const PRUNE_AFTER_MS = 30 * 24 * 3600 * 1000;

// The generated code requires ajv's runtime helpers and ajv-formats: resolved from here, as schema-validators.ts resolves them.
const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The file name stem a schema compiled under `setup` is kept under. */
export function compiledSchemaKey(schema: object, setup: string, versions = `ajv@${packageVersion('ajv')} ajv-formats@${packageVersion('ajv-formats')}`): string {
  return createHash('sha256').update(JSON.stringify([FORMAT, versions, setup, schema])).digest('hex').slice(0, 40);
}

/**
 * Where the store lives: VIRTOPS_VALIDATOR_CACHE, else `.cache/virtops/validators` in the
 * node_modules that holds ajv; undefined for `off` or when ajv is not resolvable from disk
 * (a bundle that inlined it).
 */
export function compiledSchemaDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const named = env[COMPILED_SCHEMA_CACHE_ENV];
  if (named === 'off') return undefined;
  if (named) return path.resolve(named);
  try {
    const main = require.resolve('ajv');
    const marker = `${path.sep}node_modules${path.sep}`;
    const at = main.lastIndexOf(marker);
    return at < 0 ? undefined : path.join(main.slice(0, at + marker.length), '.cache', 'virtops', 'validators');
  } catch {
    return undefined;
  }
}

/** A store keeping compiled validators as files in `dir`. */
export function diskCompiledSchemaStore(dir: string): CompiledSchemaStore {
  return {
    load(schema, setup) {
      let code: string;
      try {
        code = fs.readFileSync(path.join(dir, `${compiledSchemaKey(schema, setup)}.cjs`), 'utf8');
      } catch {
        return undefined;
      }
      try {
        const module = { exports: {} as { default?: unknown } };
        // ajv's standalone output is a CommonJS module body.
        new Function('require', 'module', 'exports', code)(require, module, module.exports);
        const fn = module.exports.default ?? module.exports;
        return typeof fn === 'function' ? (fn as ValidateFunction) : undefined;
      } catch {
        return undefined;
      }
    },
    save(schema, setup, ajv, validate) {
      const file = path.join(dir, `${compiledSchemaKey(schema, setup)}.cjs`);
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`; // workers may share a pid
      try {
        const code = standaloneSource(ajv, validate);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(tmp, code);
        fs.renameSync(tmp, file);
        prune(dir, Date.now());
      } catch {
        // A cache is optional: a read-only tree, a full disk or ajv without source just means no file.
        fs.rmSync(tmp, { force: true });
      }
    },
  };
}

function prune(dir: string, now: number): void {
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.cjs')) continue;
    const p = path.join(dir, name);
    try {
      if (now - fs.statSync(p).mtimeMs > PRUNE_AFTER_MS) fs.rmSync(p, { force: true });
    } catch {
      // raced with another prune
    }
  }
}

/**
 * Installs the disk store for this process unless a store is installed or the cache is off.
 * Called by the processes that validate KubeVirt objects at every start: `virtops synth`
 * (synth/run.ts) and the app's VirtopsApp (synth/app.ts).
 */
export function installDiskCompiledSchemaStore(env: NodeJS.ProcessEnv = process.env): void {
  if (hasCompiledSchemaStore()) return;
  const dir = compiledSchemaDir(env);
  if (dir) useCompiledSchemaStore(diskCompiledSchemaStore(dir));
}
