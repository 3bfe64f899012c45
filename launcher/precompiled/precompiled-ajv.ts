/**
 * Runtime, in the launcher bundle only: stands in for `ajv` where api/validate.ts imports
 * it. compile() returns the validation code ajv generated for the same schema when the
 * bundle was built (launcher/precompiled/generate.ts), so the prepare worker does not spend
 * ~250 ms of CPU compiling the closed KubeVirt schema at every launcher start. A schema
 * it has no code for (another kind, a changed schema) is compiled as usual: the
 * validator is api/validate.ts either way.
 */
import { Ajv as RealAjv, type AnySchema, type Options, type ValidateFunction } from 'ajv';
// Resolved by scripts/build-bundles.mjs to the module generate.ts wrote.
import { precompiled } from 'virtops:precompiled-validators';
import { schemaKey } from './schema-key.js';

export * from 'ajv';

export class Ajv extends RealAjv {
  constructor(opts?: Options) {
    super(opts);
    // An own property, not a method override: compile() has five overloads to restate otherwise.
    const compileSchema = this.compile.bind(this) as (schema: AnySchema, meta?: boolean) => ValidateFunction;
    Object.assign(this, {
      compile: (schema: AnySchema, meta?: boolean): ValidateFunction => precompiled[schemaKey(schema)] ?? compileSchema(schema, meta),
    });
  }
}

export default Ajv;
