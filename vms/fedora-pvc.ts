/**
 * A VM with persistent storage: the root disk is a PersistentVolumeClaim (created out of
 * band, e.g. by CDI or an admin), cloud-init adds a user with an SSH key (no password).
 */
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { CloudConfig, Cpu, NetworkConfig, NetworkData, Size, UserData, VirtualMachine, Volume } from '../dsl/index.js';

export class FedoraPvc extends Chart {
  public readonly vm: VirtualMachine;

  public constructor(scope: Construct, id = 'fedora-pvc') {
    super(scope, id, { namespace: 'default' });
    this.vm = new VirtualMachine(this, 'vm', {
      name: 'fedora-pvc',
      labels: { 'app.kubernetes.io/part-of': 'virtops-examples' },
      cpu: { cores: 2, request: Cpu.millis(500) },
      memory: { guest: Size.gibibytes(2) },
      rng: true,
      terminationGracePeriodSeconds: 60,
    });
    this.vm.addDisk('rootdisk', Volume.fromPersistentVolumeClaim('fedora-pvc-root'), { bootOrder: 1 });
    const config = new CloudConfig({
      users: [{
        name: 'fedora',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyReplaceWithYourOwn0000000000000 admin@example'],
      }],
      packages: ['qemu-guest-agent'],
      runcmd: [['systemctl', 'enable', '--now', 'qemu-guest-agent']],
    });
    this.vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
      userData: UserData.fromCloudConfig(config),
      networkData: NetworkData.fromConfig(NetworkConfig.dhcp('eth0')),
    }));
  }
}
