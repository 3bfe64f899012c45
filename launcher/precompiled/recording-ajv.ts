/**
 * Build time only (scripts/build-bundles.mjs): stands in for `ajv` when api/validate.ts is
 * bundled into the generator, and records the standalone code of every schema it compiles
 * (ajv's own code generator, the same options, keywords and formats validate.ts set).
 */
import { Ajv as RealAjv, type AnySchema, type Options, type ValidateFunction } from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { schemaKey } from './schema-key.js';

export * from 'ajv';

// CommonJS default export under NodeNext/esbuild interop.
const standaloneCode = ((standaloneModule as unknown as { default?: unknown }).default ?? standaloneModule) as (ajv: RealAjv, fn: ValidateFunction) => string;

/** Standalone ES module source per schema key, filled by compile(). */
export const recorded = new Map<string, string>();

export class Ajv extends RealAjv {
  constructor(opts: Options = {}) {
    super({ ...opts, code: { ...opts.code, source: true, esm: true } });
    // An own property, not a method override: compile() has five overloads to restate otherwise.
    const compileSchema = this.compile.bind(this) as (schema: AnySchema, meta?: boolean) => ValidateFunction;
    Object.assign(this, {
      compile: (schema: AnySchema, meta?: boolean): ValidateFunction => {
        const fn = compileSchema(schema, meta);
        recorded.set(schemaKey(schema), standaloneCode(this, fn));
        return fn;
      },
    });
  }
}

export default Ajv;
