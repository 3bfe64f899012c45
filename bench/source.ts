/**
 * Source and core figures: how long from `git push` to a published revision (watch vs
 * poll), against the floor of one `git rev-parse` + `git fetch` + worktree cycle measured in
 * the same run; and how long the pure core takes to decide and compute status for 10 000 VMs.
 *   npx tsx bench/source.ts [--json]
 */
import { emitJson, say } from './report.js';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { computeVmStatus, decideVmActions, type ObservedInstance } from '../reconciler/core/index.js';
import { GitSource } from '../reconciler/source/index.js';
import { git } from '../reconciler/source/git.js';
import { nextEvent, TestRepo, vmYaml } from '../test/integration/source/helpers.js';
import { inst, vm } from '../test/unit/reconciler/fixtures.js';

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
    debounceMs: 100,
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
const core = coreThroughput(10_000);
say(`commit+push+rev-parse (floor)     ${floor.toFixed(0)} ms (median of ${ROUNDS})`);
say(`commit+push → revision, watch     ${watch.toFixed(0)} ms  (${(watch / floor).toFixed(2)}× floor)`);
say(`commit+push → revision, poll 250ms ${poll.toFixed(0)} ms  (${(poll / floor).toFixed(2)}× floor)`);
say(`core: decide + status for 10 000 VMs ${core.toFixed(0)} ms (${((core / 10_000) * 1000).toFixed(1)} µs/VM)`);
emitJson('source', { rounds: ROUNDS, gitFloorMs: floor, pushToRevisionWatchMs: watch, pushToRevisionPoll250Ms: poll, ratioWatchToFloor: watch / floor, ratioPollToFloor: poll / floor, coreDecideStatus10kVmsMs: core });
