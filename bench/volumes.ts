/**
 * launcher/volumes and the test guest, measured against a real registry and libvirt:
 *   - materialise a VM's volumes (containerDisk + kernelBoot image + emptyDisk + NoCloud ISO)
 *     cold (empty image store: pull + extract) vs warm (another VM, store cached) vs
 *     relaunch (same VMI, launcher restarted): the ratios show what the store saves;
 *   - boot the test guest from those volumes (TCG): start → VIRTOPS-GUEST-READY,
 *     RSS of its QEMU, ACPI shutdown → shut off.
 * Run: npx tsx bench/volumes.ts [--runs N] [--no-boot] [--json]
 */
import { emitJson, say } from './report.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import { serialLogPath } from '../launcher/convert/console.js';
import { convertVmi } from '../launcher/convert/convert.js';
import { ImageStore, materializeVolumes, releaseVolumes } from '../launcher/volumes/index.js';
import { pushTestGuestImages, startRegistry } from '../test/helpers/registry.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 5;
const boot = !args.includes('--no-boot');

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function vmiFor(name: string, images: { kernelBootImage: string; diskImage: string }): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'bench', uid: `uid-${name}` },
    spec: {
      domain: {
        resources: { requests: { memory: '128Mi' } },
        firmware: { kernelBoot: { kernelArgs: 'console=ttyS0 no_timer_check', container: { image: images.kernelBootImage, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' } } },
        devices: {
          autoattachPodInterface: false,
          autoattachGraphicsDevice: false,
          disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'scratch', disk: { bus: 'virtio' } }, { name: 'ci', cdrom: { bus: 'sata' } }],
        },
      },
      volumes: [
        { name: 'root', containerDisk: { image: images.diskImage } },
        { name: 'scratch', emptyDisk: { capacity: '1Gi' } },
        { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\nvirtops-marker: bench\n' } },
      ],
    },
  };
}

const registry = await startRegistry();
const work = await mkdtemp(join(tmpdir(), 'vt-bench-'));
const virsh = (...a: string[]) => execa('virsh', ['-c', 'qemu:///system', ...a], { reject: false });
const domains: string[] = [];
try {
  const images = await pushTestGuestImages(registry);
  const cold: number[] = [];
  const warm: number[] = [];
  const relaunch: number[] = [];
  for (let i = 0; i < runs; i++) {
    const store = new ImageStore({ dir: join(work, `store-${i}`), insecureRegistries: [registry.host] });
    const a = vmiFor(`a${i}`, images);
    const b = vmiFor(`b${i}`, images);
    const optsA = { vmDir: join(work, 'vms', `a${i}`), imageStore: store };
    const optsB = { vmDir: join(work, 'vms', `b${i}`), imageStore: store };
    let t = process.hrtime.bigint();
    await materializeVolumes(a, optsA);
    cold.push(ms(t));
    t = process.hrtime.bigint();
    await materializeVolumes(b, optsB);
    warm.push(ms(t));
    t = process.hrtime.bigint();
    await materializeVolumes(b, optsB);
    relaunch.push(ms(t));
    await releaseVolumes(a, optsA, { deleteVm: true });
    await releaseVolumes(b, optsB, { deleteVm: true });
    await rm(store.dir, { recursive: true, force: true });
  }
  const c = median(cold);
  const json: Record<string, unknown> = { runs, materializeMs: { coldStore: c, warmStoreNewVm: median(warm), relaunchSameVmi: median(relaunch) } };
  say(`materialize, median of ${runs} (containerDisk + kernelBoot + emptyDisk 1Gi + NoCloud ISO):`);
  say(`  cold store (baseline): ${c.toFixed(0)} ms`);
  say(`  warm store, new VM:    ${median(warm).toFixed(0)} ms  (${(c / median(warm)).toFixed(1)}x faster than cold)`);
  say(`  relaunch, same VMI:    ${median(relaunch).toFixed(0)} ms  (${(c / median(relaunch)).toFixed(1)}x faster than cold)`);

  if (boot) {
    const v = vmiFor(`boot${process.pid}`, images);
    const opts = { vmDir: join(work, 'vms', 'boot'), imageStore: new ImageStore({ dir: join(work, 'store-boot'), insecureRegistries: [registry.host] }) };
    const { volumes, kernelBoot } = await materializeVolumes(v, opts);
    const ctx = { emulation: 'tcg' as const, volumes, ...(kernelBoot ? { kernelBoot } : {}), socketsDir: work, logDir: work };
    const domain = `bench_${v.metadata.name}`;
    await writeFile(join(work, 'd.xml'), convertVmi(v, ctx).xml);
    await virsh('define', join(work, 'd.xml'));
    domains.push(domain);
    const log = serialLogPath(ctx, domain);
    let t = process.hrtime.bigint();
    await virsh('start', domain);
    while (!(await readFile(log, 'utf8').catch(() => '')).includes('VIRTOPS-GUEST-READY')) {
      if (ms(t) > 120_000) throw new Error('guest did not become ready in 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const ready = ms(t);
    const pid = (await readFile(`/run/libvirt/qemu/${domain}.pid`, 'utf8')).trim();
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]);
    t = process.hrtime.bigint();
    await virsh('shutdown', domain);
    while (!(await virsh('domstate', domain)).stdout.includes('shut off')) {
      if (ms(t) > 60_000) throw new Error('guest did not power off in 60 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const off = ms(t);
    say('test guest (TCG, 128Mi, direct kernel boot from the kernelBoot image):');
    say(`  start → VIRTOPS-GUEST-READY: ${(ready / 1000).toFixed(2)} s`);
    say(`  QEMU RSS when ready:         ${(rssKb / 1024).toFixed(0)} MiB`);
    say(`  virsh shutdown → shut off:   ${(off / 1000).toFixed(2)} s`);
    json['testGuest'] = { startToReadyMs: ready, qemuRssMiB: rssKb / 1024, shutdownToOffMs: off };
    await releaseVolumes(v, opts, { deleteVm: true });
  }
  emitJson('volumes', json);
} finally {
  for (const d of domains) {
    await virsh('destroy', d);
    await virsh('undefine', d);
  }
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
