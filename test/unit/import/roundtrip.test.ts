/**
 * The import round trip, end to end with real tools: every VM in vms/ (synthesized by the
 * real app) and every hand-written manifest in fixtures/ is imported; the generated
 * TypeScript is type-checked with tsc and run with tsx in a VirtopsApp; the VirtualMachines
 * it synthesizes must equal the inputs after the documented normalization (normalize.ts).
 *
 * The generated code lives in a temp dir inside the repo so `cdk8s` etc. resolve from the
 * repo's node_modules; it imports the DSL by relative path (what `virtops import --out`
 * picks inside a checkout).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { formatIssues, validateManifest } from '../../../api/validate.js';
import { importManifests, normalizeVirtualMachine, parseManifests, prepareVirtualMachine } from '../../../dsl/import/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURES = path.join(REPO, 'test/unit/import/fixtures');

interface Case {
  /** Label in test names. */
  readonly label: string;
  /** Input YAML. */
  readonly text: string;
}

let work: string;
const cases: Case[] = [];
/** Per generated module: the VMs it must reproduce (normalized input), by class name. */
const expectations = new Map<string, { module: string; expected: Record<string, unknown> }>();
let synthesized = new Map<string, Record<string, unknown>>();
let tscOutput = '';

function readVms(dir: string): Record<string, unknown>[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.k8s.yaml')).sort()
    .flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as Record<string, unknown>))
    .filter((o) => o?.kind === 'VirtualMachine');
}

const key = (vm: Record<string, unknown>): string => {
  const meta = vm.metadata as { name: string; namespace?: string };
  return `${meta.namespace ?? 'default'}/${meta.name}`;
};

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(REPO, 'test/unit/import/.roundtrip-'));

  // 1. The repo's own examples, synthesized by the real app.
  const examples = path.join(work, 'examples');
  await execa('npx', ['tsx', 'vms/main.ts'], { cwd: REPO, env: { CDK8S_OUTDIR: examples } });
  for (const vm of readVms(examples)) cases.push({ label: `vms/ ${key(vm)}`, text: YAML.stringify(vm) });
  // 2. Hand-written KubeVirt manifests.
  for (const f of fs.readdirSync(FIXTURES).filter((x) => x.endsWith('.yaml')).sort()) {
    cases.push({ label: `fixtures/${f}`, text: fs.readFileSync(path.join(FIXTURES, f), 'utf8') });
  }

  // 3. Import each into its own module, and one app instantiating every chart.
  const mainLines = [`import { VirtopsApp } from '../../../../synth/app.js';`, 'const app = new VirtopsApp({ crds: false, install: false });'];
  cases.forEach((c, i) => {
    const module = `imported${i}`;
    const result = importManifests(c.text, { fileName: c.label, dslModule: '../../../../dsl/index.js' });
    fs.writeFileSync(path.join(work, `${module}.ts`), result.code);
    mainLines.push(`import * as m${i} from './${module}.js';`);
    for (const vm of result.virtualMachines) {
      const id = `${module}-${vm.name}`;
      mainLines.push(`new m${i}.${vm.className}(app, '${id}');`);
      // The expectation comes from the input, independently of the generated code.
      expectations.set(`${vm.namespace}/${vm.name}@${module}`, { module, expected: vm.expected });
    }
  });
  mainLines.push('app.synth();');
  fs.writeFileSync(path.join(work, 'main.ts'), `${mainLines.join('\n')}\n`);
  fs.writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify({ extends: '../../../../tsconfig.json', include: ['*.ts'] }));

  // 4. The generated code compiles (strict) ...
  const tsc = await execa('npx', ['tsc', '--noEmit', '-p', work], { cwd: REPO, reject: false, all: true });
  tscOutput = tsc.exitCode === 0 ? '' : tsc.all ?? `tsc exited ${tsc.exitCode}`;
  // ... and synthesizes (cdk8s runs the DSL's validations here too).
  const out = path.join(work, 'dist');
  await execa('npx', ['tsx', path.join(work, 'main.ts')], { cwd: REPO, env: { CDK8S_OUTDIR: out } });
  synthesized = new Map();
  for (const f of fs.readdirSync(out)) {
    const module = /^imported\d+/.exec(f)?.[0];
    if (!module) continue;
    const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(out, f), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
    for (const vm of docs.filter((d) => d?.kind === 'VirtualMachine')) synthesized.set(`${key(vm)}@${module}`, vm);
  }
}, 240_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('import round trip (import → tsc → tsx synth → compare)', () => {
  it('covers every VM in vms/ and every fixture', () => {
    expect(cases.filter((c) => c.label.startsWith('vms/')).length).toBeGreaterThanOrEqual(4);
    expect(cases.filter((c) => c.label.startsWith('fixtures/')).length).toBeGreaterThanOrEqual(6);
    // Every VM in every input was imported (VMIs included), none skipped.
    const inputs = cases.reduce((n, c) => n + parseManifests(c.text).docs.length, 0);
    expect(expectations.size).toBe(inputs);
  });

  it('the generated code type-checks under the repo tsconfig (strict)', () => {
    expect(tscOutput).toBe('');
  });

  it('every synthesized VirtualMachine equals its input after normalization', () => {
    expect(synthesized.size).toBe(expectations.size);
    for (const [id, { expected }] of expectations) {
      const got = synthesized.get(id);
      expect(got, `no VM synthesized for ${id}`).toBeDefined();
      expect(normalizeVirtualMachine(got), id).toEqual(expected);
    }
  });

  it('every synthesized VirtualMachine passes the manifest validator (KubeVirt schema, unknown fields rejected)', () => {
    for (const [id, vm] of synthesized) expect(formatIssues(validateManifest(vm), id)).toBe('');
  });

  it('the expectation is the input itself (prepared and normalized), not the importer\'s view of it', () => {
    for (const c of cases) {
      for (const doc of parseManifests(c.text).docs) {
        const normalized = normalizeVirtualMachine(prepareVirtualMachine(doc).vm);
        const id = `${key(normalized)}@imported${cases.indexOf(c)}`;
        expect(expectations.get(id)?.expected, id).toEqual(normalized);
      }
    }
  });

  it('vms/ examples come back exactly, without normalization and without JSON patches', () => {
    for (const c of cases.filter((x) => x.label.startsWith('vms/'))) {
      const input = YAML.parse(c.text) as Record<string, unknown>;
      const id = `${key(input)}@imported${cases.indexOf(c)}`;
      expect(synthesized.get(id), id).toEqual(input);
      expect(importManifests(c.text).code, c.label).not.toContain('addJsonPatch');
    }
  });
});
