import { describe, expect, it } from 'vitest';
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

  it('accepts an empty file', () => {
    expect(parseManifestFiles([{ path: 'dist/empty.yaml', text: '' }])).toEqual({ manifests: [], origins: [], errors: [] });
  });
});
