/**
 * Fuzz: launcher socket messages, `PUT /v1/vmi` bodies. The launcher's pure pipeline for a
 * body is: the server's readJson (empty → 400, not JSON → 400), checkVmi (launcher/vmi-check.ts:
 * a VMI, and the one this launcher serves), the one manifest validator (api/validate.ts, its
 * pointers turned into field paths by pointerToPath), then conversion to domain XML
 * (launcher/convert: ConversionError names the field). Arbitrary bytes, arbitrary JSON and
 * mutated VMIs made from the repository's own dist/ VMs → a 4xx naming the field, or
 * acceptance (domain XML); never an exception of another kind.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateManifest } from '../../../api/validate.js';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import { convertVmi, ConversionError, type ConversionContext } from '../../../launcher/convert/index.js';
import { pointerToPath } from '../../../launcher/launcher.js';
import { checkVmi } from '../../../launcher/vmi-check.js';
import { FUZZ, params, thrown } from './config.js';

const EXPECT = { name: 'test-guest', namespace: 'default', uid: '0b7f7a4e-1111-4222-8333-944455556666' };
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** VMIs the launcher would get for each VM in dist/ (spec.template.spec), renamed to this launcher's VMI. */
const DIST = join(import.meta.dirname, '../../../dist');
const SEED_VMIS: Record<string, unknown>[] = readdirSync(DIST)
  .filter((f) => f.endsWith('.k8s.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(join(DIST, f), 'utf8')).map((d) => d.toJS() as Record<string, unknown>))
  .filter((d) => d?.kind === 'VirtualMachine')
  .map((vm) => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: EXPECT.name, namespace: EXPECT.namespace, uid: EXPECT.uid },
    spec: (vm.spec as { template: { spec: unknown } }).template.spec,
  }));

function ctxFor(vmi: unknown): ConversionContext {
  const vols = isObj(vmi) && isObj(vmi.spec) && Array.isArray(vmi.spec.volumes) ? vmi.spec.volumes : [];
  const volumes: ConversionContext['volumes'] = {};
  for (const v of vols) {
    if (isObj(v) && typeof v.name === 'string') volumes[v.name] = { name: v.name, type: 'file', path: `/var/lib/virtops/pods/abc/volumes/${v.name}.qcow2`, format: 'qcow2' };
  }
  return { emulation: 'tcg', volumes, socketsDir: '/var/lib/virtops/pods/abcdef012345/sockets', logDir: '/var/lib/virtops/pods/abcdef012345', kernelBoot: { kernelPath: '/k', initrdPath: '/i' } };
}

type Verdict = { status: 400; fields: string[] } | { status: 200; xml: string };

/** What PUT /v1/vmi decides for `text`, through the launcher's own pure steps. Throws only on a crash. */
function putVmi(text: string): Verdict {
  if (text.trim() === '') return { status: 400, fields: [''] };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { status: 400, fields: [''] };
  }
  const errs = checkVmi(body, EXPECT);
  if (errs.length) return { status: 400, fields: errs.map((e) => e.path) };
  const issues = validateManifest(body);
  if (issues.length) return { status: 400, fields: issues.map((i) => pointerToPath(i.path)) };
  const vmi = structuredClone(body) as VirtualMachineInstance;
  vmi.metadata.namespace ??= EXPECT.namespace;
  vmi.metadata.uid ??= EXPECT.uid;
  try {
    return { status: 200, xml: convertVmi(vmi, ctxFor(vmi)).xml };
  } catch (err) {
    if (err instanceof ConversionError) return { status: 400, fields: [err.path] };
    throw err;
  }
}

