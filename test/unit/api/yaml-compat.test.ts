/**
 * api/yaml-compat.ts: the YAML virtops writes (manifests: synth/fast-yaml.ts
 * manifestStringify; cloud-config: dsl/cloud-init.ts) reads back as written in every reader
 * it has: the yaml package as YAML 1.2 (the git source, the CLI) and as YAML 1.1 with merge
 * keys (standing in for kubectl's and cloud-init's YAML 1.1 readers), and js-yaml's core and
 * default schemas (synth's validation). And the quotes it adds change nothing for a YAML 1.1
 * reader: the manifests mean what cdk8s' own text meant.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chart, Yaml } from 'cdk8s';
import fc from 'fast-check';
import jsYaml from 'js-yaml';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { CloudConfig, Size, VirtualMachine } from '../../../dsl/index.js';
import { parseManifestFiles } from '../../../reconciler/source/manifests.js';
import { VirtopsApp } from '../../../synth/app.js';
import { manifestStringify } from '../../../synth/fast-yaml.js';
import { toYaml } from '../../../api/yaml-compat.js';
import { parseYamlDocuments } from '../../../synth/run.js';

/** Plain text some YAML schema reads as a non-string (1.1, 1.2 core, js-yaml), and look-alikes that stay strings. */
const TYPED_LOOKING = [
  '0o17', '+0o7', '-0o7', '0O17', '0o8', '0x1F', '-0x1', '0x_1', '017', '0777', '08', '0b101', '-0b1', '1_000', '1__0', '+12', '-1', '.5', '0.', '1e3', '1.0e+3',
  '12e03', '1E3', '.inf', '-.Inf', '+.INF', '.nan', '.NaN', 'yes', 'No', 'ON', 'off', 'y', 'N', 'true', 'False', 'null', 'Null', 'NULL', '~', '',
  '1:20', '-1:20:30', '1:20.5', '12:30:00', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10 -5', '<<', '=', '!!str', 'a', '0o',
];
const typedLooking = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TYPED_LOOKING) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('0', '1', '7', '8', 'o', 'x', 'b', 'e', '_', ':', '.', '+', '-', 'y', 'n', '<', '='), maxLength: 6 }) },
);
const scalar = fc.oneof(typedLooking, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small' }, scalar, scalar, tie('map'), tie('seq')),
  map: fc.dictionary(typedLooking, tie('tree'), { maxKeys: 5 }),
  seq: fc.array(tie('tree'), { maxLength: 4 }),
}));
const doc = fc.dictionary(typedLooking, tree, { minKeys: 1, maxKeys: 6 });

/** What each reader makes of `text`, as JSON text (Dates and other types would show). */
function readers(text: string): Record<string, string> {
  const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x instanceof Date ? `Date(${x.toISOString()})` : x));
  return {
    'yaml 1.2': json(YAML.parse(text)),
    'yaml 1.1': json(YAML.parse(text, { version: '1.1' })),
    'js-yaml core': json(jsYaml.load(text, { schema: jsYaml.CORE_SCHEMA })),
    'js-yaml default': json(jsYaml.load(text)),
  };
}

/** JSON as written: -0 becomes 0 (YAML has no -0 for JSON's sake either). */
const asJson = (v: unknown): string => JSON.stringify(JSON.parse(JSON.stringify(v)));

describe('YAML that every reader reads back as written', () => {
  it('manifestStringify: any document, under YAML 1.1, YAML 1.2 and js-yaml', () => {
    fc.assert(fc.property(doc, (d) => {
      const text = manifestStringify(d);
      const want = asJson(d);
      for (const [reader, got] of Object.entries(readers(text))) expect(got, `${reader} of:\n${text}`).toBe(want);
    }), { numRuns: 1500 });
  });

  it("manifestStringify only adds quotes: a YAML 1.1 reader (kubectl) reads cdk8s' text the same", () => {
    const noMergeKeys = doc.filter((d) => !JSON.stringify(d).includes('"<<":'));
    fc.assert(fc.property(noMergeKeys, (d) => {
      expect(asJson(YAML.parse(manifestStringify(d), { version: '1.1' }))).toBe(asJson(YAML.parse(Yaml.stringify(d), { version: '1.1' })));
    }), { numRuns: 500 });
  });

  it('quotes 0o17, +0o7, << and = and leaves other strings as cdk8s writes them', () => {
    expect(manifestStringify({ a: '0o17', b: '+0o7', '<<': '=', c: 'web-1', d: 'yes' })).toBe('a: "0o17"\nb: "+0o7"\n"<<": "="\nc: web-1\nd: "yes"\n');
    expect(manifestStringify({ c: 'web-1', d: 'yes', n: 17, s: 'a b' })).toBe(Yaml.stringify({ c: 'web-1', d: 'yes', n: 17, s: 'a b' }));
  });

  it('toYaml (the CLI\'s -o yaml, virtops expand, the dashboard): any document, in every reader', () => {
    fc.assert(fc.property(doc, (d) => {
      const text = toYaml(d);
      for (const [reader, got] of Object.entries(readers(text))) expect(got, `${reader} of:\n${text}`).toBe(asJson(d));
    }), { numRuns: 500 });
  });

  it('cloud-config: cloud-init (YAML 1.1) reads strings as strings', () => {
    fc.assert(fc.property(fc.array(typedLooking, { minLength: 1, maxLength: 5 }), (commands) => {
      const text = new CloudConfig({ runcmd: commands }).render();
      expect(text.startsWith('#cloud-config\n')).toBe(true);
      for (const [reader, got] of Object.entries(readers(text))) expect(JSON.parse(got).runcmd, `${reader} of:\n${text}`).toEqual(commands);
    }), { numRuns: 300 });
  });
});

describe('a label 0o17 from the DSL reaches the git source as the string it is', () => {
  it('VirtopsApp → dist/ → synth validation and parseManifestFiles', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-yaml-compat-'));
    try {
      const app = new VirtopsApp({ outdir, crds: false, install: false });
      const chart = new Chart(app, 'web', { namespace: 'default' });
      new VirtualMachine(chart, 'vm', { name: 'web', memory: { guest: Size.mebibytes(256) }, labels: { build: '0o17', rev: '+0o7', on: 'yes' } });
      app.synth();
      const text = fs.readFileSync(path.join(outdir, 'web.k8s.yaml'), 'utf8');
      const vm = (docs: unknown[]): unknown => docs.find((o) => (o as { kind?: string }).kind === 'VirtualMachine');
      const want = { build: '0o17', rev: '+0o7', on: 'yes' };
      expect((vm(parseYamlDocuments(text)) as { metadata: { labels: unknown } }).metadata.labels).toEqual(want);
      const parsed = parseManifestFiles([{ path: 'dist/web.k8s.yaml', text }]);
      expect(parsed.errors).toEqual([]);
      expect((vm(parsed.manifests) as { metadata: { labels: unknown } }).metadata.labels).toEqual(want);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
