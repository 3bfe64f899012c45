/**
 * CLI start-up benchmark (issue 12's performance goal): the installed package's `virtops`
 * beside kubectl, both measured in this run, runs interleaved so both see the same load.
 *
 *   npm run bench:cli [-- --runs 20] [--skip cluster,local] [--json]
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
 *    Beside them, the floor for any Node CLI: `node` running a 10-line script that does the
 *    same HTTPS GET with the same client certificate (PEM files, no kubeconfig parsing, no
 *    table) and prints the names. If that floor alone is over 1.5x kubectl, no Node CLI meets
 *    the goal on this machine, and the gap between it and virtops is what virtops adds.
 * 4. `virtops get vms --state-dir S` against the installed package's own `virtops up`
 *    (libvirt's test:///default driver, 5 Halted VMs from a git fixture): the single-host
 *    path (a unix socket, no TLS), beside the same kubectl figures.
 *
 * Each figure: p50 of N runs of wall time (spawn to exit), max RSS and CPU time (user +
 * system; bash's `time` and /usr/bin/time -f %M). Goal: virtops within 1.5x of kubectl
 * on wall time and RSS; CPU time is printed because other load on the machine moves it less.
 * --json prints one JSON line with every figure instead of the table.
 */
import { emitJson, JSON_FLAG, say } from './report.js';
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
import { bareVm, gitFixture } from '../test/integration/standalone/fixture.js';
import { cleanupStateDir, makeStateDir, waitFor } from '../test/integration/standalone/harness.js';
import { npmEnv, packedTarball } from '../test/integration/package/tarball.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, skip: { type: 'string', default: '' }, ...JSON_FLAG } });
const RUNS = Number(values.runs);
const skip = new Set(values.skip.split(',').filter(Boolean));

interface Figure {
  label: string;
  /** Wall time, p50 of the runs (ms). */
  wallMs: number;
  /** Max RSS, p50 of the runs' peaks (MiB). */
  rssMiB: number;
  /** CPU time (user + system), p50 of the runs (ms): less moved by other load than wall time. */
  cpuMs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * One run: wall, user and system time from bash's `time` (ms resolution; GNU time's %U %S
 * have 10 ms steps), peak RSS in KiB from /usr/bin/time -f %M. Both wrappers cost the same
 * for every command measured. Fails on a non-zero exit.
 */
