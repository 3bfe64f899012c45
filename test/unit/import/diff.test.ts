import { describe, expect, it } from 'vitest';
import { applyPatch, diffJson, pointerToFieldPath } from '../../../dsl/import/diff.js';

const disk = (name: string, extra: Record<string, unknown> = {}) => ({ name, disk: { bus: 'virtio' }, ...extra });

describe('diffJson', () => {
  it.each([
    ['equal documents', { a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }, []],
    ['an added key', { a: 1 }, { a: 1, b: { c: 2 } }, [{ op: 'add', path: '/b', value: { c: 2 } }]],
    ['a removed key', { a: 1, b: 2 }, { a: 1 }, [{ op: 'remove', path: '/b' }]],
    ['a changed leaf', { a: { b: 1 } }, { a: { b: 2 } }, [{ op: 'replace', path: '/a/b', value: 2 }]],
    ['keys with / and ~', { m: {} }, { m: { 'a/b~c': 'x' } }, [{ op: 'add', path: '/m/a~1b~0c', value: 'x' }]],
    ['unnamed arrays of other length', { l: [1] }, { l: [1, 2] }, [{ op: 'replace', path: '/l', value: [1, 2] }]],
    ['a named item missing in the middle', { d: [disk('a'), disk('c')] }, { d: [disk('a'), disk('b'), disk('c')] },
      [{ op: 'add', path: '/d/1', value: disk('b') }]],
    ['a named item to remove', { d: [disk('a'), disk('b')] }, { d: [disk('b')] }, [{ op: 'remove', path: '/d/0' }]],
    ['a field inside a named item after an insertion', { d: [disk('a'), disk('c')] }, { d: [disk('b'), disk('a'), disk('c', { serial: 'x' })] },
      [{ op: 'add', path: '/d/0', value: disk('b') }, { op: 'add', path: '/d/2/serial', value: 'x' }]],
  ])('%s', (_label, from, to, ops) => {
    const patch = diffJson(from, to);
    expect(patch).toEqual(ops);
    expect(applyPatch(from, patch)).toEqual(to);
  });

  it('reordered named items fall back to replacing the list', () => {
    const from = { d: [disk('a'), disk('b')] };
    const to = { d: [disk('b'), disk('a')] };
    const patch = diffJson(from, to);
    expect(applyPatch(from, patch)).toEqual(to);
  });

  it('always produces a patch that turns from into to (random-ish documents)', () => {
    const docs = [
      { spec: { template: { spec: { volumes: [{ name: 'x', emptyDisk: { capacity: '1Gi' } }], domain: { devices: { disks: [disk('x')] } } } } } },
      { spec: { template: { spec: { volumes: [], domain: { devices: {}, cpu: { cores: 2 } } } }, runStrategy: 'Always' } },
      { metadata: { labels: { 'a/b': '1' } }, spec: null },
    ];
    for (const a of docs) for (const b of docs) expect(applyPatch(a, diffJson(a, b))).toEqual(b);
  });
});

describe('pointerToFieldPath', () => {
  it.each([
    ['/spec/template/spec/volumes/1/name', 'spec.template.spec.volumes[1].name'],
    ['/metadata/labels/app.kubernetes.io~1name', 'metadata.labels["app.kubernetes.io/name"]'],
  ])('%s', (pointer, field) => expect(pointerToFieldPath(pointer)).toBe(field));
});
