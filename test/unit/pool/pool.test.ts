/**
 * VirtualMachinePool: validation (schema, selector ↔ template labels, unsupported strategies,
 * refused ReplicaSet/Preset) and the pure expansion both modes call (names, scale-out into the
 * lowest free indices, scale-in order per sort policy, per-VM secret/configMap/DataVolume
 * names, owner reference, status).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  type VirtualMachinePool, derivedPoolUid, expandPool, indexFromName, ownedByPool, poolStatus, poolVm, selectorMatches, selectorString,
} from '../../../api/pool.js';
import { formatIssues, validateManifest } from '../../../api/validate.js';
import { formatPools } from '../../../cli/pool-format.js';

const fixture = (name: string): any => YAML.parse(readFileSync(new URL(`./fixtures/${name}.yaml`, import.meta.url), 'utf8'));

function pool(over: Partial<VirtualMachinePool['spec']> = {}, name = 'web'): VirtualMachinePool {
  return {
    apiVersion: 'pool.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePool',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: name } },
      virtualMachineTemplate: {
        metadata: { labels: { app: name }, annotations: { note: 'x' } },
        spec: {
          runStrategy: 'Always',
          template: {
            metadata: { labels: { app: name } },
            spec: {
              domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'ci', disk: { bus: 'virtio' } }] }, memory: { guest: '64Mi' } },
              volumes: [
                { name: 'root', containerDisk: { image: 'example/disk' } },
                { name: 'ci', cloudInitNoCloud: { secretRef: { name: 'userdata' }, networkDataSecretRef: { name: 'netdata' } } },
              ],
            },
          },
        },
      },
      ...over,
    },
  };
}

const issuesOf = (o: unknown): string => formatIssues(validateManifest(o));

describe('validation', () => {
  it("accepts KubeVirt's examples/vm-pool-cirros.yaml (its kubectl-dump nulls dropped, as import does)", () => {
    const example = fixture('vm-pool-cirros');
    delete example.spec.virtualMachineTemplate.metadata.creationTimestamp;
    delete example.spec.virtualMachineTemplate.spec.template.metadata.creationTimestamp;
    expect(issuesOf(example)).toBe('');
    expect(issuesOf(pool())).toBe('');
  });

  it('refuses a selector that does not match the template labels, naming both', () => {
    const p = pool({ selector: { matchLabels: { app: 'other' } } });
    const text = issuesOf(p);
    expect(text).toContain('/spec/selector');
    expect(text).toContain("selector 'app=other'");
    expect(text).toContain('spec.virtualMachineTemplate.metadata.labels');
  });

  it('refuses an empty selector and negative replicas', () => {
    expect(issuesOf(pool({ selector: {} }))).toContain('/spec/selector: an empty selector');
    expect(issuesOf(pool({ replicas: -1 }))).toContain('/spec/replicas');
  });

  it('refuses unknown fields and template VM errors at the template path', () => {
    const p = pool() as any;
    p.spec.replica = 2;
    expect(issuesOf(p)).toContain("/spec/replica: unknown field 'replica'");
    const q = pool() as any;
    q.spec.virtualMachineTemplate.spec.template.spec.volumes[0].name = 'rootfs';
    expect(issuesOf(q)).toContain("/spec/virtualMachineTemplate/spec/template/spec/domain/devices/disks/0/name: disk 'root' has no volume");
  });

  it('refuses strategies virtops does not carry out, by name', () => {
    expect(issuesOf(pool({ autohealing: {} }))).toContain('/spec/autohealing: not supported by virtops');
    expect(issuesOf(pool({ scaleInStrategy: { opportunistic: {} } }))).toContain('/spec/scaleInStrategy/opportunistic');
    expect(issuesOf(pool({ scaleInStrategy: { proactive: { selectionPolicy: { sortPolicy: 'Biggest' as never } } } }))).toContain('must be one of AscendingOrder');
    expect(issuesOf(pool({ maxUnavailable: 1 }))).toContain('/spec/maxUnavailable');
  });

  it('refuses a pool name with dots (its VM names must be DNS labels)', () => {
    expect(issuesOf(pool({}, 'web.lab'))).toContain("/metadata/name: 'web.lab' is not a valid pool name");
  });

  it('refuses a pool whose VM names would be too long', () => {
    const text = issuesOf(pool({ replicas: 10 }, 'p'.repeat(62)));
    expect(text).toContain("/metadata/name: the pool's VMs would be named up to");
  });

  it('refuses VirtualMachineInstanceReplicaSet and VirtualMachineInstancePreset naming the replacement', () => {
    expect(issuesOf(fixture('vmi-replicaset-cirros'))).toMatch(/VirtualMachineInstanceReplicaSet is not supported by virtops \(fix: use a VirtualMachinePool/);
    expect(issuesOf(fixture('vmi-preset-small'))).toMatch(/VirtualMachineInstancePreset is not supported by virtops \(fix: use instancetypes and preferences/);
    expect(issuesOf({ ...fixture('vm-pool-cirros'), apiVersion: 'pool.kubevirt.io/v1alpha1' })).toContain("use apiVersion 'pool.kubevirt.io/v1beta1'");
  });
});

describe('selectors', () => {
  it.each([
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'In' as const, values: ['1', '2'] }] }, { a: '2' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, { a: '1' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, {}, false],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' as const }] }, {}, true],
  ])('%j matches %j: %s', (sel, labels, want) => {
    expect(selectorMatches(sel, labels)).toBe(want);
  });

  it('canonical string, sorted by key', () => {
    expect(selectorString({ matchLabels: { z: '1', a: '2' }, matchExpressions: [{ key: 'm', operator: 'In', values: ['y', 'x'] }, { key: 'n', operator: 'DoesNotExist' }] }))
      .toBe('a=2,m in (x,y),!n,z=1');
  });
});

describe('expandPool', () => {
  const names = (r: { vms: { metadata: { name?: string } }[] }) => r.vms.map((v) => v.metadata.name);

  it('replicas VMs named <pool>-<n> from 0, with template labels/annotations and an owner reference', () => {
    const r = expandPool(pool(), { owned: [], taken: new Set() });
    expect(names(r)).toEqual(['web-0', 'web-1', 'web-2']);
    expect(r.create).toEqual(['web-0', 'web-1', 'web-2']);
    const vm = r.vms[1]!;
    expect(vm.metadata.labels).toEqual({ app: 'web' });
    expect(vm.metadata.annotations).toEqual({ note: 'x' });
    expect(vm.metadata.ownerReferences).toEqual([{ apiVersion: 'pool.kubevirt.io/v1beta1', kind: 'VirtualMachinePool', name: 'web', uid: derivedPoolUid('default', 'web'), controller: true, blockOwnerDeletion: true }]);
    expect(ownedByPool(vm, pool())).toBe(true);
    expect(issuesOf(vm)).toBe('');
  });

  it('replicas defaults to 1', () => {
    const p = pool();
    delete p.spec.replicas;
    expect(names(expandPool(p, { owned: [], taken: new Set() }))).toEqual(['web-0']);
  });

  it('scale-out takes the lowest free indices, skipping names other VMs hold', () => {
    const r = expandPool(pool({ replicas: 5 }), { owned: [{ name: 'web-0' }, { name: 'web-3' }], taken: new Set(['web-1']) });
    expect(r.create).toEqual(['web-2', 'web-4', 'web-5']);
    expect(names(r)).toEqual(['web-0', 'web-2', 'web-3', 'web-4', 'web-5']);
  });

  it.each([
    [undefined, ['web-4', 'web-3', 'web-2']],
    ['Random', ['web-4', 'web-3', 'web-2']],
    ['DescendingOrder', ['web-4', 'web-3', 'web-2']],
    ['AscendingOrder', ['web-0', 'web-1', 'web-2']],
    ['Newest', ['web-0', 'web-1', 'web-4']],
    ['Oldest', ['web-3', 'web-2', 'web-4']],
  ] as const)('scale-in 5 → 2 with sortPolicy %s removes %j', (sortPolicy, removed) => {
    const p = pool({ replicas: 2, ...(sortPolicy ? { scaleInStrategy: { proactive: { selectionPolicy: { sortPolicy } } } } : {}) });
    const created = [50, 40, 20, 10, 30];
    const owned = created.map((t, i) => ({ name: `web-${i}`, createdAt: t }));
    const r = expandPool(p, { owned, taken: new Set() });
    expect(r.remove).toEqual(removed);
    expect(r.vms).toHaveLength(2);
  });

  it('a paused pool neither grows nor shrinks', () => {
    const r = expandPool(pool({ replicas: 1, paused: true }), { owned: [{ name: 'web-0' }, { name: 'web-1' }], taken: new Set() });
    expect(r.remove).toEqual([]);
    expect(names(r)).toEqual(['web-0', 'web-1']);
  });

  it('per-VM secret refs only when nameGeneration asks for them', () => {
    const plain = poolVm(pool(), 2);
    expect(plain.spec.template.spec.volumes?.[1]?.cloudInitNoCloud?.secretRef?.name).toBe('userdata');
    const unique = poolVm(pool({ nameGeneration: { appendIndexToSecretRefs: true } }), 2);
    expect(unique.spec.template.spec.volumes?.[1]?.cloudInitNoCloud).toEqual({ secretRef: { name: 'userdata-2' }, networkDataSecretRef: { name: 'netdata-2' } });
  });

  it('configMap/secret volumes and DataVolume templates get the index', () => {
    const p = pool({ nameGeneration: { appendIndexToConfigMapRefs: true, appendIndexToSecretRefs: false } });
    const t = p.spec.virtualMachineTemplate.spec;
    t.dataVolumeTemplates = [{ metadata: { name: 'root-dv' }, spec: {} }];
    t.template.spec.volumes = [
      { name: 'root', dataVolume: { name: 'root-dv' } },
      { name: 'cm', configMap: { name: 'conf' } },
      { name: 'sec', secret: { secretName: 'keys' } },
      { name: 'claim', persistentVolumeClaim: { claimName: 'root-dv' } },
    ];
    const vm = poolVm(p, 4);
    expect(vm.spec.dataVolumeTemplates?.[0]).toEqual({ metadata: { name: 'root-dv-4' }, spec: {} });
    expect(vm.spec.template.spec.volumes).toEqual([
      { name: 'root', dataVolume: { name: 'root-dv-4' } },
      { name: 'cm', configMap: { name: 'conf-4' } },
      { name: 'sec', secret: { secretName: 'keys' } },
      { name: 'claim', persistentVolumeClaim: { claimName: 'root-dv-4' } },
    ]);
    // The template itself is untouched.
    expect(t.dataVolumeTemplates[0]).toEqual({ metadata: { name: 'root-dv' }, spec: {} });
  });

  it('a VM of another pool or not selected is not owned', () => {
    const vm = poolVm(pool(), 0);
    expect(ownedByPool(vm, pool({}, 'api'))).toBe(false);
    expect(ownedByPool({ ...vm, metadata: { ...vm.metadata, labels: { app: 'relabelled' } } }, pool())).toBe(false);
    expect(ownedByPool(vm, { ...pool(), metadata: { name: 'web', namespace: 'default', uid: 'other' } })).toBe(false);
  });

  it('indexFromName', () => {
    expect(indexFromName('web-12')).toBe(12);
    expect(indexFromName('web')).toBeUndefined();
  });
});

describe('poolStatus', () => {
  it('replicas, readyReplicas and the label selector', () => {
    expect(poolStatus(pool(), [{ name: 'web-0', ready: true }, { name: 'web-1', ready: false }])).toEqual({ replicas: 2, readyReplicas: 1, labelSelector: 'app=web' });
  });
});

describe('formatPools', () => {
  it('KubeVirt-like columns plus the VMs', () => {
    const view = { namespace: 'default', name: 'web', desired: 3, paused: false, status: { replicas: 2, readyReplicas: 1, labelSelector: 'app=web' }, vms: ['web-0', 'web-1'] };
    expect(formatPools([view], { allNamespaces: false })).toBe(['NAME   DESIRED   CURRENT   READY   VMS', 'web    3         2         1       web-0,web-1'].join('\n'));
    expect(formatPools([], { allNamespaces: true })).toBeUndefined();
  });
});
