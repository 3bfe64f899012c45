/**
 * Build time only: `node <bundled generate> <out dir>` writes the validators the launcher
 * bundle imports as `virtops:precompiled-validators` (launcher/precompiled/precompiled-validators.ts):
 * ajv's standalone code for each definition below, compiled from the schema and with the ajv
 * that api/schema-validators.ts itself compiles with, and an index keyed by definition.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closedSchema, newAjv, standaloneSource } from '../../api/schema-validators.js';

/** What a launcher validates: the VMI it is asked to run (launcher/vmi-check.ts refuses any other kind). */
export const PRECOMPILED = ['v1.VirtualMachineInstance'];

const out = process.argv[2];
if (!out) throw new Error('usage: generate <out dir>');
const imports: string[] = [];
const entries: string[] = [];
PRECOMPILED.forEach((definition, i) => {
  const ajv = newAjv({ code: { source: true, esm: true } });
  writeFileSync(join(out, `validator-${i}.mjs`), standaloneSource(ajv, ajv.compile(closedSchema(definition))));
  imports.push(`import v${i} from './validator-${i}.mjs';`);
  entries.push(`${JSON.stringify(definition)}: v${i}`);
});
writeFileSync(join(out, 'index.mjs'), `${imports.join('\n')}\nexport const precompiled = { ${entries.join(', ')} };\n`);
