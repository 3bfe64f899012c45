/**
 * git push → libvirt domain running, for one VM, through the real `virtops up` on
 * qemu:///system (TCG). p50 over 10 pushes (target < 1 s; guest boot excluded: the clock
 * stops at libvirt's "Started" lifecycle event), shown beside the baseline of the same run:
 * raw `virsh define && virsh start` of the same domain XML.
 *
 * Each push adds the VM; the next commit removes it again (pruned) before the next push.
 * The stages come from virtops up's own log: source (push → revision applied), launcher
 * start (process spawned → socket open → VMI synced), domain start.
 *
 *   npx tsx bench/push.ts [--pushes 10] [--json]
 */
import { emitJson, say } from './report.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { bareVm, gitFixture } from '../test/integration/standalone/fixture.js';
import { cleanupStateDir, startUp, vm as getVm, waitFor } from '../test/integration/standalone/harness.js';

const PUSHES = (() => {
  const i = process.argv.indexOf('--pushes');
  return i > 0 ? Number(process.argv[i + 1]) : 10;
})();
const NAME = 'bench-push';
const DOMAIN = `default_${NAME}`;

/** Lifecycle events of qemu:///system, as (domain, event, time) with this process's clock. */
function watchEvents() {
  const seen: { domain: string; event: string; at: number }[] = [];
  const child = execa('virsh', ['-c', 'qemu:///system', 'event', '--loop', '--event', 'lifecycle'], { reject: false, buffer: false });
  let buf = '';
  child.stdout?.on('data', (b: Buffer) => {
    const at = performance.now();
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /for domain '([^']+)': (\w+)/.exec(line);
      if (m) seen.push({ domain: m[1]!, event: m[2]!, at });
    }
  });
  return {
    /** Resolves with the time of the first `event` for `domain` after `since`. */
    next: (domain: string, event: string, since: number) =>
      waitFor(`${event} of ${domain}`, async () => seen.find((e) => e.domain === domain && e.event === event && e.at >= since)?.at, 120_000, 5),
    stop: () => {
      child.kill();
      return child.catch(() => undefined);
    },
  };
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;

interface LogLine {
  time: number;
  msg: string;
  vm?: string;
}

