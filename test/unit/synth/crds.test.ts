import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { renderCrd, VM_CRD, VMI_CRD } from '../../../synth/crds.js';
import { vmiFromVm } from '../../../api/kubevirt.js';
import { QUANTITY_PATTERN } from '../../../api/kubevirt.js';
import { fixtureVm } from './fixtures.js';

type Node = Record<string, unknown>;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;

function schemaOf(crd: Node): Node {
  const versions = (crd.spec as { versions: { schema: { openAPIV3Schema: Node } }[] }).versions;
  return versions[0]!.schema.openAPIV3Schema;
}

/** Visits every schema node with its JSON pointer. */
function walk(node: Node, at: string, visit: (n: Node, at: string) => void): void {
  visit(node, at);
  for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Node>)) walk(v, `${at}/properties/${k}`, visit);
  if (node.items) walk(node.items as Node, `${at}/items`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties as Node, `${at}/additionalProperties`, visit);
  ((node.anyOf ?? []) as Node[]).forEach((n, i) => walk(n, `${at}/anyOf/${i}`, visit));
}

/**
 * What the API server's strict field validation does with a structural schema: any field
 * the schema does not declare (outside preserve-unknown-fields subtrees) is an error.
 */
function closeSchema(node: Node): Node {
  const out: Node = { ...node };
  if (node.properties) {
    out.properties = Object.fromEntries(Object.entries(node.properties as Record<string, Node>).map(([k, v]) => [k, closeSchema(v)]));
    if (!node['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  }
  if (node.items) out.items = closeSchema(node.items as Node);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') out.additionalProperties = closeSchema(node.additionalProperties as Node);
  return out;
}

function ajvFor(schema: Node) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(closeSchema(schema));
}

describe.each([
  ['VirtualMachine', VM_CRD],
  ['VirtualMachineInstance', VMI_CRD],
])('%s CRD', (kind, names) => {
  const crd = renderCrd(names);
  const schema = schemaOf(crd);

  it('is kubevirt.io/v1, served + storage, namespaced, with status subresource, short names and printer columns', () => {
    const spec = crd.spec as Node & { versions: Node[]; names: Node };
    expect((crd.metadata as Node).name).toBe(`${names.plural}.kubevirt.io`);
    expect(spec.scope).toBe('Namespaced');
    expect(spec.names).toMatchObject({ kind, shortNames: names.shortNames, categories: ['all'] });
    expect(spec.versions).toHaveLength(1);
    expect(spec.versions[0]).toMatchObject({ name: 'v1', served: true, storage: true, subresources: { status: {} } });
    const cols = (spec.versions[0]!.additionalPrinterColumns as Node[]).map((c) => [c.name, c.jsonPath]);
    expect(cols.slice(0, 3)).toEqual([
      ['Age', '.metadata.creationTimestamp'],
      ['Status', '.status.printableStatus'],
      ['Ready', ".status.conditions[?(@.type=='Ready')].status"],
    ]);
  });

  it('has a structural schema: every node typed (or int-or-string / preserve-unknown), no $ref, no defaults', () => {
    const bad: string[] = [];
    walk(schema, '', (n, at) => {
      if (at.includes('/anyOf/')) {
        // kube-apiserver: int-or-string branches may hold nothing but their type (422 otherwise).
        if (Object.keys(n).join() !== 'type') bad.push(`${at}: anyOf branch with more than a type`);
        return;
      }
      if ('$ref' in n) bad.push(`${at}: $ref`);
      if ('default' in n) bad.push(`${at}: default`);
      if (!n.type && !n['x-kubernetes-int-or-string'] && !n['x-kubernetes-preserve-unknown-fields']) bad.push(`${at}: no type`);
      if (n.properties && n.additionalProperties) bad.push(`${at}: properties and additionalProperties`);
    });
    expect(JSON.stringify(schema)).not.toContain('$ref');
    expect(bad).toEqual([]);
  });

  it('keeps root metadata to `type: object` and nested metadata open', () => {
    expect((schema.properties as Record<string, Node>).metadata).toEqual({ type: 'object' });
  });

  const manifest = kind === 'VirtualMachine' ? fixtureVm() : vmiFromVm(fixtureVm());
  it('accepts a valid object (ajv)', () => {
    const validate = ajvFor(schema);
    expect(validate(manifest), JSON.stringify(validate.errors)).toBe(true);
  });

  it('rejects an unknown field and a wrong type (ajv)', () => {
    const validate = ajvFor(schema);
    const typo = structuredClone(manifest) as unknown as { spec: Node };
    const domain = kind === 'VirtualMachine'
      ? ((typo.spec.template as Node).spec as Node).domain as Node
      : typo.spec.domain as Node;
    (domain.cpu as Node).corse = 2;
    expect(validate(typo)).toBe(false);
    expect(validate.errors!.some((e) => e.keyword === 'additionalProperties' && e.params.additionalProperty === 'corse')).toBe(true);
    (domain.cpu as Node).corse = undefined;
    delete (domain.cpu as Node).corse;
    (domain.cpu as Node).cores = 'two';
    expect(validate(typo)).toBe(false);
    expect(validate.errors![0]!.instancePath).toMatch(/\/domain\/cpu\/cores$/);
  });
});

describe('VirtualMachine CRD schema details', () => {
  const schema = schemaOf(renderCrd(VM_CRD));
  const at = (...path: string[]): Node => path.reduce((n, k) => (k === '[]' ? n.items : (n.properties as Record<string, Node>)[k]) as Node, schema);

  it('makes quantities int-or-string with the quantity pattern next to the anyOf (as controller-gen does)', () => {
    const mem = at('spec', 'template', 'spec', 'domain', 'memory', 'guest');
    expect(mem['x-kubernetes-int-or-string']).toBe(true);
    expect(mem.anyOf).toEqual([{ type: 'integer' }, { type: 'string' }]);
    expect(mem.pattern).toBe(QUANTITY_PATTERN);
  });

  it('still rejects a malformed quantity string and accepts an integer one (ajv)', () => {
    const validate = ajvFor(schema);
    const vm = fixtureVm() as unknown as { spec: Node };
    const domain = ((vm.spec.template as Node).spec as Node).domain as Node;
    (domain.memory as Node).guest = '128 MiB';
    expect(validate(vm)).toBe(false);
    expect(validate.errors!.some((e) => e.keyword === 'pattern' && /\/memory\/guest$/.test(e.instancePath))).toBe(true);
    (domain.memory as Node).guest = 134217728;
    expect(validate(vm), JSON.stringify(validate.errors)).toBe(true);
  });

  it('keeps template metadata (labels/annotations) from being pruned', () => {
    expect(at('spec', 'template', 'metadata')).toEqual({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  });

  it('keeps enums (containerDisk imagePullPolicy)', () => {
    expect(at('spec', 'template', 'spec', 'volumes', '[]', 'containerDisk', 'imagePullPolicy').enum).toEqual(['Always', 'IfNotPresent', 'Never']);
  });
});
