/**
 * Synth benchmark: 1,000 VMs written with the DSL (VM CR + launcher Pod each, in 10 charts)
 * through `virtops synth` end to end (child app process, cdk8s validation, launcher Pod
 * rendering, validation of every object, atomic swap of the output dir), against a plain
 * cdk8s app that emits the very same objects as raw ApiObjects (same process model: a tsx
 * child writing one file per chart). Both measured in this run, median of N.
 *
 *   npx tsx bench/synth.ts [--vms 1000] [--runs 3] [--from package|source] [--validator-cache on|off] [--json]
 *
 * Targets: virtops synth of 1,000 VMs < 5 s; ratio to the plain cdk8s app ≤ 1.2x (issue 15).
 * Wall and CPU seconds (GNU time over each app's process tree, plus virtops synth's own
 * work in this process); on a shared machine the CPU ratio is the steadier figure.
 * Cold: the on-disk YAML cache (synth/yaml-cache.ts) is off here, so every run serializes
 * every document as the first synth of a checkout does; bench/synth-watch.ts measures it warm.
 * The compiled-validator cache (api/compiled-schema-cache.ts) stays on: it holds virtops' own
 * schemas, not the app's, and the first synth after an install fills it;
 * `--validator-cache off` measures every run compiling the schema.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa, execaSync } from 'execa';
import YAML from 'yaml';
import { manifestStringify, createFastYaml } from '../synth/fast-yaml.js';
import { runSynth } from '../synth/run.js';
import { plainApp } from './plain-cdk8s-app.js';
import { emitJson, JSON_FLAG, say } from './report.js';

process.env.VIRTOPS_SYNTH_CACHE = 'off';
const { values } = parseArgs({ options: { vms: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' }, 'validator-cache': { type: 'string', default: 'on' }, from: { type: 'string', default: 'package' }, ...JSON_FLAG } });
if (values.from !== 'package' && values.from !== 'source') throw new Error(`--from ${values.from}: use package or source`);
if (values['validator-cache'] === 'off') process.env.VIRTOPS_VALIDATOR_CACHE = 'off';
else if (values['validator-cache'] !== 'on') throw new Error(`--validator-cache ${values['validator-cache']}: use on or off`);
const VMS = Number(values.vms);
const RUNS = Number(values.runs);
const CHARTS = 10;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsx = path.join(repo, 'node_modules/.bin/tsx');

/**
 * The DSL and VirtopsApp as the app imports them: `package` (default) compiles them as the
 * npm package ships them (tsc -p tsconfig.build.json, what `virtops/dsl` and `virtops/synth`
 * resolve to), into node_modules/.cache so their imports resolve; `source` imports the
 * TypeScript sources through tsx, which adds tsx's per-module transform to every run.
 */
function compilePackage(): string {
  const out = path.join(repo, 'node_modules/.cache/virtops/bench-synth-build');
  execaSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', path.join(repo, 'tsconfig.build.json'), '--outDir', out], { cwd: repo });
  return out;
}
const modules = values.from === 'package' ? compilePackage() : repo;
const ext = values.from === 'package' ? 'js' : 'ts';

