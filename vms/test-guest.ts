/**
 * virtops' own test VM: the tiny busybox guest (scripts/build-test-guest.sh) booted by
 * direct kernel boot from an OCI image in the local registry. It is what the integration
 * tests and the demo boot under TCG, so it stays small: 128Mi, one vCPU.
 *
 * The guest prints `VIRTOPS-USERDATA <value>` for every user-data line
 * `virtops-marker: <value>`, which proves the cloud-init ISO made it from git to the guest.
 */
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { CloudConfig, RunStrategy, Size, UserData, VirtualMachine, Volume } from '../dsl/index.js';

export const TEST_GUEST_IMAGE = 'localhost:5000/virtops/test-guest:latest';

export class TestGuest extends Chart {
  public readonly vm: VirtualMachine;

  public constructor(scope: Construct, id = 'test-guest') {
    super(scope, id, { namespace: 'default' });
    this.vm = new VirtualMachine(this, 'vm', {
      name: 'test-guest',
      runStrategy: RunStrategy.ALWAYS,
      memory: { guest: Size.mebibytes(128) },
      firmware: {
        kernelBoot: {
          container: { image: TEST_GUEST_IMAGE, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' },
          // no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can
          // fail and panic the boot ("IO-APIC + timer doesn't work"); the check proves nothing here.
          kernelArgs: 'console=ttyS0 no_timer_check',
        },
      },
      terminationGracePeriodSeconds: 30,
    });
    this.vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
      userData: UserData.fromCloudConfig(new CloudConfig({ extra: { 'virtops-marker': 'hello-from-git' } })),
    }));
    this.vm.addDisk('scratch', Volume.fromEmptyDisk(Size.mebibytes(64)));
  }
}
