import type * as api from '../../../api/kubevirt.js';

/** A hand-written VM in the shape the DSL emits; tests tweak copies of it. */
export function fixtureVm(patch: (vm: api.VirtualMachine) => void = () => {}): api.VirtualMachine {
  const vm: api.VirtualMachine = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'web', namespace: 'prod', labels: { app: 'web' } },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { tier: 'frontend' } },
        spec: {
          domain: {
            cpu: { cores: 2 },
            memory: { guest: '1Gi' },
            devices: {
              disks: [
                { name: 'rootdisk', disk: { bus: 'virtio' } },
                { name: 'data', disk: { bus: 'virtio' } },
                { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
              ],
              interfaces: [{ name: 'default', masquerade: {} }],
            },
          },
          networks: [{ name: 'default', pod: {} }],
          volumes: [
            { name: 'rootdisk', containerDisk: { image: 'quay.io/containerdisks/fedora:40' } },
            { name: 'data', persistentVolumeClaim: { claimName: 'web-data' } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { userData: '#cloud-config\n' } },
          ],
        },
      },
    },
  };
  patch(vm);
  return vm;
}
