/**
 * Runtime, in the launcher bundle only: stands in for api/schema-validators.ts where
 * api/validate.ts imports it (scripts/build-bundles.mjs). The validators are ajv's standalone
 * code, generated when the bundle was built from the same definitions, options and formats
 * (launcher/precompiled/generate.ts), keyed by definition. So a launcher loads neither ajv's
 * compiler nor the OpenAPI document, and builds no schema: ~25–35 ms less CPU per start
 * than looking the code up by the compiled schema's hash (BENCHMARKS.md, "launcher CPU").
 */
import type { ValidateFunction } from 'ajv';
// Resolved by scripts/build-bundles.mjs to the module generate.ts wrote.
import { precompiled } from 'virtops:precompiled-validators';

/** The validator generate.ts wrote for `definition`; a launcher validates VMIs only (launcher/vmi-check.ts). */
export function validatorFor(definition: string): ValidateFunction {
  const fn = precompiled[definition];
  if (!fn) throw new Error(`the launcher bundle has no validator for ${definition}; add it to PRECOMPILED in launcher/precompiled/generate.ts`);
  return fn;
}
