/**
 * The compiled validator of each OpenAPI definition api/validate.ts checks against: the
 * definition made structural and closed (api/structural-schema.ts), compiled once per process
 * by ajv with the options, keywords and formats below, or loaded from an installed store.
 *
 * The launcher bundle replaces this module (scripts/build-bundles.mjs) with
 * launcher/precompiled/precompiled-validators.ts: the same validators as ajv standalone code,
 * generated at build time with `newAjv` and `closedSchema` below, so a launcher loads neither
 * ajv's compiler nor the OpenAPI document.
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { referencedSchema } from './structural-schema.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
const standaloneCode = ((standaloneModule as unknown as { default?: unknown }).default ?? standaloneModule) as (ajv: Ajv, fn: ValidateFunction) => string;

/**
 * Where compiled validators are kept between processes (api/compiled-schema-cache.ts puts them
 * on disk as ajv standalone code): compiling the closed KubeVirt schema costs ~250 ms of CPU
 * per process, loading its code ~15 ms. None unless a caller installs one
 * (useCompiledSchemaStore); a store that fails answers nothing and the schema is compiled.
 */
export interface CompiledSchemaStore {
  /** The validator saved for `schema` compiled under `setup`, if any. */
  load(schema: object, setup: string): ValidateFunction | undefined;
  /** Keeps `validate` (compiled by `ajv` from `schema` under `setup`) for later processes. */
  save(schema: object, setup: string, ajv: Ajv, validate: ValidateFunction): void;
}

// One statement of how the validators are compiled: the options and keywords below, and the
// full ajv-formats. A store keys what it keeps by it (with the schema and ajv's version).
const AJV_OPTIONS = { allErrors: true, strict: false, verbose: true, validateSchema: false } as const;
const NOOP_KEYWORDS = ['x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields'] as const;
const AJV_SETUP = JSON.stringify({ options: AJV_OPTIONS, keywords: NOOP_KEYWORDS, formats: 'ajv-formats full' });

let ajv: Ajv | undefined;
let store: CompiledSchemaStore | undefined;
const compiled = new Map<string, ValidateFunction>();

/** Installs `next` as this process's store of compiled validators (undefined: none). */
export function useCompiledSchemaStore(next: CompiledSchemaStore | undefined): void {
  store = next;
}

/** True when a store is installed (callers install one once). */
export function hasCompiledSchemaStore(): boolean {
  return store !== undefined;
}

/** The schema a definition is validated against: structural, with unknown fields refused. */
export function closedSchema(definition: string): object {
  return referencedSchema(definition, { strict: true });
}

/** An ajv set up as every validator here is compiled (`extra` adds options such as `code`). */
export function newAjv(extra: Options = {}): Ajv {
  const instance = new Ajv({ ...AJV_OPTIONS, ...extra });
  addFormats(instance);
  for (const keyword of NOOP_KEYWORDS) instance.addKeyword({ keyword });
  return instance;
}

/**
 * ajv's standalone code for `fn`, compiled by `ajv` (from `newAjv`, with `code.source`; and
 * `code.esm` for an ES module): the disk store's files and the launcher bundle's validators.
 */
export function standaloneSource(ajv: Ajv, fn: ValidateFunction): string {
  return standaloneCode(ajv, fn);
}

/** The validator for an OpenAPI definition, e.g. `v1.VirtualMachineInstance`. */
export function validatorFor(definition: string): ValidateFunction {
  let fn = compiled.get(definition);
  if (!fn) {
    const schema = closedSchema(definition);
    fn = store?.load(schema, AJV_SETUP) ?? compileSchema(schema);
    compiled.set(definition, fn);
  }
  return fn;
}

function compileSchema(schema: object): ValidateFunction {
  // A store needs the generated source to save it (ajv drops it otherwise).
  ajv ??= newAjv(store ? { code: { source: true } } : {});
  const fn = ajv.compile(schema);
  store?.save(schema, AJV_SETUP, ajv, fn);
  return fn;
}
