/**
 * One VM reconcile, two stores: each behaviour that used to differ between the modes is pinned
 * here for both, through the same scenario.
 *
 *   single host  StandaloneBackend over a real state dir (tmp), launchers on FakeInstanceHandler
 *   cluster      VmController + ClusterAgent (process runtime) over FakeKubeClient, launchers on
 *                FakeInstanceHandler; the test plays the scheduler (binds launcher Pods)
 *
 * Both share one clock (starting at the real time, moved forward by the test), so a test can
 * jump past a backoff or a launcher's 120 s of silence without waiting.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunStrategy, VirtualMachine, VirtualMachineStatus } from '../../../api/kubevirt.js';
import { ClusterAgent } from '../../../reconciler/cluster/agent.js';
import { VmController } from '../../../reconciler/cluster/controller.js';
import { UNRESPONSIVE_AFTER_MS, type KubeObject } from '../../../reconciler/core/index.js';
import { StandaloneBackend } from '../../../reconciler/standalone/backend.js';
import { ReconcilerMetrics } from '../../../reconciler/standalone/metrics.js';
import { StateStore, type VmRecord } from '../../../reconciler/standalone/state-store.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import type { PodManifest } from '../../../synth/pod-types.js';
import { FakeKubeClient, apiError } from '../../helpers/fake-kube.js';
import { FakeInstanceHandler } from '../../helpers/fake-node.js';

const log = pino({ level: process.env.DBG ? 'debug' : 'silent' });
const NS = 'default';
const KV = 'kubevirt.io/v1';
const NODE = 'node-1';

function vmManifest(name: string, runStrategy: RunStrategy, grace?: number): VirtualMachine {
  return {
    apiVersion: KV,
    kind: 'VirtualMachine',
    metadata: { name, namespace: NS },
    spec: {
      runStrategy,
      template: {
        metadata: { labels: { app: name } },
        spec: {
          domain: { resources: { requests: { memory: '128Mi' } }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
          volumes: [{ name: 'root', containerDisk: { image: 'registry.local/tiny:1' } }],
          ...(grace !== undefined ? { terminationGracePeriodSeconds: grace } : {}),
        },
      },
    },
  };
}

interface Mode {
  node: FakeInstanceHandler;
  /** Puts these VMs in git (a new revision) and lets the world settle. */
  apply(vms: VirtualMachine[]): Promise<void>;
  /** Every reconciler looks again (after the clock moved), until nothing changes (or `rounds` times). */
  settle(rounds?: number): Promise<void>;
  /** Events written so far (single host: including those aggregated into a count). */
  eventCount(): number;
  status(name: string): VirtualMachineStatus | undefined;
  warnings(): string[];
  /** The reconciler process is replaced (a restart of `up`, a controller failover). */
  failover(): Promise<void>;
  /** Instance creation fails, in the way this mode's store can fail, until fixCreates(). */
  breakCreates(): void;
  fixCreates(): void;
  /** Someone removes the VM's finished instance (cluster: kubectl delete vmi). */
  removeInstance?(name: string): Promise<void>;
  advance(ms: number): void;
  stop(): Promise<void>;
}

const clock = { t: 0 };
const now = () => clock.t;

