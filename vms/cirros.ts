/**
 * A minimal VM: CirrOS from KubeVirt's demo containerDisk, 128Mi, NoCloud user-data
 * without secrets (CirrOS logs in with its documented default; nothing is set here).
 */
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '../dsl/index.js';

export class Cirros extends Chart {
  public readonly vm: VirtualMachine;

  public constructor(scope: Construct, id = 'cirros') {
    super(scope, id, { namespace: 'default' });
    this.vm = new VirtualMachine(this, 'vm', {
      name: 'cirros',
      memory: { guest: Size.mebibytes(128) },
    });
    this.vm.addDisk('containerdisk', Volume.fromContainerDisk('quay.io/kubevirt/cirros-container-disk-demo'), { bootOrder: 1 });
    this.vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
      userData: UserData.fromCloudConfig(new CloudConfig({
        hostname: 'cirros',
        runcmd: ['echo "hello from virtops" > /tmp/hello'],
      })),
    }));
  }
}
