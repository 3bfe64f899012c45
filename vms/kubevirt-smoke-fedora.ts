/**
 * The VM from the seed document ("Spawn a Virtual Machine in Kubernetes with kubevirt: A
 * Deep Dive"), as KubeVirt shows it after defaulting: Fedora from a containerDisk, a 2Gi
 * scratch disk and NoCloud cloud-init, bridged onto the pod network.
 *
 * One change from the original: its user-data held `password: changeme` in plain text.
 * Here the user-data comes from the Secret `kubevirt-smoke-fedora-cloudinit` (key
 * `userdata`), which is created out of band (e.g. `kubectl create secret generic
 * kubevirt-smoke-fedora-cloudinit --from-file=userdata=...`) and never committed.
 *
 * Memory: the seed asks for `memory: 4G` under resources.requests (decimal, 4·10⁹ bytes),
 * with no memory.guest, so KubeVirt gives the guest the request. Kept as written.
 */
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import {
  ClockOffset, ImagePullPolicy, InterfaceBinding, Network, Size, UserData, VirtualMachine, Volume,
} from '../dsl/index.js';

/**
 * What may differ from the seed when the same spec runs elsewhere (vms/smoke-debian.ts):
 * the VM's name, its containerDisk, the Secret holding its user-data, and its firmware UUID
 * (libvirt refuses two domains with one UUID on a host). The defaults are the seed's.
 */
export interface SmokeVmOptions {
  name?: string;
  image?: string;
  cloudInitSecret?: string;
  firmwareUuid?: string;
}

export class KubevirtSmokeFedora extends Chart {
  public readonly vm: VirtualMachine;

  public constructor(scope: Construct, id = 'kubevirt-smoke-fedora', opts: SmokeVmOptions = {}) {
    super(scope, id, { namespace: 'default' });
    this.vm = new VirtualMachine(this, 'vm', {
      name: opts.name ?? 'kubevirt-smoke-fedora',
      running: true,
      architecture: 'amd64',
      cpu: { cores: 1 },
      memory: { request: Size.parse('4G') },
      machineType: 'q35',
      clock: {
        offset: ClockOffset.utc(),
        timers: { hpet: { present: false }, hyperv: {}, pit: { tickPolicy: 'delay' }, rtc: { tickPolicy: 'catchup' } },
      },
      features: { acpi: true },
      firmware: { uuid: opts.firmwareUuid ?? 'c3ecdb42-282e-44c3-8266-91b99ac91261' },
    });
    this.vm.addInterface('default', Network.pod(), { binding: InterfaceBinding.BRIDGE });
    this.vm.addDisk('containerdisk', Volume.fromContainerDisk(opts.image ?? 'kubevirt/fedora-cloud-container-disk-demo:latest', {
      imagePullPolicy: ImagePullPolicy.ALWAYS,
    }));
    this.vm.addDisk('emptydisk', Volume.fromEmptyDisk(Size.gibibytes(2)));
    // Secret created out of band, never committed: it holds the password the seed had inline.
    this.vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
      userData: UserData.fromSecret({ name: opts.cloudInitSecret ?? 'kubevirt-smoke-fedora-cloudinit' }),
    }));
  }
}