async function singleHost(): Promise<Mode> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-both-'));
  const node = new FakeInstanceHandler();
  node.now = now;
  const warnings: string[] = [];
  let seq = 0;
  // Every event the backend writes (a repeat aggregated into a count is one more), read from
  // what it persists: the kept history (30) alone would hide a flood.
  const written = new Set<string>();
  class CountingStore extends StateStore {
    override writeVm(rec: VmRecord): Promise<void> {
      for (const e of rec.events) written.add(`${rec.name}|${e.time}|${e.reason}|${e.message}|${e.count ?? 1}`);
      return super.writeVm(rec);
    }
  }
  const make = async () => {
    const b = new StandaloneBackend({
      store: new CountingStore(dir),
      agent: node,
      domains: { exists: () => Promise.resolve(false) },
      log,
      metrics: new ReconcilerMetrics({ defaultMetrics: false }),
      resyncMs: 3_600_000,
      now,
    });
    await b.start();
    return b;
  };
  let backend = await make();
  let breakNext = false;
  const settle = async (rounds = 3) => {
    for (let i = 0; i < rounds; i++) {
      backend.resync();
      await backend.idle();
    }
    for (const v of backend.list()) for (const e of v.events) if (e.type === 'Warning' && !warnings.includes(`${v.name}:${e.reason}:${e.time}`)) warnings.push(`${v.name}:${e.reason}:${e.time}`);
  };
  return {
    node,
    async apply(vms) {
      const manifests: KubeObject[] = [];
      for (const vm of vms) {
        manifests.push(vm as unknown as KubeObject);
        if (!breakNext) manifests.push(renderLauncherPod(vm) as unknown as KubeObject);
      }
      await backend.applyRevision({ sha: `c0ffee${++seq}`.padEnd(40, '0'), manifests });
      await settle();
    },
    settle,
    eventCount: () => written.size,
    status: (name) => backend.get(NS, name)?.status,
    warnings: () => warnings.map((w) => w.split(':')[1]!),
    async failover() {
      await backend.stop();
      backend = await make();
      await settle();
    },
    breakCreates() {
      // Commits whose dist/ lacks the VM's launcher Pod: the create fails (NoLauncherPod).
      breakNext = true;
    },
    fixCreates() {
      breakNext = false; // the next commit is a good one
    },
    advance: (ms) => void (clock.t += ms),
    async stop() {
      await backend.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function cluster(): Promise<Mode> {
  const kube = new FakeKubeClient({ now });
  const node = new FakeInstanceHandler();
  node.now = now;
  const newController = () => new VmController(kube, { log, now, statusCoalesceMs: 0, resyncMs: 3_600_000 });
  let controller = newController();
  const agent = new ClusterAgent(kube, { nodeName: NODE, processRuntime: true, runtime: node, log, resyncMs: 3_600_000, leaseRenewMs: 3_600_000, nodeStatusMs: 3_600_000, now });
  await agent.start();
  await controller.start();
  let seq = 0;
  const settle = async (rounds = 6) => {
    for (let i = 0; i < rounds; i++) {
      // The scheduler: bind every unbound launcher Pod to the one node.
      for (const p of kube.list<{ metadata: { name: string; namespace: string; deletionTimestamp?: string }; spec: { nodeName?: string } }>('v1', 'Pod', NS)) {
        if (!p.spec.nodeName && !p.metadata.deletionTimestamp) {
          kube.modify<{ spec: { nodeName?: string }; status?: unknown }>('v1', 'Pod', p.metadata.name, NS, (o) => {
            o.spec.nodeName = NODE;
            o.status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] };
          });
        }
      }
      // Through the queues (never beside them: a key is reconciled by one worker at a time).
      for (const p of agent.pods.list()) agent.queue.add(`${p.metadata?.namespace ?? NS}/${p.metadata?.name ?? ''}`);
      await agent.idle();
      for (const vm of controller.listVms()) controller.queue.add(`${vm.metadata.namespace ?? NS}/${vm.metadata.name}`);
      await controller.idle();
    }
  };
  return {
    node,
    async apply(vms) {
      const templates = new Map<string, PodManifest>();
      for (const vm of vms) {
        const existing = kube.get<VirtualMachine>(KV, 'VirtualMachine', vm.metadata.name!, NS);
        if (existing) kube.modify<VirtualMachine>(KV, 'VirtualMachine', vm.metadata.name!, NS, (o) => void (o.spec = structuredClone(vm.spec)));
        else kube.seed(vm);
        templates.set(`${NS}/${vm.metadata.name}`, renderLauncherPod(vm));
      }
      controller.setTemplates(`c0ffee${++seq}`.padEnd(40, '0'), templates);
      await settle();
    },
    settle,
    eventCount: () => kube.events.length,
    status: (name) => kube.get<VirtualMachine>(KV, 'VirtualMachine', name, NS)?.status,
    warnings: () => kube.events.filter((e) => e.type === 'Warning').map((e) => e.reason),
    async failover() {
      await controller.stop();
      controller = newController();
      await controller.start();
      await settle();
    },
    breakCreates() {
      kube.failNext('create', 'virtualmachineinstances', apiError(500, 'etcdserver: request timed out'), { times: 1_000 });
    },
    fixCreates() {
      kube.clearFailures();
    },
    async removeInstance(name) {
      kube.remove(KV, 'VirtualMachineInstance', name, NS);
      await settle();
    },
    advance: (ms) => void (clock.t += ms),
    async stop() {
      await controller.stop();
      await agent.stop();
    },
  };
}

