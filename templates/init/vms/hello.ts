/**
 * One VM to start from: CirrOS (a tiny test distribution) from a containerDisk, 256Mi,
 * one vCPU, the pod network, and cloud-init user-data built from typed props.
 * Copy this file for more VMs and add their charts to vms/main.ts.
 */
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '{{dslModule}}';

export class HelloVms extends Chart {
  public readonly vm: VirtualMachine;

  public constructor(scope: Construct, id = 'hello') {
    super(scope, id, { namespace: 'default' });
    this.vm = new VirtualMachine(this, 'vm', {
      name: 'hello',
      cpu: { cores: 1 },
      memory: { guest: Size.mebibytes(256) },
    });
    this.vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/kubevirt/cirros-container-disk-demo:latest'), { bootOrder: 1 });
    this.vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
      // SSH keys, not passwords: user-data is committed to git (dist/) in plain text.
      userData: UserData.fromCloudConfig(new CloudConfig({
        hostname: 'hello',
        runcmd: ['echo "hello from {{name}}" > /etc/motd'],
      })),
    }));
  }
}
