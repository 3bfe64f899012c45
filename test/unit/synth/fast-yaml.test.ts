/**
 * synth/fast-yaml.ts: for any document, the emitter returns exactly `manifestStringify` of it
 * (cdk8s' `Yaml.stringify`, quoting what other readers would misread), or undefined (the
 * caller then uses manifestStringify). Checked over arbitrary JSON,
 * k8s-like documents full of strings YAML 1.1 treats specially (at every depth, as keys,
 * values and sequence items), the repository's dist/, and an app like the synth benchmark's;
 * the last two must mostly not give up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Chart } from 'cdk8s';
import fc from 'fast-check';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '../../../dsl/index.js';
import { VirtopsApp } from '../../../synth/app.js';
import { manifestStringify, createFastYaml, type FastYaml } from '../../../synth/fast-yaml.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const written = manifestStringify;

/** Asserts `fy(doc)` is undefined or manifestStringify's text; returns whether it emitted. */
function exact(fy: FastYaml, doc: unknown): boolean {
  const got = fy(doc);
  if (got !== undefined) expect(got).toBe(written(doc));
  return got !== undefined;
}

const NASTY = [
  'yes', 'no', 'on', 'off', 'y', 'n', 'Yes', 'NO', 'true', 'False', 'null', 'Null', '~', '', ' ', '1:20', '0x1F', '0o17', '017', '0b101',
  '1e3', '1_000', '.5', '+1', '-1', '1.0', '.inf', '-.Inf', '.nan', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '12:30:00', '=', '<<',
  '-', '- a', '-a', '?', '? a', ':', 'a:', 'a: b', 'a:b', '#x', 'a #b', 'a#b', ' lead', 'trail ', '@', '`', '*a', '&a', '!t', '!!str', '%x',
  '|', '>', '{', '}', '[', ']', ',', "'", '"', "it's", 'say "hi"', `both ' and "`, '\\', '\\n', 'é→', '日本語', '😀', '\u00a0', '\u2028',
  '\u0085', '\t', 'a\tb', '\u0000', '\u0007', '\u001b', '\ud800', '---', '--- x', '...', '... x', 'a---', 'x'.repeat(1100),
  // multi-line: block scalars, chomping, indentation indicators, document markers inside
  'a\nb', 'a\n', 'a\n\n', '\n', '\n\n', ' a\nb', 'a\n b', 'a \nb', 'a\n\nb\n', '#cloud-config\nhostname: x\nruncmd:\n  - echo hi\n',
  '- a\n- b', '---\nx', 'x\n---\ny', 'x\n...', '%YAML\n', 'a\n\t', 'a\r\nb', '\ta\nb', 'x\n \n', 'a\u2028\nb',
];

const nastyString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('a', ' ', '\n', ':', '#', '-', "'", '"', '\t', '%', '.'), maxLength: 10 }) },
);
const key = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('name', 'a', '80', 'null', 'true', 'on', '<<', 'x-y', 'a.b/c') }, { weight: 2, arbitrary: nastyString });
const scalar = fc.oneof(nastyString, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, scalar, tie('map'), tie('seq')),
  map: fc.dictionary(key, tie('tree'), { maxKeys: 5 }),
  seq: fc.array(tie('tree'), { maxLength: 4 }),
}));
/** k8s-like: an object at the top, nested maps and lists of maps. */
const k8sDoc = fc.record({ apiVersion: fc.constant('v1'), kind: nastyString, metadata: fc.dictionary(key, tree, { maxKeys: 4 }), spec: fc.dictionary(key, tree, { maxKeys: 6 }) });

