/**
 * Source and core figures: how long from `git push` to a published revision (watch vs
 * poll), against the floor of commit + push + `git rev-parse` measured in the same run; the
 * same in a dist/ of 1,000 VMs (each file a VM and its launcher Pod, as synth writes them):
 * all 1,000 new in one push, and one of them edited; and how long the pure core takes to
 * decide and compute status for 10 000 VMs.
 *   npx tsx bench/source.ts [--vms N] [--json]
 */
import { emitJson, JSON_FLAG, say } from './report.js';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { computeVmStatus, decideVmActions, type ObservedInstance } from '../reconciler/core/index.js';
import { GitSource } from '../reconciler/source/index.js';
import { git } from '../reconciler/source/git.js';
import { nextEvent, TestRepo, vmYaml } from '../test/integration/source/helpers.js';
import { inst, vm } from '../test/unit/reconciler/fixtures.js';
import { bareVm, vmDocuments } from '../test/integration/standalone/fixture.js';

const { values } = parseArgs({ options: { vms: { type: 'string', default: '1000' }, ...JSON_FLAG } });
const LARGE = Number(values.vms);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ROUNDS = 7;

async function pushToRevision(mode: 'watch' | 'poll'): Promise<number> {
  const repo = new TestRepo();
  repo.commit({ 'dist/a.yaml': vmYaml('a') }, 'init');
  const source = new GitSource({
    repo: mode === 'watch' ? repo.bare : `file://${repo.bare}`,
    freshness: false,
    logger: pino({ level: 'silent' }),
    pollIntervalMs: 250,
  });
  await source.start();
  const times: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const ev = nextEvent(source);
      const t0 = performance.now();
      repo.commit({ 'dist/a.yaml': vmYaml('a', `${64 + i}Mi`) }, `r${i}`);
      await ev;
      times.push(performance.now() - t0);
    }
  } finally {
    await source.stop();
    repo.remove();
  }
  return median(times);
}

async function gitFloor(): Promise<number> {
  const repo = new TestRepo();
  repo.commit({ 'dist/a.yaml': vmYaml('a') }, 'init');
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    repo.commit({ 'dist/a.yaml': vmYaml('a', `${64 + i}Mi`) }, `r${i}`);
    await git(['--git-dir', repo.bare, 'rev-parse', 'refs/heads/main']);
    times.push(performance.now() - t0);
  }
  repo.remove();
  return median(times);
}

/**
 * A dist/ of `n` VMs: one push adding all of them → revision; then one VM edited per push →
 * revision (p50 of ROUNDS), and its floor, commit + push + rev-parse of the same edits.
 */
async function largeDist(n: number): Promise<{ allNewMs: number; editOneMs: number; editOneFloorMs: number }> {
  const repo = new TestRepo();
  const cacheDir = mkdtempSync(join(tmpdir(), 'vo-bench-source-'));
  repo.commit({ 'dist/placeholder.k8s.yaml': vmDocuments(bareVm('placeholder')) }, 'init');
  const source = new GitSource({ repo: repo.bare, freshness: false, logger: pino({ level: 'silent' }), cacheDir });
  await source.start();
  const edit = (i: number) => ({ [`dist/vm-${i}.k8s.yaml`]: vmDocuments(bareVm(`vm-${i}`, { memory: `${65 + i}Mi` })) });
  try {
    let ev = nextEvent(source);
    let t0 = performance.now();
    repo.commit(Object.fromEntries(Array.from({ length: n }, (_, i) => [`dist/vm-${i}.k8s.yaml`, vmDocuments(bareVm(`vm-${i}`))])), `${n} VMs`);
    const e = await ev;
    const allNewMs = performance.now() - t0;
    if (e.type !== 'revision' || e.revision.manifests.length !== 2 * n + 2) throw new Error(`expected a revision of ${2 * n + 2} manifests, got ${JSON.stringify(e).slice(0, 300)}`);
    const edits: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      ev = nextEvent(source);
      t0 = performance.now();
      repo.commit(edit(i), `edit vm-${i}`);
      if ((await ev).type !== 'revision') throw new Error(`edit ${i} was refused`);
      edits.push(performance.now() - t0);
    }
    await source.stop();
    const floors: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      t0 = performance.now();
      repo.commit(edit(ROUNDS + i), `edit vm-${ROUNDS + i}`);
      await git(['--git-dir', repo.bare, 'rev-parse', 'refs/heads/main']);
      floors.push(performance.now() - t0);
    }
    return { allNewMs, editOneMs: median(edits), editOneFloorMs: median(floors) };
  } finally {
    await source.stop();
    repo.remove();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

function coreThroughput(n: number): number {
  const v = vm({ runStrategy: 'Always' });
  const states: (ObservedInstance | undefined)[] = [undefined, inst('Running'), inst('Failed'), inst('Succeeded'), inst('Pending')];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const observed = states[i % states.length];
    decideVmActions(v, observed, { now: 1e12 });
    computeVmStatus(v, observed, { now: 1e12 });
  }
  return performance.now() - t0;
}

const floor = await gitFloor();
const watch = await pushToRevision('watch');
const poll = await pushToRevision('poll');
const large = await largeDist(LARGE);
const core = coreThroughput(10_000);
say(`commit+push+rev-parse (floor)     ${floor.toFixed(0)} ms (median of ${ROUNDS})`);
say(`commit+push → revision, watch     ${watch.toFixed(0)} ms  (${(watch / floor).toFixed(2)}× floor)`);
say(`commit+push → revision, poll 250ms ${poll.toFixed(0)} ms  (${(poll / floor).toFixed(2)}× floor)`);
say(`${LARGE} VMs (VM + launcher Pod per file) in one push → revision ${large.allNewMs.toFixed(0)} ms (${(large.allNewMs / LARGE).toFixed(2)} ms per VM)`);
say(`one of ${LARGE} VMs edited → revision ${large.editOneMs.toFixed(0)} ms vs ${large.editOneFloorMs.toFixed(0)} ms commit+push+rev-parse of the same edit (${(large.editOneMs / large.editOneFloorMs).toFixed(2)}× floor)`);
say(`core: decide + status for 10 000 VMs ${core.toFixed(0)} ms (${((core / 10_000) * 1000).toFixed(1)} µs/VM)`);
emitJson('source', { rounds: ROUNDS, gitFloorMs: floor, pushToRevisionWatchMs: watch, pushToRevisionPoll250Ms: poll, ratioWatchToFloor: watch / floor, ratioPollToFloor: poll / floor, largeDist: { vms: LARGE, allNewInOnePushMs: large.allNewMs, editOneMs: large.editOneMs, editOneFloorMs: large.editOneFloorMs, ratioEditOneToFloor: large.editOneMs / large.editOneFloorMs }, coreDecideStatus10kVmsMs: core });
