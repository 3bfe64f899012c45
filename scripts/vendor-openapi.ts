/**
 * Vendors the part of KubeVirt's OpenAPI (swagger 2.0) that virtops validates against:
 * every definition reachable from v1.VirtualMachine, v1.VirtualMachineInstance, the four
 * instancetype.kubevirt.io/v1beta1 kinds (instancetypes and preferences), VirtualMachinePool
 * and the snapshot.kubevirt.io kinds (snapshot, content, restore), written to
 * api/kubevirt-openapi.v1.json. The repo must work from a fresh clone, and the full spec is
 * 750 KB of mostly unrelated APIs.
 *
 *   npx tsx scripts/vendor-openapi.ts [path/to/kubevirt-openapi.json]
 *   (default: ../shared/reference/kubevirt-openapi.json)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOTS = [
  'v1.VirtualMachine', 'v1.VirtualMachineInstance',
  'v1beta1.VirtualMachineInstancetype', 'v1beta1.VirtualMachineClusterInstancetype',
  'v1beta1.VirtualMachinePreference', 'v1beta1.VirtualMachineClusterPreference',
  // pool.kubevirt.io and snapshot.kubevirt.io (issue 13 parts 2 and 3)
  'v1beta1.VirtualMachinePool',
  'v1beta1.VirtualMachineSnapshot', 'v1beta1.VirtualMachineSnapshotContent', 'v1beta1.VirtualMachineRestore',
];
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.resolve(process.argv[2] ?? path.join(repo, '../shared/reference/kubevirt-openapi.json'));
const target = path.join(repo, 'api/kubevirt-openapi.v1.json');

interface Swagger {
  swagger: string;
  info: Record<string, unknown>;
  definitions: Record<string, unknown>;
}

const spec = JSON.parse(fs.readFileSync(source, 'utf8')) as Swagger;

function refsOf(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) node.forEach((n) => refsOf(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.add(v.replace('#/definitions/', ''));
      else refsOf(v, out);
    }
  }
}

const keep = new Set<string>();
const queue = [...ROOTS];
while (queue.length) {
  const name = queue.pop()!;
  if (keep.has(name)) continue;
  const def = spec.definitions[name];
  if (def === undefined) throw new Error(`definition ${name} is referenced but missing from ${source}`);
  keep.add(name);
  const refs = new Set<string>();
  refsOf(def, refs);
  queue.push(...refs);
}

const definitions = Object.fromEntries([...keep].sort().map((n) => [n, spec.definitions[n]]));
const out = {
  'x-virtops-source': {
    description: `Definitions reachable from ${ROOTS.join(', ')}, extracted by scripts/vendor-openapi.ts.`,
    title: spec.info.title,
    license: 'Apache-2.0 (https://www.apache.org/licenses/LICENSE-2.0), KubeVirt project, https://github.com/kubevirt/kubevirt (api/openapi-spec/swagger.json)',
  },
  swagger: spec.swagger,
  definitions,
};
fs.writeFileSync(target, JSON.stringify(out, null, 1) + '\n');
console.log(`wrote ${path.relative(repo, target)}: ${keep.size} definitions (${fs.statSync(target).size} bytes)`);
