import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateManifest } from '../../../api/validate.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../integration/instancetype/fixtures');
const fixture = (f: string): unknown => parse(readFileSync(path.join(FIXTURES, f), 'utf8'));

const base = (kind: string, spec: object, metadata: object = { name: 'x' }) => ({ apiVersion: 'instancetype.kubevirt.io/v1beta1', kind, metadata, spec });

describe('validateManifest: instancetype.kubevirt.io/v1beta1', () => {
  it('accepts KubeVirt\'s clarge and virtio examples and the cluster kinds', () => {
    expect(validateManifest(fixture('clarge.yaml'))).toEqual([]);
    expect(validateManifest(fixture('virtio.yaml'))).toEqual([]);
    expect(validateManifest(base('VirtualMachineClusterInstancetype', { cpu: { guest: 2, dedicatedCPUPlacement: true }, memory: { guest: '4Gi', hugepages: { pageSize: '2Mi' } }, ioThreadsPolicy: 'auto' }, { name: 'cx1.large' }))).toEqual([]);
    expect(validateManifest(base('VirtualMachineClusterPreference', { devices: { preferredDiskBus: 'virtio', preferredRng: {} }, firmware: { preferredEfi: { secureBoot: true } }, requirements: { cpu: { guest: 1 }, memory: { guest: '2Gi' } } }, { name: 'fedora' }))).toEqual([]);
  });

  it('rejects unknown fields by path, missing cpu/memory guest, bad quantities', () => {
    expect(validateManifest(base('VirtualMachineInstancetype', { cpu: { guest: 2, sockets: 2 }, memory: { guest: '1Gi' } }))).toEqual([
      { path: '/spec/cpu/sockets', message: "unknown field 'sockets'", fix: expect.any(String) },
    ]);
    expect(validateManifest(base('VirtualMachineInstancetype', { cpu: {}, memory: { guest: 'lots' } })).map((i) => i.path)).toEqual(['/spec/cpu/guest', '/spec/memory/guest']);
    expect(validateManifest(base('VirtualMachinePreference', { devices: { preferedDiskBus: 'virtio' } }))[0]).toMatchObject({ path: '/spec/devices/preferedDiskBus', fix: "did you mean 'preferredDiskBus'?" });
  });

  it('webhook rules: vCPUs, overcommit range and hugepages, topology names', () => {
    expect(validateManifest(base('VirtualMachineInstancetype', { cpu: { guest: 0 }, memory: { guest: '1Gi' } }))[0]!.path).toBe('/spec/cpu/guest');
    expect(validateManifest(base('VirtualMachineInstancetype', { cpu: { guest: 1 }, memory: { guest: '1Gi', overcommitPercent: 150 } }))[0]!.path).toBe('/spec/memory/overcommitPercent');
    expect(validateManifest(base('VirtualMachineInstancetype', { cpu: { guest: 1 }, memory: { guest: '1Gi', overcommitPercent: 10, hugepages: { pageSize: '2Mi' } } }))[0]!.message).toContain('hugepages');
    expect(validateManifest(base('VirtualMachinePreference', { cpu: { preferredCPUTopology: 'numa' } }))[0]!.path).toBe('/spec/cpu/preferredCPUTopology');
  });

  it('cluster kinds take no namespace; unknown kinds and versions of the group are refused', () => {
    expect(validateManifest(base('VirtualMachineClusterPreference', {}, { name: 'x', namespace: 'lab' }))[0]!.path).toBe('/metadata/namespace');
    expect(validateManifest(base('VirtualMachinePreference', {}, { name: 'x', namespace: 'lab' }))).toEqual([]);
    expect(validateManifest({ ...base('VirtualMachinePreference', {}), apiVersion: 'instancetype.kubevirt.io/v1alpha1' })[0]!.fix).toContain('instancetype.kubevirt.io/v1beta1');
  });
});
