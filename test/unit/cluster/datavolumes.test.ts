/**
 * The pure parts of cluster-mode DataVolumes (reconciler/cluster/datavolumes.ts): the
 * DataVolume a VM's template makes, when a template change is applied, what the gate reads
 * for a DataVolume without status, the claim's PVC/PV, the CRD, and the cluster gate's
 * WaitingForVolumeBinding (api/datavolume.ts volumeGate with pendingIsUnbound).
 */
import { describe, expect, it } from 'vitest';
import { type DataVolume, volumeGate } from '../../../api/datavolume.js';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { claimObjects, claimVolumeName, dataVolumeFromTemplate, observedStatus, templateChanged } from '../../../reconciler/cluster/datavolumes.js';
import { claimsOnNode } from '../../../reconciler/cluster/run.js';
import { DATAVOLUME_CRD, renderCrd } from '../../../synth/crds.js';

const vm = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'v', namespace: 'ns', uid: 'vm-uid' },
  spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {} }, volumes: [{ name: 'root', dataVolume: { name: 'root-dv' } }] } } },
} as unknown as VirtualMachine;
const template = {
  metadata: { name: 'root-dv', annotations: { 'virtops.io/checksum': `sha256:${'a'.repeat(64)}` } },
  spec: { source: { http: { url: 'http://h/disk.qcow2' } }, storage: { resources: { requests: { storage: '16Mi' } } } },
};

describe('cluster DataVolumes (pure parts)', () => {
  it('a template becomes a DataVolume in the VM namespace, controlled by the VM', () => {
    const dv = dataVolumeFromTemplate(vm, template);
    expect(dv).toMatchObject({ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name: 'root-dv', namespace: 'ns', annotations: template.metadata.annotations }, spec: template.spec });
    expect(dv.metadata.ownerReferences).toEqual([{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'v', uid: 'vm-uid', controller: true, blockOwnerDeletion: true }]);
  });

  it('a template change is applied only to a DataVolume the VM controls that has not succeeded', () => {
    const have = dataVolumeFromTemplate(vm, template) as DataVolume;
    const fixed = dataVolumeFromTemplate(vm, { ...template, metadata: { name: 'root-dv', annotations: { 'virtops.io/checksum': `sha256:${'b'.repeat(64)}` } } });
    expect(templateChanged(have, dataVolumeFromTemplate(vm, template), 'vm-uid')).toBe(false);
    expect(templateChanged(have, fixed, 'vm-uid')).toBe(true);
    expect(templateChanged({ ...have, status: { phase: 'Succeeded' } }, fixed, 'vm-uid')).toBe(false);
    expect(templateChanged(have, fixed, 'another-vm')).toBe(false);
    expect(templateChanged({ ...have, metadata: { ...have.metadata, ownerReferences: [] } }, fixed, 'vm-uid')).toBe(false);
  });

  it('no status yet: Pending, which the cluster gate shows as WaitingForVolumeBinding', () => {
    const st = observedStatus({ metadata: { name: 'root-dv' } });
    expect(st).toEqual({ phase: 'Pending', progress: 'N/A', claimName: 'root-dv', conditions: [] });
    const volumes = [{ name: 'root', dataVolume: { name: 'root-dv' } }];
    expect(volumeGate(volumes, () => st, { pendingIsUnbound: true })?.reason).toBe('WaitingForVolumeBinding');
    // A single host keeps Provisioning for a declared, not yet recorded DataVolume.
    expect(volumeGate(volumes, () => st)?.reason).toBe('Provisioning');
    expect(observedStatus(undefined)).toBeUndefined();
  });

  it('the claim: a PVC owned by the DataVolume, pre-bound to a local PV pinned to the node', () => {
    const { pv, pvc } = claimObjects({ metadata: { name: 'root-dv', namespace: 'ns', uid: 'dv-uid' } }, { node: 'n1', path: '/s/pvcs/ns/root-dv', bytes: 16n * 1024n * 1024n });
    expect(pv.metadata?.name).toBe(claimVolumeName('dv-uid'));
    expect(pv['spec']).toMatchObject({
      capacity: { storage: '16777216' }, persistentVolumeReclaimPolicy: 'Retain', storageClassName: '', local: { path: '/s/pvcs/ns/root-dv' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }] } },
      claimRef: { namespace: 'ns', name: 'root-dv' },
    });
    expect(pvc.metadata).toMatchObject({ name: 'root-dv', namespace: 'ns', ownerReferences: [{ kind: 'DataVolume', name: 'root-dv', uid: 'dv-uid', controller: true }] });
    expect(pvc['spec']).toMatchObject({ volumeName: pv.metadata?.name, storageClassName: '', resources: { requests: { storage: '16777216' } } });
  });

  it('the CRD has CDI names, a status subresource and its columns', () => {
    const crd = renderCrd(DATAVOLUME_CRD) as { metadata: { name: string }; spec: { group: string; names: { shortNames: string[] }; versions: { name: string; subresources: unknown; additionalPrinterColumns: { name: string }[] }[] } };
    expect(crd.metadata.name).toBe('datavolumes.cdi.kubevirt.io');
    expect(crd.spec.names.shortNames).toEqual(['dv', 'dvs']);
    expect(crd.spec.versions[0]).toMatchObject({ name: 'v1beta1', subresources: { status: {} } });
    expect(crd.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toEqual(['Phase', 'Progress', 'Restarts', 'Age']);
  });

  it('claims in use on a node: the claims of VMIs that run there', () => {
    const vmi = (node: string, claim: string) => ({ metadata: { name: claim, namespace: 'ns' }, spec: { domain: { devices: {} }, volumes: [{ name: 'd', dataVolume: { name: claim } }] }, status: { nodeName: node } });
    expect([...claimsOnNode([vmi('n1', 'a'), vmi('n2', 'b')] as never, 'n1')]).toEqual(['ns/a']);
  });
});