function runOnce(argv: string[], env: NodeJS.ProcessEnv, scratch: string): { ms: number; rssKb: number; cpuMs: number } {
  const script = 'TIMEFORMAT="%3R %3U %3S"; { time /usr/bin/time -f %M -o "$0.rss" "$@" >/dev/null 2>"$0.err"; } 2>"$0.time"';
  const r = spawnSync('bash', ['-c', script, join(scratch, 'run'), ...argv], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${readFileSync(join(scratch, 'run.err'), 'utf8') || r.error?.message}`);
  const [wall, user, sys] = readFileSync(join(scratch, 'run.time'), 'utf8').trim().split(/\s+/).map(Number) as [number, number, number];
  const rssKb = Number(readFileSync(join(scratch, 'run.rss'), 'utf8').trim().split('\n').pop());
  return { ms: wall * 1000, rssKb, cpuMs: (user + sys) * 1000 };
}

/** Measures commands interleaved (run i of each before run i+1 of any), after one warm-up each. */
function measure(cmds: { label: string; argv: string[] }[], env: NodeJS.ProcessEnv, scratch: string): Figure[] {
  for (const c of cmds) runOnce(c.argv, env, scratch);
  const samples = cmds.map(() => ({ ms: [] as number[], rss: [] as number[], cpu: [] as number[] }));
  for (let i = 0; i < RUNS; i++) {
    cmds.forEach((c, j) => {
      const { ms, rssKb, cpuMs } = runOnce(c.argv, env, scratch);
      samples[j]!.ms.push(ms);
      samples[j]!.rss.push(rssKb);
      samples[j]!.cpu.push(cpuMs);
    });
  }
  return cmds.map((c, j) => {
    const s = samples[j]!;
    return { label: c.label, wallMs: Math.round(median(s.ms)), rssMiB: Math.round(median(s.rss) / 102.4) / 10, cpuMs: Math.round(median(s.cpu)) };
  });
}

const ratio = (a: Figure, b: Figure) => {
  const r = (x: number, y: number) => Math.round((x / y) * 100) / 100;
  return { of: `${a.label} / ${b.label}`, wall: r(a.wallMs, b.wallMs), rss: r(a.rssMiB, b.rssMiB), cpu: r(a.cpuMs, b.cpuMs) };
};

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

/**
 * The argv (after `node`) of the smallest Node program that lists the VMs as `get vms` does:
 * one HTTPS GET with the kubeconfig's CA and credentials (bearer token or client
 * certificate), written out as files so the program parses nothing but the response.
 */
async function nodeHttpsFloor(kubeconfig: string, dir: string): Promise<string[]> {
  const kc = loadKubeConfig(kubeconfig);
  const opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(opts as never);
  const credentials = { ca: opts.ca?.toString(), cert: opts.cert?.toString(), key: opts.key?.toString(), authorization: opts.headers?.['Authorization'] };
  const creds = join(dir, 'floor-credentials.json');
  writeFileSync(creds, JSON.stringify(credentials), { mode: 0o600 });
  const script = join(dir, 'floor.mjs');
  writeFileSync(script, [
    "import { request } from 'node:https';",
    "import { readFileSync } from 'node:fs';",
    'const [file, url] = process.argv.slice(2);',
    "const { ca, cert, key, authorization } = JSON.parse(readFileSync(file, 'utf8'));",
    'request(url, { ca, cert, key, headers: authorization ? { authorization } : {} }, (res) => {',
    "  let body = ''; res.setEncoding('utf8'); res.on('data', (c) => (body += c));",
    "  res.on('end', () => { for (const o of JSON.parse(body).items) process.stdout.write(`${o.metadata.name}\\n`); });",
    '}).end();',
  ].join('\n'));
  const url = `${kc.getCurrentCluster()!.server}/apis/kubevirt.io/v1/namespaces/default/virtualmachines`;
  return [script, creds, url];
}

interface LocalUp {
  stateDir: string;
  stop(): Promise<void>;
}

/** The installed package's `virtops up` on libvirt's test driver, serving 5 Halted VMs from a git fixture. */
async function localUp(virtops: string, env: NodeJS.ProcessEnv): Promise<LocalUp> {
  const git = await gitFixture();
  await git.commitVms(['a', 'b', 'c', 'd', 'e'].map((n) => bareVm(`vm-${n}`, { runStrategy: 'Halted' })), 'five VMs');
  const stateDir = await makeStateDir();
  const up = execa(virtops, ['up', '--repo', git.bare, '--state-dir', stateDir, '--libvirt-uri', 'test:///default', '--interval', '10m'], { env: { ...env, VIRTOPS_LOG_LEVEL: 'warn' }, extendEnv: false, reject: false, all: true });
  const stop = async () => {
    up.kill('SIGTERM');
    await up;
    await cleanupStateDir(stateDir);
    await git.cleanup();
  };
  try {
    await waitFor('virtops up to list the 5 VMs', async () => /vm-e/.test(spawnSync(virtops, ['get', 'vms', '--state-dir', stateDir], { env, encoding: 'utf8' }).stdout), 120_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { stateDir, stop };
}

async function main(): Promise<void> {
  const kubectl = join(defaultBinDir(), 'kubectl');
  if (!existsSync(kubectl)) throw new Error(`${kubectl} not found: build it with npx virtops testenv build (tools/kube/build.sh)`);
  const dir = mkdtempSync(join(tmpdir(), 'vo-bench-cli-'));
  let cp: ControlPlane | undefined;
  let local: LocalUp | undefined;
  const cleanup = async () => {
    await local?.stop().catch(() => undefined);
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
    const lists: { label: string; argv: string[] }[] = [];
    if (!skip.has('cluster')) {
      say('starting a testenv control plane ...');
      cp = await clusterWithObjects(join(dir, 'cp'));
      const k = cp.kubeconfigPath;
      const cache = join(dir, 'kube-cache');
      // The check that each run really lists something.
      const listed = spawnSync(virtops, ['get', 'vms', '--kubeconfig', k], { env, encoding: 'utf8' }).stdout;
      if (!/vm-e/.test(listed)) throw new Error(`virtops get vms did not list the VMs:\n${listed}`);
      const floor = await nodeHttpsFloor(k, dir);
      const floorListed = spawnSync(process.execPath, floor, { env, encoding: 'utf8' }).stdout;
      if (!/vm-e/.test(floorListed)) throw new Error(`the node https floor did not list the VMs:\n${floorListed}`);
      lists.push(
        { label: 'virtops get vms', argv: [virtops, 'get', 'vms', '--kubeconfig', k] },
        { label: 'node https GET (floor)', argv: [process.execPath, ...floor] },
        { label: 'kubectl get pods -A', argv: [kubectl, 'get', 'pods', '-A', '--kubeconfig', k, '--cache-dir', cache] },
        { label: 'kubectl get virtualmachines', argv: [kubectl, 'get', 'virtualmachines', '--kubeconfig', k, '--cache-dir', cache] },
      );
    }
    if (!skip.has('local')) {
      say('starting the installed package\'s virtops up (test:///default) ...');
      local = await localUp(virtops, env);
      lists.push({ label: 'virtops get vms (local up)', argv: [virtops, 'get', 'vms', '--state-dir', local.stateDir] });
    }
    if (lists.length > 0) {
      const listed = measure(lists, env, dir);
      figures.push(...listed);
      const of = (label: string) => listed.find((f) => f.label === label);
      const pods = of('kubectl get pods -A');
      for (const [a, b] of [['virtops get vms', 'kubectl get pods -A'], ['node https GET (floor)', 'kubectl get pods -A'], ['virtops get vms', 'node https GET (floor)'], ['virtops get vms', 'kubectl get virtualmachines'], ['virtops get vms (local up)', 'kubectl get pods -A']] as const) {
        if (of(a) && of(b) && pods) ratios.push(ratio(of(a)!, of(b)!));
      }
    }
    // The 1-minute load average at the end: other work on the machine slows both sides.
    const result = { runs: RUNS, node: process.version, cores: availableParallelism(), loadAverage: Math.round(loadavg()[0]! * 10) / 10, figures, ratios };
    if (values.json) {
      emitJson('cli', result);
    } else {
      say(`\np50 of ${RUNS} runs each, interleaved; load average ${result.loadAverage} on ${result.cores} cores`);
      say(`  ${'command'.padEnd(30)} ${'wall'.padStart(10)} ${'max RSS'.padStart(10)} ${'CPU'.padStart(10)}`);
      for (const f of figures) say(`  ${f.label.padEnd(30)} ${`${f.wallMs} ms`.padStart(10)} ${`${f.rssMiB} MiB`.padStart(10)} ${`${f.cpuMs} ms`.padStart(10)}`);
      for (const r of ratios) say(`  ratio ${r.of}: wall ${r.wall}x, RSS ${r.rss}x, CPU ${r.cpu}x  (goal ≤ 1.5x)`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cli: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
