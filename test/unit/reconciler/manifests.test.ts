import { describe, expect, it } from 'vitest';
import { validateManifest } from '../../../api/validate.js';
import { parseManifestFiles } from '../../../reconciler/source/manifests.js';

const vmYaml = (name: string, extra = '') => `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: ${name}
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices:
          disks:
            - name: root
              disk: { bus: virtio }${extra}
      volumes:
        - name: root
          containerDisk: { image: registry.local/tiny:1 }
`;

describe('parseManifestFiles', () => {
  it('reads every document of every file in path order, skipping empty documents', () => {
    const r = parseManifestFiles([
      { path: 'dist/b.k8s.yaml', text: vmYaml('b') },
      { path: 'dist/a.k8s.yaml', text: `${vmYaml('a1')}---\n${vmYaml('a2')}---\n` },
    ]);
    expect(r.errors).toEqual([]);
    expect(r.manifests.map((m) => m.metadata.name)).toEqual(['a1', 'a2', 'b']);
    expect(r.origins).toEqual(['dist/a.k8s.yaml#0', 'dist/a.k8s.yaml#1', 'dist/b.k8s.yaml#0']);
  });

  it('reports schema issues with file, document, path and fix', () => {
    const r = parseManifestFiles([{ path: 'dist/x.yaml', text: vmYaml('x', '\n          cpu: {}').replace('disk: { bus: virtio }', 'disk: { bus: virtio, cachee: none }') }]);
    expect(r.manifests).toEqual([]);
    expect(r.errors.join('\n')).toMatch(/^dist\/x\.yaml#0: \/spec\/template\/spec\/domain\/devices\/disks\/0\/disk\/cachee: unknown field 'cachee'/m);
  });

  it('reports YAML syntax errors and duplicate objects', () => {
    const r = parseManifestFiles([
      { path: 'dist/bad.yaml', text: 'kind: [unclosed\n' },
      { path: 'dist/one.yaml', text: vmYaml('dup') },
      { path: 'dist/two.yaml', text: vmYaml('dup') },
    ]);
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toMatch(/^dist\/bad\.yaml#0: YAML error/);
    expect(r.errors[1]).toMatch(/dist\/two\.yaml#0: .*also declared in dist\/one\.yaml#0/);
  });

  it('refuses a mapping with a key twice, naming the key and its line', () => {
    const r = parseManifestFiles([{ path: 'dist/dup-key.yaml', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n' }]);
    expect(r.manifests).toEqual([]);
    expect(r.errors).toEqual(['dist/dup-key.yaml#0: YAML error: map key "name" appears twice (line 5) (fix: keep one)']);
  });

  it('names a git LFS pointer and the fix, not only "not an object"', () => {
    const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n';
    const r = parseManifestFiles([{ path: 'dist/web.k8s.yaml', text: pointer }, { path: 'dist/ok.yaml', text: vmYaml('ok') }]);
    expect(r.errors).toEqual([expect.stringMatching(/^dist\/web\.k8s\.yaml: a git LFS pointer, not a manifest \(fix: keep dist\/ out of LFS: .*git add --renormalize dist/)]);
    expect(r.manifests.map((m) => m.metadata.name)).toEqual(['ok']);
  });

  it('accepts an empty file', () => {
    expect(parseManifestFiles([{ path: 'dist/empty.yaml', text: '' }])).toMatchObject({ manifests: [], origins: [], errors: [] });
  });

  describe('with the cache of the previous read (by git blob)', () => {
    const counting = () => {
      const calls: unknown[] = [];
      return { calls, validate: (obj: unknown) => (calls.push(obj), validateManifest(obj)) };
    };

    it('parses only files whose blob it has not seen, and hands out objects of their own', () => {
      const v = counting();
      const files = [
        { path: 'dist/a.yaml', blob: 'aa', text: `${vmYaml('a1')}---\n---\n${vmYaml('a2')}` },
        { path: 'dist/b.yaml', blob: 'bb', text: vmYaml('b') },
      ];
      const first = parseManifestFiles(files, v.validate);
      expect(v.calls).toHaveLength(3);
      expect([...first.cache.keys()]).toEqual(['aa', 'bb']);

      // b changes (new blob); a is read from the cache, its text not even given.
      const second = parseManifestFiles([{ path: 'dist/a.yaml', blob: 'aa', text: '' }, { path: 'dist/b.yaml', blob: 'b2', text: vmYaml('b').replace('runStrategy: Always', 'runStrategy: Halted') }], v.validate, first.cache);
      expect(v.calls).toHaveLength(4);
      expect(second.errors).toEqual([]);
      expect(second.origins).toEqual(['dist/a.yaml#0', 'dist/a.yaml#2', 'dist/b.yaml#0']);
      expect(second.manifests[0]).toEqual(first.manifests[0]);
      expect(second.manifests[0]).not.toBe(first.manifests[0]);
      // The new cache holds this read's files only: the old b is gone.
      expect([...second.cache.keys()]).toEqual(['aa', 'b2']);
    });

    it('a cached file is still checked against the other files (one definition per object)', () => {
      const first = parseManifestFiles([{ path: 'dist/a.yaml', blob: 'aa', text: vmYaml('x') }]);
      const second = parseManifestFiles([{ path: 'dist/a.yaml', blob: 'aa', text: '' }, { path: 'dist/b.yaml', blob: 'bb', text: vmYaml('x') }], validateManifest, first.cache);
      expect(second.errors).toEqual(['dist/b.yaml#0: kubevirt.io/v1/VirtualMachine/default/x is also declared in dist/a.yaml#0 (fix: keep one definition per object)']);
    });

    it('does not keep a file with an issue, nor one whose numbers JSON cannot carry (.inf)', () => {
      const bad = { path: 'dist/bad.yaml', blob: 'cc', text: vmYaml('bad').replace('disk: { bus: virtio }', 'disk: { bus: virtio, cachee: none }') };
      const inf = { path: 'dist/inf.yaml', blob: 'dd', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inf\ndata: {}\nx: .inf\n' };
      const r = parseManifestFiles([bad, inf]);
      // The .inf file is accepted, with its value intact: only the cache leaves it out.
      expect(r.errors).toEqual([expect.stringMatching(/^dist\/bad\.yaml#0: /)]);
      expect(r.manifests.map((m) => [m.metadata.name, (m as { x?: unknown }).x])).toEqual([['inf', Infinity]]);
      expect(r.cache.has('cc')).toBe(false);
      expect(r.cache.has('dd')).toBe(false);
    });
  });
});
