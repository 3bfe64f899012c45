import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import jsYaml from 'js-yaml';
import { parse } from 'yaml';
import { configDriveLayout, noCloudLayout, pickKey, yamlString } from '../../../launcher/volumes/cloud-init.js';

describe('noCloudLayout', () => {
  it('writes meta-data, user-data and network-config under volume id cidata', () => {
    expect(noCloudLayout({ instanceId: 'uid-1', hostname: 'web', userData: '#cloud-config\n', networkData: 'version: 2\n' })).toEqual({
      volumeId: 'cidata',
      files: {
        'meta-data': 'instance-id: uid-1\nlocal-hostname: web\n',
        'user-data': '#cloud-config\n',
        'network-config': 'version: 2\n',
      },
    });
  });
  it('always has a user-data file and leaves out network-config when none is given', () => {
    const { files } = noCloudLayout({ instanceId: 'u', hostname: 'h' });
    expect(Object.keys(files).sort()).toEqual(['meta-data', 'user-data']);
    expect(files['user-data']).toBe('');
  });
  it('meta-data reads back as strings in YAML 1.1 (cloud-init) and 1.2, whatever the VM is named; uids stay plain', () => {
    for (const hostname of ['yes', 'On', '123', '0o17', '1e3', '1e-5', '0e-0', '2001-12-14', '12:30', 'web', 'web-1']) {
      expect(parse(String(noCloudLayout({ instanceId: '0777', hostname }).files['meta-data']), { version: '1.1' })).toEqual({ 'instance-id': '0777', 'local-hostname': hostname });
    }
    expect(yamlString('6f1c0d2e-9a4b-4c3d-8e2f-0123456789ab')).toBe('6f1c0d2e-9a4b-4c3d-8e2f-0123456789ab');
    expect(yamlString('yes')).toBe('"yes"');
    const text = fc.string({ unit: fc.constantFrom('0', '1', '2', '7', '9', 'a', 'e', 'o', 'x', 'y', 'n', 'N', '-', '.', ':', '_', '+', ' ', '"'), maxLength: 12 });
    fc.assert(fc.property(fc.oneof(text, fc.uuid(), fc.constantFrom('true', 'NULL', 'Off', '2001-1-2', '.inf', '~', '')), (s) => {
      const yaml = `v: ${yamlString(s)}\n`;
      expect(parse(yaml, { version: '1.1' }).v).toBe(s);
      expect(parse(yaml).v).toBe(s);
      expect((jsYaml.load(yaml) as { v: unknown }).v).toBe(s);
    }), { numRuns: 2000 });
  });
});

describe('configDriveLayout', () => {
  it('writes the openstack/latest tree under volume id config-2', () => {
    const layout = configDriveLayout({ instanceId: 'uid-2', hostname: 'db', userData: 'ud', networkData: '{"links":[]}' });
    expect(layout.volumeId).toBe('config-2');
    expect(Object.keys(layout.files).sort()).toEqual([
      'openstack/latest/meta_data.json', 'openstack/latest/network_data.json', 'openstack/latest/user_data',
    ]);
    expect(JSON.parse(String(layout.files['openstack/latest/meta_data.json']))).toEqual({ instance_id: 'uid-2', uuid: 'uid-2', hostname: 'db' });
  });
  it('omits user_data when only network data is given', () => {
    expect(Object.keys(configDriveLayout({ instanceId: 'u', hostname: 'h', networkData: '{}' }).files)).not.toContain('openstack/latest/user_data');
  });
});

describe('pickKey', () => {
  it('prefers the first key in order and decodes UTF-8', () => {
    expect(pickKey({ userData: Buffer.from('b'), userdata: Buffer.from('a') }, ['userdata', 'userData'])).toBe('a');
    expect(pickKey({ userData: Buffer.from('é') }, ['userdata', 'userData'])).toBe('é');
    expect(pickKey({}, ['userdata'])).toBeUndefined();
  });
});