describe('fastYaml is exact or gives up', () => {
  it('arbitrary JSON (fc.jsonValue)', () => {
    const fy = createFastYaml(manifestStringify);
    fc.assert(fc.property(fc.jsonValue(), (d) => void exact(fy, d)), { numRuns: 1500 });
    expect(fy.stats.emitted).toBeGreaterThan(300);
  });

  it('k8s-like documents with strings YAML treats specially, as keys, values and items at every depth', () => {
    const fy = createFastYaml(manifestStringify);
    fc.assert(fc.property(k8sDoc, (d) => void exact(fy, d)), { numRuns: 3000 });
    // Not vacuous: most documents are emitted (give-ups: -0, long keys).
    expect(fy.stats.emitted).toBeGreaterThan(fy.stats.gaveUp);
  });

  it('the same emitter stays exact when its memo is reused and dropped (tiny maxMemo)', () => {
    const fy = createFastYaml(manifestStringify, 7);
    fc.assert(fc.property(fc.array(k8sDoc, { minLength: 2, maxLength: 4 }), (docs) => docs.forEach((d) => exact(fy, d))), { numRuns: 300 });
  });

  it('every nasty string at depths 0-4 in each context', () => {
    const fy = createFastYaml(manifestStringify);
    for (const s of NASTY) {
      for (let depth = 0; depth <= 4; depth++) {
        const nest = (x: unknown): unknown => { for (let i = 0; i < depth; i++) x = i % 2 ? [x, 1] : { k: x, z: 1 }; return x; };
        exact(fy, nest({ [s]: 1, b: 2 }));
        exact(fy, nest({ a: s, b: [s, { [s]: s, c: null }] }));
        exact(fy, nest([s, [s], [[s]], {}, [], null]));
      }
    }
    expect(fy.stats.emitted).toBeGreaterThan(fy.stats.gaveUp);
  });

  it('gives up where the yaml package writes something else: aliases, long keys, non-JSON', () => {
    const fy = createFastYaml(manifestStringify);
    const shared = { x: 1 };
    const giveUps: unknown[] = [
      { a: shared, b: shared }, // &a1 / *a1
      { ['k'.repeat(1100)]: 1 }, // `? k...`
      { a: undefined }, { a: -0 }, { a: new Date(0) }, { a: 1n }, { a: () => 1 }, { a: Number.NaN }, { a: Symbol('s') },
      // eslint-disable-next-line no-sparse-arrays
      { a: [1, , 2] }, 'top-level scalar', Object.assign(Object.create({ inherited: 1 }) as object, { a: 1 }),
    ];
    giveUps.forEach((d, i) => expect(fy(d), `case ${i}`).toBeUndefined());
    const emitted = { a: [], b: {}, c: { d: null, e: 1 }, f: [null, [], {}, [[]]], g: { h: null, i: null } };
    expect(fy(emitted)).toBe(written(emitted));
    expect(fy({})).toBe('{}\n');
    expect(fy([])).toBe('[]\n');
  });
});

describe('real documents are emitted exactly and almost never given up', () => {
  it("the repository's dist/", () => {
    const fy = createFastYaml(manifestStringify);
    const dist = path.join(repo, 'dist');
    let docs = 0;
    for (const file of fs.readdirSync(dist).filter((f) => f.endsWith('.k8s.yaml'))) {
      const text = fs.readFileSync(path.join(dist, file), 'utf8');
      const parsed = YAML.parseAllDocuments(text).map((d) => d.toJS() as unknown);
      // The file is manifestStringify of these documents; the emitter reproduces it.
      expect(parsed.map((d) => fy(d) ?? written(d)).join('---\n'), file).toBe(text);
      docs += parsed.length;
    }
    expect(docs).toBeGreaterThan(20);
    expect(fy.stats.gaveUp).toBe(0);
  });

  it("an app like the synth benchmark's and the init template's (DSL VMs, cloud-init, launcher Pods, CRDs, install)", () => {
    const app = new VirtopsApp({ outdir: fs.mkdtempSync(path.join(repo, 'node_modules/.cache/fast-yaml-test-')) });
    try {
      for (let c = 0; c < 2; c++) {
        const chart = new Chart(app, 'fleet-' + c, { namespace: 'bench' });
        for (let i = 0; i < 10; i++) {
          const name = `vm-${c}-${i}`;
          const vm = new VirtualMachine(chart, name, { name, memory: { guest: Size.mebibytes(256 + i) } });
          vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
          vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromCloudConfig(new CloudConfig({ hostname: name, runcmd: ['echo ' + name] })) }));
        }
      }
      const hello = new Chart(app, 'hello', { namespace: 'default' });
      const vm = new VirtualMachine(hello, 'vm', { name: 'hello', cpu: { cores: 1 }, memory: { guest: Size.mebibytes(256) } });
      vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/kubevirt/cirros-container-disk-demo:latest'), { bootOrder: 1 });
      vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromCloudConfig(new CloudConfig({ hostname: 'hello', runcmd: ['echo "hello from x" > /etc/motd'] })) }));
      app.attachLauncherPods();
      const fy = createFastYaml(manifestStringify);
      const docs = app.charts.flatMap((chart) => chart.toJson() as unknown[]);
      for (const d of docs) exact(fy, d);
      expect(docs.length).toBeGreaterThan(40);
      expect(fy.stats.gaveUp).toBe(0);
    } finally {
      fs.rmSync(app.outdir, { recursive: true, force: true });
    }
  });
});
