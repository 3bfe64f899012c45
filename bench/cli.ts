/**
 * CLI start-up benchmark (issue 12's performance goal): the installed package's `virtops`
 * beside kubectl, both measured in this run, runs interleaved so both see the same load.
 *
 *   npm run bench:cli [-- --runs 20] [--skip cluster] [--json]
 *
 * 1. The package as a user gets it: `npm pack` of this checkout (test/integration/package/
 *    tarball.ts, cached by content) installed into an empty temp directory.
 * 2. `virtops --version` vs `kubectl version --client` (kubectl of the testenv's build,
 *    tools/kube/build.sh), and `node -e 0` for Node's own start-up floor.
 * 3. Against a real control plane (reconciler/cluster/testenv: etcd, kube-apiserver,
 *    scheduler, controller-manager) holding 5 VMs and 5 Pods in `default`:
 *    `virtops get vms --kubeconfig K` vs `kubectl get pods -A --kubeconfig K`, and
 *    `kubectl get virtualmachines` (the same objects virtops lists; a CRD, so kubectl reads
 *    its discovery cache first, kept in this run's temp dir).
 *
 * Each figure: wall time p50 of N runs (spawn to exit) and max RSS (p50 of each run's peak,
 * from /usr/bin/time -f %M). Goal: virtops within 1.5x of kubectl on both.
 * --json prints one JSON line with every figure instead of the table.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import type { KubernetesObject } from '@kubernetes/client-node';
import { renderCrd, VM_CRD, VMI_CRD } from '../synth/crds.js';
import { HttpKubeClient, loadKubeConfig } from '../reconciler/cluster/kube.js';
import { defaultBinDir, startControlPlane, type ControlPlane } from '../reconciler/cluster/testenv/index.js';
import { bareVm } from '../test/integration/standalone/fixture.js';
import { npmEnv, packedTarball } from '../test/integration/package/tarball.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, skip: { type: 'string', default: '' }, json: { type: 'boolean', default: false } } });
const RUNS = Number(values.runs);
const skip = new Set(values.skip.split(',').filter(Boolean));
const say = (s: string) => void (values.json ? process.stderr : process.stdout).write(`${s}\n`);

interface Figure {
  label: string;
  /** Wall time, p50 of the runs (ms). */
  wallMs: number;
  /** Max RSS, p50 of the runs' peaks (MiB). */
  rssMiB: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** One run under /usr/bin/time: wall ms (measured here) and peak RSS in KiB. Fails on a non-zero exit. */
