import { describe, expect, it } from 'vitest';
import { vmiFromVm, type VirtualMachine } from '../../../api/kubevirt.js';
import { convertVmi } from '../../../launcher/convert/index.js';
import { validateLauncherFlags } from '../../../launcher/flags.js';
import { launcherPreviewContext } from '../../../launcher/preview-context.js';

// The launcher's context (and its preview) must carry the node's OVMF firmware, or every
// EFI VM fails conversion with "this node has no OVMF firmware".
describe('launcher context for EFI guests', () => {
  const vm: VirtualMachine = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'efi-vm', namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          domain: {
            firmware: { bootloader: { efi: { secureBoot: false } } },
            memory: { guest: '128Mi' },
            devices: { disks: [{ name: 'scratch', disk: { bus: 'virtio' } }] },
          },
          volumes: [{ name: 'scratch', emptyDisk: { capacity: '64Mi' } }],
        },
      },
    },
  };

  it('points the loader at OVMF and keeps NVRAM in the launcher state dir', () => {
    const flags = validateLauncherFlags({
      qemuTimeout: '240s', name: 'efi-vm', uid: 'u-1', namespace: 'default',
      kubevirtShareDir: '/run/v/share', ephemeralDiskDir: '/run/v/eph', containerDiskDir: '/run/v/cd',
      gracePeriodSeconds: '45', hookSidecars: '0', emulation: 'tcg', stateDir: '/run/v/state',
    });
    if (!flags.ok) throw new Error(JSON.stringify(flags.errors));
    const { ctx } = launcherPreviewContext(vmiFromVm(vm, 'u-1'), flags.config, 'tcg');
    const { xml } = convertVmi(vmiFromVm(vm, 'u-1'), ctx);
    expect(xml).toMatch(/<loader[^>]*>\/usr\/share\/OVMF\/OVMF_CODE_4M\.fd<\/loader>/);
    expect(xml).toContain('/run/v/state/nvram/default_efi-vm_VARS.fd');
  });
});
