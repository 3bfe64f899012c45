import { describe, expect, it } from 'vitest';
import type { Volume, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { InvalidVolumeError } from '../../../launcher/volumes/errors.js';
import { capacityBytes, decodeBase64, isoVolumeId, planVolumes, volumeDirs } from '../../../launcher/volumes/plan.js';

function vmi(volumes: Volume[], extra: Partial<VirtualMachineInstance['spec']> = {}, uid: string | null = 'uid-1'): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'web', namespace: 'prod', ...(uid ? { uid } : {}) },
    spec: { domain: { devices: {} }, volumes, ...extra },
  };
}

function planError(v: VirtualMachineInstance): InvalidVolumeError {
  try {
    planVolumes(v, '/vms/web');
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidVolumeError);
    return err as InvalidVolumeError;
  }
  throw new Error('planVolumes did not throw');
}

describe('capacityBytes', () => {
  it.each([
    ['1Gi', 1073741824n], ['512Mi', 536870912n], ['1G', 1000000000n], ['1.5Ki', 1536n], ['100', 100n], ['0.5', 1n],
  ])('%s → %s bytes', (q, bytes) => expect(capacityBytes(q, 'v', 'p')).toBe(bytes));
  it.each([['', /required/], ['0', /not positive/], ['-1Gi', /not positive/], ['ten', /not a Kubernetes quantity/]])(
    '%j is refused naming the field',
    (q, msg) => {
      expect(() => capacityBytes(q, 'scratch', 'spec.volumes[0].emptyDisk.capacity')).toThrow(msg);
      expect(() => capacityBytes(q, 'scratch', 'spec.volumes[0].emptyDisk.capacity')).toThrow(/spec\.volumes\[0\]\.emptyDisk\.capacity/);
    },
  );
});

describe('volumeDirs', () => {
  it('keeps persistent files per VM and ephemeral ones per VMI uid', () => {
    expect(volumeDirs('/vms/web', vmi([]))).toEqual({
      root: '/vms/web/volumes',
      persistent: '/vms/web/volumes/persistent',
      ephemeralRoot: '/vms/web/volumes/ephemeral',
      ephemeral: '/vms/web/volumes/ephemeral/uid-1',
    });
  });
  it('never lets a uid climb out of the directory', () => {
    expect(volumeDirs('/vms/web', vmi([], {}, '../../etc')).ephemeral).toBe('/vms/web/volumes/ephemeral/no-uid');
  });
});