async function main(): Promise<void> {
  const git = await gitFixture();
  const stateDir = await mkdtemp('/tmp/vo-bp-');
  const events = watchEvents();
  const placeholder = bareVm('placeholder', { runStrategy: 'Halted' });
  const target = bareVm(NAME);
  await git.commitVms([placeholder], 'placeholder');
  const up = await startUp(['--repo', git.bare, '--emulation', 'tcg', '--interval', '1m', '--no-freshness-check'], stateDir);
  const xmlDir = await mkdtemp(join(tmpdir(), 'vo-bp-xml-'));
  const xmlFile = join(xmlDir, 'domain.xml');
  const pushTimes: number[] = [];
  const latencies: number[] = [];
  const baseline: number[] = [];
  try {
    await waitFor('placeholder applied', async () => (await getVm(up.server, 'placeholder'))?.status?.printableStatus === 'Stopped', 60_000);
    for (let i = 0; i < PUSHES; i++) {
      const t0 = performance.now();
      pushTimes.push(Date.now());
      await git.commitVms([placeholder, target], `add ${NAME} #${i}`);
      const t1 = await events.next(DOMAIN, 'Started', t0);
      latencies.push(t1 - t0);
      if (i === 0) {
        const xml = (await execa('virsh', ['-c', 'qemu:///system', 'dumpxml', '--inactive', DOMAIN])).stdout;
        await writeFile(xmlFile, xml);
      }
      await waitFor('Running in the API', async () => (await getVm(up.server, NAME))?.status?.printableStatus === 'Running', 60_000, 20);
      await git.commitVms([placeholder], `remove ${NAME} #${i}`);
      await waitFor('pruned', async () => (await getVm(up.server, NAME)) === undefined, 120_000, 20);
    }

    // Baseline: the same domain XML, straight into libvirt. Recreate the directories its
    // paths point into (the prune removed them with the VM).
    const xml = await import('node:fs/promises').then((f) => f.readFile(xmlFile, 'utf8'));
    for (const m of xml.matchAll(/(?:path|file)=['"]([^'"]+)['"]/g)) if (m[1]!.startsWith(stateDir)) await mkdir(dirname(m[1]!), { recursive: true });
    for (let i = 0; i < PUSHES; i++) {
      const t0 = performance.now();
      await execa('sh', ['-c', `virsh -q -c qemu:///system define ${xmlFile} >/dev/null && virsh -q -c qemu:///system start ${DOMAIN} >/dev/null`]);
      const t1 = await events.next(DOMAIN, 'Started', t0);
      baseline.push(t1 - t0);
      await execa('virsh', ['-c', 'qemu:///system', 'destroy', DOMAIN]);
      await execa('virsh', ['-c', 'qemu:///system', 'undefine', DOMAIN]);
    }
  } finally {
    await up.stop().catch(() => undefined);
    await events.stop();
    if ((await execa('virsh', ['-c', 'qemu:///system', 'domstate', DOMAIN], { reject: false })).exitCode === 0) {
      await execa('virsh', ['-c', 'qemu:///system', 'destroy', DOMAIN], { reject: false });
      await execa('virsh', ['-c', 'qemu:///system', 'undefine', DOMAIN], { reject: false });
    }
    await cleanupStateDir(stateDir);
    await rm(xmlDir, { recursive: true, force: true });
    await git.cleanup();
  }

  // Stages from virtops up's log (epoch ms), per push.
  const log: LogLine[] = up
    .logText()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
  const stage = { source: [] as number[], plan: [] as number[], launcher: [] as number[] };
  for (const [i, pushedAt] of pushTimes.entries()) {
    const end = pushTimes[i + 1] ?? Infinity;
    const inWindow = (l: LogLine) => l.time >= pushedAt && l.time < end;
    const applied = log.find((l) => inWindow(l) && l.msg.startsWith('applying revision'));
    const spawn = log.find((l) => inWindow(l) && l.msg === 'starting launcher');
    const started = log.find((l) => inWindow(l) && l.msg === 'instance started');
    if (!applied || !spawn || !started) continue;
    stage.source.push(applied.time - pushedAt);
    stage.plan.push(spawn.time - applied.time);
    stage.launcher.push(started.time - spawn.time);
  }

  const rows = [
    ['push → domain running (virtops up)', ms(p50(latencies)), `min ${ms(Math.min(...latencies))}, max ${ms(Math.max(...latencies))}`, `target < 1000 ms: ${p50(latencies) < 1000 ? 'met' : 'MISSED'}`],
    ['baseline: virsh define && virsh start', ms(p50(baseline)), `min ${ms(Math.min(...baseline))}, max ${ms(Math.max(...baseline))}`, `ratio ${(p50(latencies) / p50(baseline)).toFixed(1)}x`],
    ['  stage: commit+push → revision applied', ms(p50(stage.source)), '(git push, chokidar, fetch, worktree, validate)', ''],
    ['  stage: revision applied → launcher spawned', ms(p50(stage.plan)), '(plan, state dir writes)', ''],
    ['  stage: launcher spawned → VMI synced', ms(p50(stage.launcher)), '(node+tsx start of monitor and launcher, define, start)', ''],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  emitJson('push', {
    pushes: PUSHES, pushToDomainRunningP50Ms: p50(latencies), virshBaselineP50Ms: p50(baseline), ratio: p50(latencies) / p50(baseline),
    stagesP50Ms: { sourceToApplied: p50(stage.source), appliedToSpawned: p50(stage.plan), spawnedToSynced: p50(stage.launcher) },
    latenciesMs: latencies, baselineMs: baseline,
  });
  say(`p50 over ${PUSHES} pushes\n${rows.map((r) => r.map((c, i) => c.padEnd(w[i]! + 2)).join('')).join('\n')}`);
}

await main();
