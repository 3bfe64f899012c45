/**
 * Launcher benchmark: time from PUT /v1/vmi to the domain running, against a raw
 * `virsh define && virsh start` of the same converter output measured in the same run,
 * and the memory the launcher + monitor cost per VM.
 *
 *   npx tsx bench/launcher.ts [--iterations 5]
 *
 * Targets: median(launcher) / median(virsh) ≤ 1.3; monitor + launcher RSS < 60 MiB.
 * Both paths start the same test guest (kernel boot from a local registry, cloud-init
 * ISO, emptyDisk) under TCG; "running" is the libvirt state, not guest boot.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { startRegistry, pushTestGuestImages } from '../test/helpers/registry.js';
import {
  startMonitor, testGuestVmi, waitFor, waitForSocket, forceCleanup, processesMentioning, type MonitorHandle,
} from '../test/integration/launcher/harness.js';
import { materializeVolumes, releaseVolumes, ImageStore } from '../launcher/volumes/index.js';
import { convertVmi } from '../launcher/convert/index.js';
import type { VirtualMachineInstance } from '../api/kubevirt.js';

const iterations = Number(process.argv[process.argv.indexOf('--iterations') + 1] || 5);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const mib = (kb: number): string => (kb / 1024).toFixed(1);

async function memKb(pid: number): Promise<{ rss: number; pss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    pss: Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0),
  };
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

async function virsh(...args: string[]): Promise<void> {
  await execa('virsh', ['-c', 'qemu:///system', ...args]);
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const imageStoreDir = await mkdtemp(join(tmpdir(), 'vo-bench-images-'));
  const work = await mkdtemp(join(tmpdir(), 'vo-bench-'));
  const launcherMs: number[] = [];
  const virshMs: number[] = [];
  const phases: Record<string, number>[] = [];
  const mem: { monitor: { rss: number; pss: number }; launcher: { rss: number; pss: number }; virshEvent: { rss: number; pss: number } }[] = [];
  let current: MonitorHandle | undefined;
  try {
    const { kernelBootImage } = await pushTestGuestImages(registry);
    const imageStore = new ImageStore({ dir: imageStoreDir, insecureRegistries: [registry.host] });

    // Warm-up (not counted): pulls the image into the store, warms tsx's cache and QEMU's capability cache.
    for (let i = -1; i < iterations; i++) {
      // ---- launcher: monitor up and connected (untimed), then PUT /v1/vmi → Running (timed)
      const m = (current = await startMonitor({ imageStore: imageStoreDir, insecureRegistry: registry.host, gracePeriodSeconds: 1 }));
      await waitForSocket(m, 120_000);
      await waitFor('libvirt connected', async () => (await m.call<{ libvirt: string }>('GET', '/v1/info')).body.libvirt === 'connected');
      const vmi = testGuestVmi(m, kernelBootImage, 'bench', { imagePullPolicy: 'IfNotPresent' });
      const t0 = performance.now();
      const res = await m.call('PUT', '/v1/vmi', vmi);
      const t1 = performance.now();
      if (res.status !== 201) throw new Error(`sync failed: ${res.status} ${JSON.stringify(res.body)}`);
      if (i >= 0) {
        launcherMs.push(t1 - t0);
        const timing = m.logs.find((l) => l['msg'] === 'sync timings');
        if (timing) phases.push(timing['ms'] as Record<string, number>);
        await new Promise((r) => setTimeout(r, 1000)); // let the steady state settle before sampling memory
        const launcherPid = (await processesMentioning(m.uid)).find((p) => p !== m.proc.pid)!;
        const kids = await childrenOf(launcherPid);
        mem.push({
          monitor: await memKb(m.proc.pid!),
          launcher: await memKb(launcherPid),
          virshEvent: kids.length ? await memKb(kids[0]!) : { rss: 0, pss: 0 },
        });
      }
      await m.call('POST', '/v1/kill');
      m.proc.kill('SIGTERM');
      await m.exited;
      await forceCleanup(m);
      current = undefined;

      // ---- baseline: the same converter output, volumes prepared beforehand (untimed),
      // then `virsh define && virsh start` (timed), as a shell script would do it.
      const name = `vb-${randomBytes(3).toString('hex')}`;
      const dir = join(work, name);
      const base = testGuestVmi({ namespace: 'default', name, uid: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}` }, kernelBootImage, 'bench', { imagePullPolicy: 'IfNotPresent' }) as unknown as VirtualMachineInstance;
      const vols = await materializeVolumes(base, { vmDir: dir, imageStore });
      const { xml } = convertVmi(base, {
        emulation: 'tcg', volumes: vols.volumes, ...(vols.kernelBoot ? { kernelBoot: vols.kernelBoot } : {}),
        socketsDir: join(dir, 'sockets'), logDir: join(dir, 'logs'),
      });
      await execa('mkdir', ['-p', join(dir, 'sockets'), join(dir, 'logs')]);
      const file = join(dir, 'domain.xml');
      await writeFile(file, xml);
      const domain = `default_${name}`;
      const v0 = performance.now();
      await virsh('define', file);
      await virsh('start', domain);
      const v1 = performance.now();
      if (i >= 0) virshMs.push(v1 - v0);
      await virsh('destroy', domain);
      await virsh('undefine', domain);
      await releaseVolumes(base, { vmDir: dir }, { deleteVm: true });
      process.stderr.write(`iteration ${i + 1}/${iterations}${i < 0 ? ' (warm-up)' : ''}: launcher ${(t1 - t0).toFixed(0)} ms, virsh ${(v1 - v0).toFixed(0)} ms\n`);
    }
  } finally {
    await forceCleanup(current);
    await registry.stop();
    await rm(imageStoreDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }

  const lm = median(launcherMs);
  const vm = median(virshMs);
  const med = (f: (x: (typeof mem)[number]) => number) => median(mem.map(f));
  const pair = med((x) => x.monitor.rss + x.launcher.rss);
  const pairPss = med((x) => x.monitor.pss + x.launcher.pss);
  console.log(`launcher benchmark (${iterations} iterations, medians)`);
  console.log(`  sync → running (launcher PUT /v1/vmi):   ${lm.toFixed(0)} ms   [${launcherMs.map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`  virsh define && virsh start (baseline):  ${vm.toFixed(0)} ms   [${virshMs.map((x) => x.toFixed(0)).join(', ')}]`);
  const phaseNames = Object.keys(phases[0] ?? {});
  console.log(`  inside the launcher (median ms): ${phaseNames.map((k) => `${k} ${median(phases.map((p) => p[k] ?? 0))}`).join(', ')}`);
  console.log(`  ratio launcher / baseline:               ${(lm / vm).toFixed(2)}   (target ≤ 1.30)`);
  console.log(`  RSS monitor:            ${mib(med((x) => x.monitor.rss))} MiB   (PSS ${mib(med((x) => x.monitor.pss))} MiB)`);
  console.log(`  RSS launcher:           ${mib(med((x) => x.launcher.rss))} MiB   (PSS ${mib(med((x) => x.launcher.pss))} MiB)`);
  console.log(`  RSS virsh event child:  ${mib(med((x) => x.virshEvent.rss))} MiB   (PSS ${mib(med((x) => x.virshEvent.pss))} MiB)`);
  console.log(`  monitor + launcher:     ${mib(pair)} MiB RSS, ${mib(pairPss)} MiB PSS   (target < 60 MiB)`);
}

await main();