const modes: [string, () => Promise<Mode>][] = [
  ['single host', singleHost],
  ['cluster', cluster],
];

let current: Mode | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

async function setup(make: () => Promise<Mode>): Promise<Mode> {
  clock.t = Date.now();
  current = await make();
  return current;
}

describe.each(modes)('%s: one reconcile path', (_mode, make) => {
  it('a crash-looping VM keeps its CrashLoopBackOff across a restart or failover of the reconciler', async () => {
    const m = await setup(make);
    await m.apply([vmManifest('web', 'Always')]);
    expect(m.status('web')?.printableStatus).toBe('Running');
    const first = m.node.live();

    m.node.crash(first.record.uid);
    await m.settle();
    expect(m.status('web')).toMatchObject({ printableStatus: 'CrashLoopBackOff', startFailure: { consecutiveFailCount: 1, lastFailedVMIUID: first.record.uid } });
    const launchers = m.node.launchers.size;

    await m.failover();
    expect(m.status('web')?.printableStatus).toBe('CrashLoopBackOff');
    expect(m.node.launchers.size).toBe(launchers); // nothing started during the backoff

    m.advance(11_000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
    expect(m.node.live().record.uid).not.toBe(first.record.uid);
  });

  it('runStrategy Once: a finished run is not repeated, also after a failover', async () => {
    const m = await setup(make);
    await m.apply([vmManifest('job', 'Once')]);
    expect(m.status('job')?.printableStatus).toBe('Running');
    m.node.finish(m.node.live().record.uid, 'Succeeded');
    await m.settle();
    expect(m.status('job')?.printableStatus).toBe('Stopped');
    expect(m.status('job')?.conditions?.find((c) => c.type === 'OnceCompleted')?.status).toBe('True');
    const launchers = m.node.launchers.size;
    await m.failover();
    await m.removeInstance?.('job');
    m.advance(60_000);
    await m.settle();
    expect(m.status('job')?.printableStatus).toBe('Stopped');
    expect(m.node.launchers.size).toBe(launchers);
  });

  it('a failed action shows as condition Failure with a Warning event, and clears once it succeeds', async () => {
    const m = await setup(make);
    m.breakCreates();
    await m.apply([vmManifest('web', 'Always')]);
    const failure = m.status('web')?.conditions?.find((c) => c.type === 'Failure');
    expect(failure?.status).toBe('True');
    expect(m.warnings()).toContain(failure?.reason);
    expect(m.status('web')?.printableStatus).not.toBe('Running');

    m.fixCreates();
    await m.apply([vmManifest('web', 'Always')]);
    m.advance(6_000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
    expect(m.status('web')?.conditions?.find((c) => c.type === 'Failure')).toBeUndefined();
  });

  it('a running launcher that stops answering keeps its last phase out of sync for 120 s, then is Failed (and restarted after the backoff)', async () => {
    const m = await setup(make);
    await m.apply([vmManifest('web', 'Always')]);
    const hung = m.node.live();
    m.node.hang(hung.record.uid);
    m.advance(UNRESPONSIVE_AFTER_MS - 10_000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
    expect(m.status('web')?.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({ status: 'False', reason: 'LauncherUnresponsive' });
    m.advance(20_000);
    await m.settle();
    expect(m.status('web')).toMatchObject({ printableStatus: 'CrashLoopBackOff', startFailure: { lastFailedVMIUID: hung.record.uid } });
    m.advance(11_000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
  });

  it.each([
    ['a launcher that crashes at every start', 'crash'],
    ['an instance create that keeps failing', 'break'],
  ])('no event floods: %s, looked at every second through 5-minute backoffs, writes a small number of events', async (_name, how) => {
    const m = await setup(make);
    if (how === 'break') m.breakCreates();
    await m.apply([vmManifest('web', 'Always')]);
    const before = m.eventCount();
    for (let i = 0; i < 15 * 60; i++) {
      if (how === 'crash') {
        const l = [...m.node.launchers.values()].find((x) => x.alive);
        if (l) m.node.crash(l.record.uid);
      }
      m.advance(1000);
      await m.settle(1);
    }
    const written = m.eventCount() - before;
    // 15 minutes: backoffs of 10, 20, 40, 80, 160, 300, 300 s... about 8 restarts; a handful of
    // events each (stop, create, failure, status), never one per pass.
    if (how === 'crash') expect(written).toBeGreaterThan(8);
    expect(written).toBeLessThan(60);
  }, 60_000);

  it('libvirtd down under a running VM: still Running with Synchronized=False since the loss, nothing restarted; in sync once back', async () => {
    const m = await setup(make);
    await m.apply([vmManifest('web', 'Always')]);
    const l = m.node.live();
    m.node.libvirt(l.record.uid, 'disconnected');
    await m.settle();
    const cond = (s: VirtualMachineStatus | undefined) => s?.conditions?.find((c) => c.type === 'Synchronized');
    expect(m.status('web')?.printableStatus).toBe('Running');
    expect(cond(m.status('web'))).toMatchObject({ status: 'False', reason: 'LibvirtUnreachable', message: expect.stringMatching(/libvirt is unreachable since \d{4}-/) });
    const message = cond(m.status('web'))?.message;
    // Minutes of outage: the same status (no flapping, no restart), the same "since".
    for (let i = 0; i < 5; i++) {
      m.advance(60_000);
      await m.settle();
      expect(m.status('web')?.printableStatus).toBe('Running');
      expect(cond(m.status('web'))?.message).toBe(message);
    }
    // The launcher also stops answering for a while (a libvirt call hanging): still Running.
    m.node.hang(l.record.uid);
    m.advance(30_000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
    // (the cluster agent rewrites a VMI only when a condition's status changes, so the reason may stay)
    expect(cond(m.status('web'))?.reason).toMatch(/^(LauncherUnresponsive|LibvirtUnreachable)$/);
    m.node.unhang(l.record.uid);
    m.node.libvirt(l.record.uid, 'connected');
    m.advance(1000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
    expect(cond(m.status('web'))).toBeUndefined();
    expect(m.node.live().record.uid).toBe(l.record.uid);
    expect(m.node.stops).toEqual([]);
    expect(m.warnings()).toEqual([]);
  });

  it('a launcher whose monitor was killed is not trusted: the instance is failed, stopped and replaced', async () => {
    const m = await setup(make);
    await m.apply([vmManifest('web', 'Always')]);
    const orphan = m.node.live();
    m.node.killMonitor(orphan.record.uid);
    await m.settle();
    expect(m.status('web')).toMatchObject({ printableStatus: 'CrashLoopBackOff', startFailure: { lastFailedVMIUID: orphan.record.uid } });
    m.advance(11_000);
    await m.settle();
    expect(m.status('web')?.printableStatus).toBe('Running');
    expect(orphan.alive).toBe(false); // stopped, not left running unsupervised
    expect(m.node.live().record.uid).not.toBe(orphan.record.uid);
  });

  it.each([
    ['no grace in the template: KubeVirt default 30 s', undefined, 30],
    ['the template sets 7 s', 7, 7],
  ])('a stop gives the guest the VMI grace period (%s)', async (_name, grace, expected) => {
    const m = await setup(make);
    await m.apply([vmManifest('web', 'Always', grace)]);
    const uid = m.node.live().record.uid;
    await m.apply([vmManifest('web', 'Halted', grace)]);
    expect(m.status('web')?.printableStatus).toBe('Stopped');
    expect(m.node.stops.filter((s) => s.uid === uid).map((s) => s.graceSeconds)[0]).toBe(expected);
  });
});