function runOnce(argv: string[], env: NodeJS.ProcessEnv, rssFile: string): { ms: number; rssKb: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, ...argv], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr || r.error?.message}`);
  return { ms, rssKb: Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) };
}

/** Measures commands interleaved (run i of each before run i+1 of any), after one warm-up each. */
function measure(cmds: { label: string; argv: string[] }[], env: NodeJS.ProcessEnv, scratch: string): Figure[] {
  const rssFile = join(scratch, 'rss');
  for (const c of cmds) runOnce(c.argv, env, rssFile);
  const samples = cmds.map(() => ({ ms: [] as number[], rss: [] as number[] }));
  for (let i = 0; i < RUNS; i++) {
    cmds.forEach((c, j) => {
      const { ms, rssKb } = runOnce(c.argv, env, rssFile);
      samples[j]!.ms.push(ms);
      samples[j]!.rss.push(rssKb);
    });
  }
  return cmds.map((c, j) => ({ label: c.label, wallMs: Math.round(median(samples[j]!.ms) * 10) / 10, rssMiB: Math.round(median(samples[j]!.rss) / 102.4) / 10 }));
}

const ratio = (a: Figure, b: Figure) => ({ of: `${a.label} / ${b.label}`, wall: Math.round((a.wallMs / b.wallMs) * 100) / 100, rss: Math.round((a.rssMiB / b.rssMiB) * 100) / 100 });

async function installPackage(dir: string): Promise<string> {
  const tarball = await packedTarball();
  mkdirSync(join(dir, 'tools'));
  writeFileSync(join(dir, 'tools/package.json'), '{ "name": "tools", "private": true }\n');
  const r = await execa('npm', ['install', '--loglevel=error', tarball], { cwd: join(dir, 'tools'), env: npmEnv, extendEnv: false, reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`npm install ${tarball} failed:\n${r.all}`);
  return join(dir, 'tools/node_modules/.bin/virtops');
}

/** A control plane holding the VM CRDs, 5 VMs and 5 Pods (Pending: there is no node) in `default`. */
async function clusterWithObjects(dir: string): Promise<ControlPlane> {
  const cp = await startControlPlane({ dir });
  const admin = new HttpKubeClient(loadKubeConfig(cp.kubeconfigPath));
  for (const crd of [VM_CRD, VMI_CRD]) await admin.apply(renderCrd(crd) as KubernetesObject);
  const names = ['a', 'b', 'c', 'd', 'e'];
  const deadline = Date.now() + 60_000;
  for (;;) {
    // Errors until the CRDs are established and the `default` ServiceAccount exists.
    try {
      for (const n of names) await admin.apply({ ...bareVm(`vm-${n}`), metadata: { name: `vm-${n}`, namespace: 'default' } } as KubernetesObject);
      for (const n of names) {
        await admin.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${n}`, namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'pause' }] } } as KubernetesObject);
      }
      return cp;
    } catch (err) {
      if (Date.now() > deadline) {
        await cp.stop();
        throw err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function main(): Promise<void> {
  const kubectl = join(defaultBinDir(), 'kubectl');
  if (!existsSync(kubectl)) throw new Error(`${kubectl} not found: build it with npx virtops testenv build (tools/kube/build.sh)`);
  const dir = mkdtempSync(join(tmpdir(), 'vo-bench-cli-'));
  let cp: ControlPlane | undefined;
  const cleanup = async () => {
    await cp?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().then(() => process.exit(130)));
  try {
    say('packing and installing the package ...');
    const virtops = await installPackage(dir);
    const env = { PATH: process.env['PATH'], HOME: dir, LANG: 'C' };
    const version = measure([
      { label: 'virtops --version', argv: [virtops, '--version'] },
      { label: 'kubectl version --client', argv: [kubectl, 'version', '--client'] },
      { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
      { label: 'virtops --help', argv: [virtops, '--help'] },
    ], env, dir);
    const figures = [...version];
    const ratios = [ratio(version[0]!, version[1]!)];
    if (!skip.has('cluster')) {
      say('starting a testenv control plane ...');
      cp = await clusterWithObjects(join(dir, 'cp'));
      const k = cp.kubeconfigPath;
      const cache = join(dir, 'kube-cache');
      // Both print the 5 objects (the check that each run really listed something).
      const listed = spawnSync(virtops, ['get', 'vms', '--kubeconfig', k], { env, encoding: 'utf8' }).stdout;
      if (!/vm-e/.test(listed)) throw new Error(`virtops get vms did not list the VMs:\n${listed}`);
      const cluster = measure([
        { label: 'virtops get vms', argv: [virtops, 'get', 'vms', '--kubeconfig', k] },
        { label: 'kubectl get pods -A', argv: [kubectl, 'get', 'pods', '-A', '--kubeconfig', k, '--cache-dir', cache] },
        { label: 'kubectl get virtualmachines', argv: [kubectl, 'get', 'virtualmachines', '--kubeconfig', k, '--cache-dir', cache] },
      ], env, dir);
      figures.push(...cluster);
      ratios.push(ratio(cluster[0]!, cluster[1]!), ratio(cluster[0]!, cluster[2]!));
    }
    // The 1-minute load average at the end: other work on the machine slows both sides.
    const result = { runs: RUNS, node: process.version, cores: availableParallelism(), loadAverage: Math.round(loadavg()[0]! * 10) / 10, figures, ratios };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      say(`\n${RUNS} runs each, interleaved; p50 wall time, p50 of max RSS; load average ${result.loadAverage} on ${result.cores} cores`);
      for (const f of figures) say(`  ${f.label.padEnd(30)} ${`${f.wallMs} ms`.padStart(10)} ${`${f.rssMiB} MiB`.padStart(10)}`);
      for (const r of ratios) say(`  ratio ${r.of}: wall ${r.wall}x, RSS ${r.rss}x  (goal ≤ 1.5x)`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cli: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
