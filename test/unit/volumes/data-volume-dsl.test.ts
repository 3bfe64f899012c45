import { App, Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { unwrittenApp } from '../dsl/helpers.js';
import { DataVolume, DataVolumeSource, Size, dataVolumeTemplate } from '../../../dsl/index.js';
import { validateManifest } from '../../../api/validate.js';

const SUM = `sha256:${'c'.repeat(64)}`;

describe('dsl DataVolume', () => {
  it('synthesizes a CDI DataVolume with the checksum annotation that validates', () => {
    const chart = new Chart(unwrittenApp(), 'c', { namespace: 'default' });
    new DataVolume(chart, 'fedora-root', { source: DataVolumeSource.http('https://example.org/f.qcow2', { checksum: SUM }), size: Size.gibibytes(10) });
    const [obj] = Testing.synth(chart);
    expect(obj).toEqual({
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataVolume',
      metadata: { name: 'fedora-root', namespace: 'default', annotations: { 'virtops.io/checksum': SUM } },
      spec: { source: { http: { url: 'https://example.org/f.qcow2' } }, storage: { resources: { requests: { storage: '10Gi' } } } },
    });
    expect(validateManifest(obj)).toEqual([]);
  });
  it('registry, clone and blank sources', () => {
    expect(dataVolumeTemplate('a', { source: DataVolumeSource.registry('quay.io/containerdisks/fedora:40') }).spec).toMatchObject({ source: { registry: { url: 'docker://quay.io/containerdisks/fedora:40' } } });
    expect(dataVolumeTemplate('b', { source: DataVolumeSource.clone('golden', { namespace: 'images' }) }).spec).toMatchObject({ source: { pvc: { name: 'golden', namespace: 'images' } } });
    expect(dataVolumeTemplate('c', { source: DataVolumeSource.blank(), size: Size.mebibytes(64) }).spec).toEqual({ source: { blank: {} }, storage: { resources: { requests: { storage: '64Mi' } } } });
  });
  it('what cannot be imported is refused at synth, naming the field', () => {
    expect(() => dataVolumeTemplate('d', { source: DataVolumeSource.blank() })).toThrow(/storage\/resources\/requests\/storage: required field is missing/);
    const chart = new Chart(new App(), 'c2');
    new DataVolume(chart, 'bad', { source: DataVolumeSource.http('https://x/y', { checksum: 'md5:abc' }) });
    expect(() => Testing.synth(chart)).toThrow(/virtops.io~1checksum: "md5:abc" is not a checksum/);
  });
});
