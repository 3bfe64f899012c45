/**
 * `virtops synth --watch` benchmark: a 1,000-VM app (10 chart modules under vms/, 100 VMs
 * each, written with the DSL), measured in one run:
 * - full synth: `virtops synth` end to end (child app process, validation, swap), median,
 *   cold (VIRTOPS_SYNTH_CACHE=off: every document serialized) and warm (the on-disk YAML cache
 *   of the previous run, one VM edited before each run);
 * - plain cdk8s baseline: a plain cdk8s app emitting the same objects as raw ApiObjects, median;
 * - watch update: with `synth --watch` running (worker mode), one VM's memory edited in one
 *   chart module → the output directory updated (from the file write to the rewritten file
 *   renamed into place), p50 and max of N edits; each must rewrite exactly that chart's file.
 *
 *   npx tsx bench/synth-watch.ts [--vms 1000] [--runs 3] [--edits 5] [--json]
 *
 * Goal (issue 15 part 3): watch update ≤ 300 ms; full synth ≤ 1.2x the plain cdk8s app.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import YAML from 'yaml';
import { runSynth } from '../synth/run.js';
import { plainApp } from './plain-cdk8s-app.js';
import { YAML_CACHE_FILE_ENV } from '../synth/validated-report.js';
import { watchSynth, type WatchUpdate } from '../synth/watch.js';
import { emitJson, JSON_FLAG, say } from './report.js';

const { values } = parseArgs({
  options: {
    vms: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '3' },
    edits: { type: 'string', default: '5' },
    ...JSON_FLAG,
  },
});
const VMS = Number(values.vms);
const RUNS = Number(values.runs);
const EDITS = Number(values.edits);
const CHARTS = 10;
const PER_CHART = VMS / CHARTS;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsx = path.join(repo, 'node_modules/.bin/tsx');

const chartModule = (c: number, memoryBase: number): string => `
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '${repo}/dsl/index.ts';
export class Fleet${c} extends Chart {
  constructor(scope: Construct) {
    super(scope, 'fleet-${c}', { namespace: 'bench' });
    for (let i = 0; i < ${PER_CHART}; i++) {
      const name = 'vm-${c}-' + i;
      // The edited VM: i === 0.
      const memory = i === 0 ? ${memoryBase} : 256 + i;
      const vm = new VirtualMachine(this, name, { name, memory: { guest: Size.mebibytes(memory) } });
      vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
      vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
        userData: UserData.fromCloudConfig(new CloudConfig({ hostname: name, runcmd: ['echo ' + name] })),
      }));
    }
  }
}
`;

const mainModule = [
  `import { VirtopsApp } from '${repo}/synth/app.ts';`,
  ...Array.from({ length: CHARTS }, (_, c) => `import { Fleet${c} } from './fleet-${c}.js';`),
  'const app = new VirtopsApp();',
  ...Array.from({ length: CHARTS }, (_, c) => `new Fleet${c}(app);`),
  'app.synth();',
].join('\n');


async function project(name: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `virtops-bench-${name}-`));
  await fs.symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: `bench-${name}`, private: true, type: 'module' }));
  return dir;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dsl = await project('watch');
  const plain = await project('watch-plain');
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  try {
    await fs.mkdir(path.join(dsl, 'vms'));
    for (let c = 0; c < CHARTS; c++) await fs.writeFile(path.join(dsl, 'vms', `fleet-${c}.ts`), chartModule(c, 256));
    await fs.writeFile(path.join(dsl, 'vms', 'main.ts'), mainModule);
    await fs.writeFile(path.join(dsl, 'cdk8s.yaml'), 'app: npx tsx vms/main.ts\noutput: dist\n');
    const out = path.join(dsl, 'dist');

    // 1. Full synth, as `virtops synth` runs it: cold (no YAML cache), then warm.
    const full: number[] = [];
    let objects = 0;
    const synthOnce = async (): Promise<number> => time(async () => {
      objects = (await runSynth({ cwd: dsl, app: `${tsx} vms/main.ts`, out })).objects;
    });
    process.env.VIRTOPS_SYNTH_CACHE = 'off';
    for (let r = 0; r < RUNS; r++) full.push(await synthOnce());
    delete process.env.VIRTOPS_SYNTH_CACHE;
    // The project links the repository's node_modules, so name its cache (removed with it).
    process.env[YAML_CACHE_FILE_ENV] = path.join(dsl, 'yaml-cache.json');
    say(`full synth, cold: ${full.map((x) => (x / 1000).toFixed(2)).join(', ')} s`);
    await synthOnce(); // fills the cache
    const warm: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      await fs.writeFile(path.join(dsl, 'vms', 'fleet-9.ts'), chartModule(9, 2048 + r));
      warm.push(await synthOnce());
    }
    await fs.writeFile(path.join(dsl, 'vms', 'fleet-9.ts'), chartModule(9, 256));
    await synthOnce();
    say(`full synth, warm YAML cache, one VM edited: ${warm.map((x) => (x / 1000).toFixed(2)).join(', ')} s`);

    // 2. The plain cdk8s app emitting exactly what virtops synth wrote.
    const files: Record<string, unknown[]> = {};
    for (const f of (await fs.readdir(out)).sort()) {
      files[f] = YAML.parseAllDocuments(await fs.readFile(path.join(out, f), 'utf8')).map((d) => d.toJS());
    }
    await fs.writeFile(path.join(plain, 'objects.json'), JSON.stringify(files));
    await fs.writeFile(path.join(plain, 'app.ts'), plainApp);
    const base: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      base.push(await time(() => execa(tsx, ['app.ts'], { cwd: plain, env: { CDK8S_OUTDIR: path.join(plain, 'dist') } })));
    }
    say(`plain cdk8s: ${base.map((x) => (x / 1000).toFixed(2)).join(', ')} s`);

    // 3. synth --watch: start (first synthesis in a cold worker), then EDITS one-VM edits.
    let waiting: ((u: WatchUpdate) => void) | undefined;
    const updates: WatchUpdate[] = [];
    const startedAt = performance.now();
    const watcher = await watchSynth({ cwd: dsl }, (u) => {
      updates.push(u);
      waiting?.(u);
    });
    const edits: Array<{ ms: number; detectedMs: number; appMs: number; validateMs: number; cpuMs: number }> = [];
    let coldStart = 0;
    try {
      if (watcher.mode !== 'worker') throw new Error(`synth --watch runs in ${watcher.mode} mode, expected worker`);
      const first = await watcher.first;
      coldStart = performance.now() - startedAt;
      if (first.error) throw new Error(first.error);
      for (let e = 0; e < EDITS; e++) {
        const next = new Promise<WatchUpdate>((resolve) => { waiting = resolve; });
        const c = e % CHARTS;
        const t0 = performance.now();
        await fs.writeFile(path.join(dsl, 'vms', `fleet-${c}.ts`), chartModule(c, 1024 + e));
        const u = await next;
        const ms = performance.now() - t0;
        waiting = undefined;
        if (u.error) throw new Error(u.error);
        if (u.written.join() !== `fleet-${c}.k8s.yaml` || u.removed.length) throw new Error(`edit ${e} wrote ${u.written.join(', ')} removed ${u.removed.join(', ')}`);
        edits.push({ ms, detectedMs: u.ms, appMs: u.appMs ?? 0, validateMs: u.validateMs ?? 0, cpuMs: u.cpuMs ?? 0 });
        say(`  edit ${e + 1}: fleet-${c}.k8s.yaml rewritten ${ms.toFixed(0)} ms after the write (app ${u.appMs?.toFixed(0)} ms, validation ${u.validateMs?.toFixed(0)} ms, worker CPU ${u.cpuMs?.toFixed(0)} ms)`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await watcher.close();
    }

    const f = median(full);
    const fw = median(warm);
    const b = median(base);
    const w = median(edits.map((x) => x.ms));
    const result = {
      bench: 'synth-watch',
      date: new Date().toISOString(),
      loadavg: load,
      vms: VMS,
      charts: CHARTS,
      objects,
      fullSynthS: +(f / 1000).toFixed(3),
      plainCdk8sS: +(b / 1000).toFixed(3),
      ratio: +(f / b).toFixed(2),
      fullSynthWarmS: +(fw / 1000).toFixed(3),
      ratioWarm: +(fw / b).toFixed(2),
      watchColdStartS: +(coldStart / 1000).toFixed(3),
      watchUpdateP50Ms: Math.round(w),
      watchUpdateMaxMs: Math.round(Math.max(...edits.map((x) => x.ms))),
      watchAppP50Ms: Math.round(median(edits.map((x) => x.appMs))),
      watchValidateP50Ms: Math.round(median(edits.map((x) => x.validateMs))),
      watchWorkerCpuP50Ms: Math.round(median(edits.map((x) => x.cpuMs))),
      watchUpdatesMs: edits.map((x) => Math.round(x.ms)),
    };
    emitJson('synth-watch', result);
    say(`synth --watch benchmark: ${VMS} VMs in ${CHARTS} chart modules, ${objects} objects; load average ${load}`);
    say(`  plain cdk8s app, same objects, median of ${RUNS}: ${(b / 1000).toFixed(2)} s`);
    say(`  full virtops synth, cold (no YAML cache), median of ${RUNS}: ${(f / 1000).toFixed(2)} s   ratio ${(f / b).toFixed(2)}x (goal <= 1.2x: ${f / b <= 1.2 ? 'met' : 'MISSED'})`);
    say(`  full virtops synth, warm YAML cache, one VM edited, median of ${RUNS}: ${(fw / 1000).toFixed(2)} s   ratio ${(fw / b).toFixed(2)}x (goal <= 1.2x: ${fw / b <= 1.2 ? 'met' : 'MISSED'})`);
    say(`  watch: first synthesis in a cold worker ${(coldStart / 1000).toFixed(2)} s`);
    say(`  watch: one VM edited -> dist/ updated, p50 of ${EDITS}: ${w.toFixed(0)} ms (max ${result.watchUpdateMaxMs} ms; app ${result.watchAppP50Ms} ms, validation ${result.watchValidateP50Ms} ms, worker CPU ${result.watchWorkerCpuP50Ms} ms) goal <= 300 ms: ${w <= 300 ? 'met' : 'MISSED'}`);
  } finally {
    await fs.rm(dsl, { recursive: true, force: true });
    await fs.rm(plain, { recursive: true, force: true });
  }
}

await main();
