import { describe, expect, it } from 'vitest';
import { formatIssues, validateManifest } from '../../../api/validate.js';
import { vmiFromVm } from '../../../api/kubevirt.js';
import { fixtureVm } from './fixtures.js';

type Obj = Record<string, unknown>;
/** A fixture VM with one field set through a path of keys / array indexes. */
function vmWith(path: (string | number)[], value: unknown): unknown {
  const vm = structuredClone(fixtureVm()) as unknown as Obj;
  let node = vm as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = (node[k] ??= {}) as Record<string | number, unknown>;
  node[path.at(-1)!] = value;
  return vm;
}
const T = ['spec', 'template', 'spec'];
const D = [...T, 'domain'];

describe('validateManifest: kubevirt.io/v1', () => {
  it('accepts a valid VM and its VMI', () => {
    expect(validateManifest(fixtureVm())).toEqual([]);
    expect(validateManifest(vmiFromVm(fixtureVm(), '1234'))).toEqual([]);
  });

  it.each([
    ['misspelled field, with a suggestion', [...D, 'cpu', 'corse'], 2, '/spec/template/spec/domain/cpu/corse', /unknown field 'corse'/, /did you mean 'cores'/],
    ['unknown top-level spec field', ['spec', 'runStrategyy'], 'Always', '/spec/runStrategyy', /unknown field/, /runStrategy/],
    ['field inside an empty struct', [...D, 'devices', 'interfaces', 0, 'masquerade', 'port'], 80, '/spec/template/spec/domain/devices/interfaces/0/masquerade/port', /unknown field 'port'/, /takes no fields/],
    ['wrong type', [...D, 'cpu', 'cores'], 'two', '/spec/template/spec/domain/cpu/cores', /must be an integer, got string "two"/, /integer/],
    ['bad quantity', [...D, 'memory', 'guest'], '1 GB', '/spec/template/spec/domain/memory/guest', /'1 GB' is not a valid quantity/, /2Gi/],
    ['quantity of the wrong type', [...D, 'memory', 'guest'], true, '/spec/template/spec/domain/memory/guest', /integer or a quantity string/, /2Gi/],
    ['enum', [...T, 'volumes', 0, 'containerDisk', 'imagePullPolicy'], 'Sometimes', '/spec/template/spec/volumes/0/containerDisk/imagePullPolicy', /must be one of "Always", "IfNotPresent", "Never"/, undefined],
    ['missing required field', [...T, 'volumes', 0, 'containerDisk'], {}, '/spec/template/spec/volumes/0/containerDisk/image', /required field is missing/, /image/],
    ['runStrategy value', ['spec', 'runStrategy'], 'Sometimes', '/spec/runStrategy', /must be one of Always, RerunOnFailure/, undefined],
    ['running with runStrategy', ['spec', 'running'], true, '/spec/running', /mutually exclusive/, /runStrategy/],
    ['disk without a volume', [...D, 'devices', 'disks', 0, 'name'], 'root', '/spec/template/spec/domain/devices/disks/0/name', /no volume of the same name/, /add a volume named 'root'/],
    ['interface without a network', [...T, 'networks', 0, 'name'], 'other', '/spec/template/spec/domain/devices/interfaces/0/name', /no network of the same name/, /spec\.networks/],
    ['zero cores', [...D, 'cpu', 'cores'], 0, '/spec/template/spec/domain/cpu/cores', /at least 1/, undefined],
    ['invalid name', ['metadata', 'name'], 'Web_1', '/metadata/name', /not a valid name/, /lowercase/],
    ['label value not a string', ['metadata', 'labels', 'tier'], 3, '/metadata/labels/tier', /must be a string/, /string/],
  ] as const)('%s', (_, path, value, issuePath, message, fix) => {
    const issues = validateManifest(vmWith([...path], value));
    const issue = issues.find((i) => i.path === issuePath);
    expect(issue, JSON.stringify(issues, null, 1)).toBeDefined();
    expect(issue!.message).toMatch(message);
    if (fix) expect(issue!.fix).toMatch(fix);
  });

  it('reports every problem at once, sorted by path', () => {
    const vm = vmWith([...D, 'cpu', 'corse'], 1) as Obj;
    ((((vm.spec as Obj).template as Obj).spec as Obj).domain as Obj).memory = { guest: 'lots' };
    const paths = validateManifest(vm).map((i) => i.path);
    expect(paths).toEqual(['/spec/template/spec/domain/cpu/corse', '/spec/template/spec/domain/memory/guest']);
  });

  it('keeps labels and annotations free-form (ObjectMeta is not closed)', () => {
    expect(validateManifest(vmWith(['metadata', 'annotations'], { 'example.com/anything': 'x' }))).toEqual([]);
    expect(validateManifest(vmWith([...T, 'nodeSelector'], { 'any/key': 'v' }))).toEqual([]);
  });

  it('rejects unsupported kubevirt.io kinds and versions', () => {
    expect(validateManifest({ ...fixtureVm(), apiVersion: 'kubevirt.io/v1alpha3' })[0]!.fix).toMatch(/kubevirt\.io\/v1/);
    expect(validateManifest({ ...fixtureVm(), kind: 'VirtualMachinePool' })[0]!.message).toMatch(/not supported/);
  });
});

describe('validateManifest: other objects', () => {
  it.each([
    ['not an object', 'hello', ''],
    ['no apiVersion', { kind: 'Pod' }, '/apiVersion'],
    ['no name', { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} }, '/metadata/name'],
    ['namespace on a cluster-scoped kind', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', namespace: 'b' } }, '/metadata/namespace'],
    ['Pod without containers', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [] } }, '/spec/containers'],
    ['container without image', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] } }, '/spec/containers/0/image'],
    ['mount of an undefined volume', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i', volumeMounts: [{ name: 'v', mountPath: '/v' }] }] } }, '/spec/containers/0/volumeMounts/0/name'],
  ])('%s', (_, obj, path) => {
    expect(validateManifest(obj).map((i) => i.path)).toContain(path);
  });

  it('accepts a plain ConfigMap', () => {
    expect(validateManifest({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'n' }, data: {} })).toEqual([]);
  });
});

describe('formatIssues', () => {
  it('prints one line per issue with source, path, message and fix', () => {
    expect(formatIssues([
      { path: '/spec/x', message: "unknown field 'x'", fix: 'remove it' },
      { path: '', message: 'a manifest must be a YAML/JSON object' },
    ], 'dist/web.k8s.yaml')).toBe(
      "dist/web.k8s.yaml: /spec/x: unknown field 'x' (fix: remove it)\ndist/web.k8s.yaml: /: a manifest must be a YAML/JSON object",
    );
  });
});