describe('planVolumes', () => {
  it('plans every supported source with its path', () => {
    const plan = planVolumes(
      vmi([
        { name: 'root', containerDisk: { image: 'reg.example/disk:1' } },
        { name: 'scratch', emptyDisk: { capacity: '1Gi' } },
        { name: 'data', hostDisk: { path: '/srv/data.img', type: 'DiskOrCreate', capacity: '2Gi' } },
        { name: 'db', persistentVolumeClaim: { claimName: 'db-pvc', readOnly: true } },
        { name: 'dv', dataVolume: { name: 'dv-1' } },
        { name: 'eph', ephemeral: { persistentVolumeClaim: { claimName: 'golden' } } },
        { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config' } },
        { name: 'cfg', configMap: { name: 'app-config', volumeLabel: 'CFG' } },
        { name: 'sa', serviceAccount: { serviceAccountName: 'default' } },
      ], { hostname: 'web-0' }),
      '/vms/web',
    );
    const eph = '/vms/web/volumes/ephemeral/uid-1';
    expect(plan.namespace).toBe('prod');
    expect(plan.instanceId).toBe('uid-1');
    expect(plan.hostname).toBe('web-0');
    expect(plan.volumes).toEqual([
      { kind: 'containerDisk', name: 'root', ref: { image: 'reg.example/disk:1', pullPolicy: 'IfNotPresent' }, overlayPath: `${eph}/root.qcow2` },
      { kind: 'emptyDisk', name: 'scratch', path: '/vms/web/volumes/persistent/scratch.qcow2', bytes: 1073741824n },
      { kind: 'hostDisk', name: 'data', path: '/srv/data.img', create: true, bytes: 2147483648n },
      { kind: 'claim', name: 'db', claimName: 'db-pvc', readOnly: true, field: 'spec.volumes[3].persistentVolumeClaim.claimName' },
      { kind: 'claim', name: 'dv', claimName: 'dv-1', readOnly: false, field: 'spec.volumes[4].dataVolume.name' },
      { kind: 'claim', name: 'eph', claimName: 'golden', readOnly: true, field: 'spec.volumes[5].ephemeral.persistentVolumeClaim.claimName', overlayPath: `${eph}/eph.qcow2` },
      { kind: 'cloudInit', name: 'ci', flavor: 'noCloud', source: { userData: '#cloud-config' }, field: 'spec.volumes[6].cloudInitNoCloud', isoPath: `${eph}/ci.iso` },
      { kind: 'objectIso', name: 'cfg', object: 'configMap', objectName: 'app-config', optional: false, volumeId: 'CFG', field: 'spec.volumes[7].configMap.name', isoPath: `${eph}/cfg.iso` },
      { kind: 'objectIso', name: 'sa', object: 'serviceAccount', objectName: 'default', optional: false, volumeId: 'sa', field: 'spec.volumes[8].serviceAccount.serviceAccountName', isoPath: `${eph}/sa.iso` },
    ]);
  });

  it('falls back to name.namespace as instance-id and the name as hostname', () => {
    const plan = planVolumes(vmi([], {}, null), '/vms/web');
    expect(plan.instanceId).toBe('web.prod');
    expect(plan.hostname).toBe('web');
  });

  it('plans kernel boot from firmware.kernelBoot.container', () => {
    const v = vmi([]);
    v.spec.domain.firmware = { kernelBoot: { container: { image: 'reg/kb:latest', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' } } };
    expect(planVolumes(v, '/vms/web').kernelBoot).toEqual({
      ref: { image: 'reg/kb:latest', pullPolicy: 'Always' }, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img',
    });
  });

  it.each<[string, Volume[], RegExp]>([
    ['duplicate names', [{ name: 'a', emptyDisk: { capacity: '1Mi' } }, { name: 'a', emptyDisk: { capacity: '1Mi' } }], /spec\.volumes\[1\]\.name: volume name "a" is used twice/],
    ['no source', [{ name: 'a' }], /spec\.volumes\[0\]: has no source/],
    ['two sources', [{ name: 'a', emptyDisk: { capacity: '1Mi' }, hostDisk: { path: '/x', type: 'Disk' } }], /has several sources \(emptyDisk, hostDisk\)/],
    ['a path-climbing name', [{ name: '../x', emptyDisk: { capacity: '1Mi' } }], /spec\.volumes\[0\]\.name: "\.\.\/x" is not a valid name/],
    ['a relative hostDisk path', [{ name: 'a', hostDisk: { path: 'data.img', type: 'Disk' } }], /spec\.volumes\[0\]\.hostDisk\.path: "data.img" is not an absolute path/],
    ['DiskOrCreate without capacity', [{ name: 'a', hostDisk: { path: '/d.img', type: 'DiskOrCreate' } }], /hostDisk\.capacity: capacity is required/],
    ['an unknown hostDisk type', [{ name: 'a', hostDisk: { path: '/d.img', type: 'Dsk' as 'Disk' } }], /hostDisk\.type: "Dsk" is not a hostDisk type/],
    ['an empty image', [{ name: 'a', containerDisk: { image: ' ' } }], /containerDisk\.image: " " is not an image reference/],
    ['a bad pull policy', [{ name: 'a', containerDisk: { image: 'x', imagePullPolicy: 'Sometimes' as 'Always' } }], /containerDisk\.imagePullPolicy: "Sometimes"/],
    ['a relative containerDisk path', [{ name: 'a', containerDisk: { image: 'x', path: 'disk/x.img' } }], /containerDisk\.path: "disk\/x.img" is not an absolute path/],
    ['cloud-init without data', [{ name: 'ci', cloudInitNoCloud: {} }], /cloudInitNoCloud: has neither user data nor network data/],
    ['cloud-init with two user data sources', [{ name: 'ci', cloudInitConfigDrive: { userData: 'a', secretRef: { name: 's' } } }], /cloudInitConfigDrive: sets userData and secretRef/],
    ['bad base64', [{ name: 'ci', cloudInitNoCloud: { userDataBase64: 'not base64!' } }], /cloudInitNoCloud\.userDataBase64: is not valid base64/],
    ['a secret without a name', [{ name: 's', secret: {} }], /spec\.volumes\[0\]\.secret\.secretName: "undefined" is not a valid name/],
    ['a too long volume label', [{ name: 's', secret: { secretName: 'x', volumeLabel: 'x'.repeat(33) } }], /secret\.volumeLabel: .* is not a usable ISO volume label/],
    ['an unsupported source', [{ name: 'a', downwardAPI: {} } as unknown as Volume], /volume source "downwardAPI" is not supported/],
  ])('refuses %s, naming the field', (_what, volumes, message) => {
    const err = planError(vmi(volumes));
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/Fix: /);
  });

  it('refuses kernel boot without kernelPath or initrdPath', () => {
    const v = vmi([]);
    v.spec.domain.firmware = { kernelBoot: { container: { image: 'reg/kb' } } };
    expect(planError(v).message).toMatch(/spec\.domain\.firmware\.kernelBoot\.container: neither kernelPath nor initrdPath is set/);
  });
});

describe('decodeBase64 / isoVolumeId', () => {
  it('decodes strict base64, tolerating line breaks', () => {
    expect(decodeBase64('I2Nsb3VkLWNv\nbmZpZwo=', 'ci', 'p')).toBe('#cloud-config\n');
  });
  it('defaults the ISO label to the volume name', () => {
    expect(isoVolumeId(undefined, 'app-secret', 'p')).toBe('app-secret');
  });
});