const dslApp = `
import { Chart } from 'cdk8s';
import { VirtopsApp } from '${modules}/synth/app.${ext}';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '${modules}/dsl/index.${ext}';
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

// CPU seconds as well as wall time: on a shared machine wall time moves with the load, CPU
// time much less. GNU time measures the app's process tree (tsx and the node it starts).
const GNU_TIME = '/usr/bin/time';
const haveGnuTime = await fs.access(GNU_TIME).then(() => true, () => false);
const cpuFile = path.join(os.tmpdir(), `virtops-bench-cpu-${process.pid}`);
/** `command` prefixed so that childCpu() reads its process tree's CPU seconds after it ran. */
const timed = (command: string): string => (haveGnuTime ? `${GNU_TIME} -f '%U %S' -o ${cpuFile} ${command}` : command);
async function childCpu(): Promise<number> {
  if (!haveGnuTime) return NaN;
  const [user, sys] = (await fs.readFile(cpuFile, 'utf8')).trim().split(/\s+/).slice(-2).map(Number);
  return user! + sys!;
}
/** Wall and CPU seconds of `fn`: this process's CPU plus the timed child's. */
async function measure(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const wall = await time(fn);
  const own = process.cpuUsage(c0);
  return { wall, cpu: (own.user + own.system) / 1e6 + (await childCpu()) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dsl = await project('dsl', dslApp);
  const plain = await project('plain', plainApp);
  try {
    const out = path.join(dsl, 'dist');
    const ours: number[] = [];
    const oursCpu: number[] = [];
    let objects = 0;
    for (let r = 0; r < RUNS; r++) {
      const m = await measure(async () => {
        objects = (await runSynth({ cwd: dsl, app: timed(`${tsx} app.ts`), out })).objects;
      });
      ours.push(m.wall);
      oursCpu.push(m.cpu);
    }

    // Breakdown: the DSL app alone (what `cdk8s synth` would run), without virtops' checks.
    const appOnly: number[] = [];
    const appOnlyCpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'virtops-bench-apponly-'));
      try {
        const m = await measure(() => execa(timed(`${tsx} app.ts`), { shell: true, cwd: dsl, env: { CDK8S_OUTDIR: tmp } }));
        appOnly.push(m.wall);
        appOnlyCpu.push(m.cpu);
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
    // How many of these documents synth/fast-yaml.ts emits itself (the rest go to
    // manifestStringify), and that its text is what virtops synth wrote.
    const fy = createFastYaml(manifestStringify);
    for (const [f, docs] of Object.entries(files)) {
      const text = docs.map((d) => fy(d) ?? manifestStringify(d)).join('---\n');
      if (text !== await fs.readFile(path.join(out, f), 'utf8')) throw new Error(`fast-yaml: ${f} differs from what virtops synth wrote`);
    }
    const fastYamlGaveUp = fy.stats.gaveUp / (fy.stats.gaveUp + fy.stats.emitted);
    const base: number[] = [];
    const baseCpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const m = await measure(() => execa(timed(`${tsx} app.ts`), { shell: true, cwd: plain, env: { CDK8S_OUTDIR: path.join(plain, 'dist') } }));
      base.push(m.wall);
      baseCpu.push(m.cpu);
    }
    const plainOut = await fs.readdir(path.join(plain, 'dist'));
    if (plainOut.length !== Object.keys(files).length) throw new Error(`baseline wrote ${plainOut.length} files, expected ${Object.keys(files).length}`);

    const o = median(ours);
    const b = median(base);
    say(`synth benchmark: ${VMS} VMs in ${CHARTS} charts, ${objects} objects (VMs + launcher Pods + CRDs + install), median of ${RUNS}; DSL from the ${values.from}, validator cache ${values['validator-cache']}`);
    say(`  virtops synth (DSL, launcher Pods, validation, swap): ${o.toFixed(2)} s   runs: ${ours.map((x) => x.toFixed(2)).join(', ')}   target < 5 s: ${o < 5 ? 'met' : 'MISSED'}`);
    say(`  plain cdk8s app, same objects as raw ApiObjects:      ${b.toFixed(2)} s   runs: ${base.map((x) => x.toFixed(2)).join(', ')}`);
    const a = median(appOnly);
    say(`  ratio: ${(o / b).toFixed(2)}x   goal <= 1.2x: ${o / b <= 1.2 ? 'met' : 'MISSED'}   (load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
    const oc = median(oursCpu);
    const bc = median(baseCpu);
    const ac = median(appOnlyCpu);
    if (haveGnuTime) say(`  CPU seconds (app process tree + virtops synth's own): virtops ${oc.toFixed(2)} s, plain ${bc.toFixed(2)} s, ratio ${(oc / bc).toFixed(2)}x; DSL app alone ${ac.toFixed(2)} s`);
    say(`  fast YAML emitter: ${fy.stats.emitted} documents emitted, ${fy.stats.gaveUp} given to manifestStringify (${(100 * fastYamlGaveUp).toFixed(1)}%)`);
    say(`  breakdown: DSL app alone (cdk8s synth + launcher Pods) ${a.toFixed(2)} s (${(a / b).toFixed(2)}x baseline); `
      + `virtops synth's own checks (parse, validate, swap) ${(o - a).toFixed(2)} s`);
    emitJson('synth', { vms: VMS, from: values.from, validatorCache: values['validator-cache'], charts: CHARTS, objects, runs: RUNS, virtopsS: o, plainCdk8sS: b, ratio: o / b, dslAppAloneS: a, virtopsRunsS: ours, plainRunsS: base, virtopsCpuS: oc, plainCpuS: bc, cpuRatio: oc / bc, dslAppAloneCpuS: ac, fastYamlGaveUp, virtopsCpuRunsS: oursCpu, plainCpuRunsS: baseCpu, loadavg: os.loadavg() });
  } finally {
    await fs.rm(dsl, { recursive: true, force: true });
    await fs.rm(plain, { recursive: true, force: true });
    await fs.rm(cpuFile, { force: true });
  }
}

await main();
