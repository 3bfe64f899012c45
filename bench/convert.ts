/**
 * Converter throughput: VMI → domain XML for a typical VM (4 disks, 2 NICs, EFI), against
 * a baseline measured in the same run (serialising the same VMI with JSON.stringify), so
 * the ratio is comparable across machines. Run: npx tsx bench/convert.ts [--json]
 */
import type * as api from '../api/kubevirt.js';
import { convertVmi, nodeContext } from '../launcher/convert/index.js';
import { emitJson, say } from './report.js';

const vmi: api.VirtualMachineInstance = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'bench', namespace: 'default', uid: '3b0f5f1e-0000-4000-8000-000000000000' },
  spec: {
    domain: {
      cpu: { cores: 2 },
      memory: { guest: '2Gi' },
      firmware: { bootloader: { efi: { secureBoot: false } } },
      devices: {
        rng: {},
        disks: [
          { name: 'root', disk: { bus: 'virtio' }, bootOrder: 1 },
          { name: 'data', disk: { bus: 'scsi' } },
          { name: 'iso', cdrom: { bus: 'sata' } },
          { name: 'cloudinit', disk: { bus: 'virtio' } },
        ],
        interfaces: [{ name: 'default', masquerade: {} }, { name: 'lan', bridge: {} }],
      },
    },
    networks: [{ name: 'default', pod: {} }, { name: 'lan', multus: { networkName: 'lan' } }],
    volumes: [
      { name: 'root', containerDisk: { image: 'quay.io/containerdisks/fedora:40' } },
      { name: 'data', emptyDisk: { capacity: '10Gi' } },
      { name: 'iso', persistentVolumeClaim: { claimName: 'iso' } },
      { name: 'cloudinit', cloudInitNoCloud: { userData: '#cloud-config\n' } },
    ],
  },
};
const ctx = { ...nodeContext(vmi, { emulation: 'tcg' }), networks: { lan: { type: 'bridge' as const, bridge: 'br0' } } };

function opsPerSecond(fn: () => unknown, ms = 1500): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    fn();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}

const baseline = opsPerSecond(() => JSON.stringify(vmi, null, 2));
const convert = opsPerSecond(() => convertVmi(vmi, ctx));
say(`baseline JSON.stringify(VMI): ${baseline.toFixed(0)} ops/s`);
say(`convertVmi (typical VM):      ${convert.toFixed(0)} ops/s (${(1000 / convert).toFixed(3)} ms each)`);
say(`ratio convert/baseline:       ${(convert / baseline).toFixed(3)}`);
emitJson('convert', { baselineOpsPerS: baseline, convertOpsPerS: convert, convertMsEach: 1000 / convert, ratio: convert / baseline });
