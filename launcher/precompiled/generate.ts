/**
 * Build time only: `node <bundled generate> <out dir>` writes the precompiled validators the
 * launcher bundle imports as `virtops:precompiled-validators`. Bundled by
 * scripts/build-bundles.mjs with `ajv` (as api/validate.ts imports it) replaced by
 * recording-ajv.ts; validating one VMI makes validate.ts compile the VMI schema, exactly
 * as the launcher's worker would.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateManifest } from '../../api/validate.js';
import { recorded } from './recording-ajv.js';

const out = process.argv[2];
if (!out) throw new Error('usage: generate <out dir>');
validateManifest({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'x' }, spec: { domain: { devices: {} } } });
if (recorded.size === 0) throw new Error('api/validate.ts compiled no schema for a VirtualMachineInstance');
const entries: string[] = [];
let i = 0;
for (const [key, code] of recorded) {
  writeFileSync(join(out, `validator-${i}.mjs`), code);
  entries.push(`import v${i} from './validator-${i}.mjs';`);
  i++;
}
writeFileSync(
  join(out, 'index.mjs'),
  `${entries.join('\n')}\nexport const precompiled = { ${[...recorded.keys()].map((k, j) => `${JSON.stringify(k)}: v${j}`).join(', ')} };\n`,
);