function expectVerdict(text: string): Verdict {
  let v: Verdict | undefined;
  const err = thrown(() => (v = putVmi(text)));
  expect(err, `crashed: ${String((err as Error | undefined)?.stack ?? err)}`).toBeUndefined();
  if (v!.status === 400) {
    expect(v!.fields.length).toBeGreaterThan(0);
    for (const f of v!.fields) expect(typeof f).toBe('string');
  } else {
    expect(v!.xml).toMatch(/^<domain[\s>]/);
  }
  return v!;
}

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.string({ maxLength: 20 }),
  fc.constantFrom('', '0', '2Gi', '-1', '1e400', 'virtio', 'sata', 'q35', 'pc', 'Always', '\u0000', 'a'.repeat(300)),
  fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, 1.5, -0),
  fc.constant([]), fc.constant({}), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
);
type Path = Array<string | number>;
function paths(x: unknown, p: Path = [], out: Path[] = []): Path[] {
  out.push(p);
  if (p.length > 40) return out;
  if (Array.isArray(x)) x.forEach((v, i) => paths(v, [...p, i], out));
  else if (isObj(x)) for (const [k, v] of Object.entries(x)) paths(v, [...p, k], out);
  return out;
}
const getAt = (x: unknown, p: Path): unknown => p.reduce<unknown>((c, k) => (c as Record<string | number, unknown>)[k], x);
const mutation = fc.record({ kind: fc.constantFrom('drop', 'retype', 'unknownKey', 'duplicate'), at: fc.nat(), value: anyValue, key: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'bootorder', 'name', 'disk', 'cdrom', 'lun', 'masquerade', 'bridge', 'containerDisk', 'emptyDisk', 'hostDisk', 'efi', 'bios', 'secureBoot')) });
function mutate(doc: unknown, mut: { kind: string; at: number; value: unknown; key: string }): unknown {
  const m = { ...mut, value: structuredClone(mut.value) }; // fast-check may hand the same value to two mutations
  const ps = paths(doc);
  const p = ps[m.at % ps.length]!;
  if (p.length === 0) return m.kind === 'retype' ? m.value : doc;
  if (m.kind === 'unknownKey' && isObj(m.value) && m.value === doc) return doc;
  const parent = getAt(doc, p.slice(0, -1)) as Record<string | number, unknown>;
  const k = p[p.length - 1]!;
  if (m.kind === 'drop') Array.isArray(parent) ? parent.splice(k as number, 1) : delete parent[k];
  else if (m.kind === 'retype') parent[k] = m.value;
  else if (m.kind === 'duplicate' && Array.isArray(parent)) parent.push(structuredClone(parent[k as number]));
  else {
    const target = getAt(doc, p);
    if (isObj(target)) Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
  }
  return doc;
}

describe('fuzz: launcher PUT /v1/vmi bodies', () => {
  it('the seeds are accepted', () => {
    expect(SEED_VMIS.length).toBeGreaterThan(0);
    for (const s of SEED_VMIS) {
      const v = expectVerdict(JSON.stringify(s));
      expect(v.status, JSON.stringify(v)).toBe(200);
    }
  });

  it(`arbitrary bytes and JSON values → 400 naming the body or a field, never a crash (${FUZZ.launcherBody.numRuns} runs, seed ${FUZZ.launcherBody.seed})`, () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a).toString('utf8')),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.json({ maxDepth: 5 }),
          fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: EXPECT.name }, spec: v })),
          fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: v, spec: { domain: { devices: {} } } })),
          fc.integer({ min: 10, max: 5000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
          fc.integer({ min: 10, max: 3000 }).map((n) => JSON.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: EXPECT.name }, spec: { domain: { devices: {} }, x: JSON.parse(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`) } })),
        ),
        (text) => void expectVerdict(text),
      ),
      params(FUZZ.launcherBody),
    );
  });

  it(`mutated VMIs from dist/ (dropped fields, other types, unknown keys, duplicated list items) → 400 naming the field, or domain XML (${FUZZ.launcherVmi.numRuns} runs, seed ${FUZZ.launcherVmi.seed})`, () => {
    fc.assert(
      fc.property(fc.nat({ max: SEED_VMIS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 5 }), (i, ms) => {
        let doc: unknown = structuredClone(SEED_VMIS[i]!);
        for (const m of ms) doc = mutate(doc, m);
        const v = expectVerdict(JSON.stringify(doc) ?? '');
        // A field path, not an anonymous refusal, once the body is a VMI object.
        if (v.status === 400 && isObj(doc)) expect(v.fields.some((f) => f !== '') || !isObj(doc)).toBe(true);
      }),
      params(FUZZ.launcherVmi),
    );
  });
});
