import { describe, expect, it } from 'vitest';
import { configDriveLayout, noCloudLayout, pickKey } from '../../../launcher/volumes/cloud-init.js';

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
