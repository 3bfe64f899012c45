/**
 * Synth benchmark: 1,000 VMs written with the DSL (VM CR + launcher Pod each, in 10 charts)
 * through `virtops synth` end to end (child app process, cdk8s validation, launcher Pod
 * rendering, validation of every object, atomic swap of the output dir), against a plain
 * cdk8s app that emits the very same objects as raw ApiObjects (same process model: a tsx
 * child writing one file per chart). Both measured in this run, median of N.
 *
 *   npx tsx bench/synth.ts [--vms 1000] [--runs 3] [--json]
 *
 * Targets: virtops synth of 1,000 VMs < 5 s; ratio to the plain cdk8s app ≤ 1.5x.
 * Cold: the on-disk YAML cache (synth/yaml-cache.ts) is off here, so every run serializes
 * every document as the first synth of a checkout does; bench/synth-watch.ts measures it warm.
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
import { emitJson, JSON_FLAG, say } from './report.js';

process.env.VIRTOPS_SYNTH_CACHE = 'off';
const { values } = parseArgs({ options: { vms: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' }, ...JSON_FLAG } });
const VMS = Number(values.vms);
const RUNS = Number(values.runs);
const CHARTS = 10;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsx = path.join(repo, 'node_modules/.bin/tsx');

const dslApp = `
import { Chart } from 'cdk8s';
import { VirtopsApp } from '${repo}/synth/app.ts';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '${repo}/dsl/index.ts';
const app = new VirtopsApp();
for (let c = 0; c < ${CHARTS}; c++) {
  const chart = new Chart(app, 'fleet-' + c, { namespace: 'bench' });
  for (let i = 0; i < ${VMS / CHARTS}; i++) {
    const name = 'vm-' + c + '-' + i;
    const vm = new VirtualMachine(chart, name, { name, memory: { guest: Size.mebibytes(256 + i) } });
    vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({
      userData: UserData.fromCloudConfig(new CloudConfig({ hostname: name, runcmd: ['echo ' + name] })),
    }));
  }
}
app.synth();
`;


async function project(name: string, source: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `virtops-bench-${name}-`));
  await fs.symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  await fs.writeFile(path.join(dir, 'app.ts'), source);
  return dir;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dsl = await project('dsl', dslApp);
  const plain = await project('plain', plainApp);
  try {
    const out = path.join(dsl, 'dist');
    const ours: number[] = [];
    let objects = 0;
    for (let r = 0; r < RUNS; r++) {
      ours.push(await time(async () => {
        objects = (await runSynth({ cwd: dsl, app: `${tsx} app.ts`, out })).objects;
      }));
    }

    // Breakdown: the DSL app alone (what `cdk8s synth` would run), without virtops' checks.
    const appOnly: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'virtops-bench-apponly-'));
      try {
        appOnly.push(await time(() => execa(tsx, ['app.ts'], { cwd: dsl, env: { CDK8S_OUTDIR: tmp } })));
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
    }

    // The baseline emits exactly what virtops synth wrote.
    const files: Record<string, unknown[]> = {};
    for (const f of (await fs.readdir(out)).sort()) {
      files[f] = YAML.parseAllDocuments(await fs.readFile(path.join(out, f), 'utf8')).map((d) => d.toJS());
    }
    await fs.writeFile(path.join(plain, 'objects.json'), JSON.stringify(files));
    const base: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      base.push(await time(() => execa(tsx, ['app.ts'], { cwd: plain, env: { CDK8S_OUTDIR: path.join(plain, 'dist') } })));
    }
    const plainOut = await fs.readdir(path.join(plain, 'dist'));
    if (plainOut.length !== Object.keys(files).length) throw new Error(`baseline wrote ${plainOut.length} files, expected ${Object.keys(files).length}`);

    const o = median(ours);
    const b = median(base);
    say(`synth benchmark: ${VMS} VMs in ${CHARTS} charts, ${objects} objects (VMs + launcher Pods + CRDs + install), median of ${RUNS}`);
    say(`  virtops synth (DSL, launcher Pods, validation, swap): ${o.toFixed(2)} s   runs: ${ours.map((x) => x.toFixed(2)).join(', ')}   target < 5 s: ${o < 5 ? 'met' : 'MISSED'}`);
    say(`  plain cdk8s app, same objects as raw ApiObjects:      ${b.toFixed(2)} s   runs: ${base.map((x) => x.toFixed(2)).join(', ')}`);
    const a = median(appOnly);
    say(`  ratio: ${(o / b).toFixed(2)}x   target <= 1.5x: ${o / b <= 1.5 ? 'met' : 'MISSED'}`);
    say(`  breakdown: DSL app alone (cdk8s synth + launcher Pods) ${a.toFixed(2)} s (${(a / b).toFixed(2)}x baseline); `
      + `virtops synth's own checks (parse, validate, swap) ${(o - a).toFixed(2)} s`);
    emitJson('synth', { vms: VMS, charts: CHARTS, objects, runs: RUNS, virtopsS: o, plainCdk8sS: b, ratio: o / b, dslAppAloneS: a, virtopsRunsS: ours, plainRunsS: base });
  } finally {
    await fs.rm(dsl, { recursive: true, force: true });
    await fs.rm(plain, { recursive: true, force: true });
  }
}

await main();
