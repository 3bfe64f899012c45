/**
 * Two `virtops controller` processes with --leader-elect (real CLI processes, real Lease):
 * only the lease holder acts; SIGKILL it mid-reconcile and the other takes over once the
 * lease expires, converging with no duplicate VMIs or launcher Pods.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubernetesObject, V1Lease, V1Pod } from '@kubernetes/client-node';
import type { ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import type { AgentHandle } from '../../../reconciler/cluster/run.js';
import { bareVm } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';
import { commitVms, controllerProcess, deleteNode, LEASE_DURATION_MS, stopLaunchersUnder, getVm, gitFixture, identities, listJson, startAgent, tempDir, until, type Env, type Identities } from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
// Short: the namespace is part of launcher socket paths under the agent's state dir (107-byte limit).
const NS = `vo-k-${suffix}`;
const NODE = `vo-node-${suffix}`;
const NAMES = ['k1', 'k2', 'k3', 'k4'];

describe.skipIf(!env)('controller SIGKILLed and replaced (leader election)', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let agent: AgentHandle;
  const procs = new Map<string, ResultPromise>();

  const logOf = (id: string) => readFile(join(state.dir, `${id}.log`), 'utf8').catch(() => '');
  // Each replica's git clone lives in the state dir: a SIGKILLed one cannot remove its own.
  const start = (id: string) => procs.set(id, controllerProcess(ids.controller.kubeconfigPath, git, NS, id, join(state.dir, `${id}.log`), join(state.dir, `cache-${id}`)));
  const lease = () => ids.admin.readLease(NS, 'virtops-controller').catch(() => undefined as V1Lease | undefined);
  const holder = async () => (await lease())?.spec?.holderIdentity;

  beforeAll(async () => {
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-crash-');
    agent = await startAgent(ids, NODE, state.dir, 'test:///default');
  }, 120_000);

  afterAll(async () => {
    for (const p of procs.values()) p.kill('SIGKILL');
    if (ids) {
      for (const v of await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachine', NS).catch(() => [])) await ids.admin.delete(v as KubernetesObject);
      await until('VMIs gone', async () => (await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS)).length === 0, 60_000).catch(() => undefined);
    }
    await agent?.stop();
    if (state) await stopLaunchersUnder(state.dir);
    if (ids) {
      await deleteNode(ids.admin, NODE);
      await ids.admin.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }).catch(() => undefined);
    }
    await git?.cleanup();
    await state?.cleanup();
  }, 120_000);

  /** The replicas' logs live in the state dir, which afterAll removes: show their ends on failure. */
  const dumpLogs = async () => {
    for (const id of procs.keys()) {
      const tail = (text: string, n: number) => text.trim().split('\n').slice(-n).join('\n');
      process.stderr.write(`\n----- ${id} log (last 40 lines) -----\n${tail(await logOf(id), 40)}\n----- ${id} stderr -----\n${tail(await readFile(join(state.dir, `${id}.log.err`), 'utf8').catch(() => ''), 20)}\n`);
    }
  };

  it('only the lease holder acts; after SIGKILL the other replica takes over without duplicates', async () => {
    try {
      await leaderTakeover();
    } catch (err) {
      await dumpLogs();
      throw err;
    }
  }, 300_000);

  async function leaderTakeover(): Promise<void> {
    await commitVms(git, [bareVm('seed', { runStrategy: 'Halted' })].map((v) => ({ ...v, metadata: { ...v.metadata, namespace: NS } })), 'seed');
    start('replica-a');
    const first = await until('a leader', holder, 60_000);
    start('replica-b');
    expect(first).toBe('replica-a');
    const follower = 'replica-b';
    await until('follower waiting', async () => (await logOf(follower)).includes('virtops controller started'), 60_000);

    await commitVms(git, [bareVm('seed', { runStrategy: 'Halted' }), ...NAMES.map((n) => bareVm(n))].map((v) => ({ ...v, metadata: { ...v.metadata, namespace: NS } })), 'four VMs');
    // Mid-reconcile: as soon as the leader created its first VMI.
    await until('a first VMI', async () => (await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS)).length > 0, 60_000, 20);
    procs.get('replica-a')!.kill('SIGKILL');
    expect(await logOf(follower)).not.toMatch(/became leader|created VMI/);

    await until('replica-b leads', async () => (await holder()) === 'replica-b', 60_000);
    for (const n of NAMES) await until(`${n} Running`, async () => (await getVm(ids.admin, NS, n))?.status?.printableStatus === 'Running', 120_000);
    const vmis = await listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
    expect(vmis.map((v) => v.metadata?.name).sort()).toEqual([...NAMES].sort());
    for (const n of NAMES) expect((await listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, `vm.kubevirt.io/name=${n}`)).length).toBe(1);
    expect(await logOf(follower)).toMatch(/became leader/);

    // The restarted replica-a is now the follower and does not act. A waiting candidate
    // logs nothing, so the signal is the lease: once replica-a2 campaigns (it reads the
    // lease right after starting, then every 600 ms), wait until the leader has renewed
    // the lease later than one whole lease duration after that. The lease never expired
    // meanwhile, so replica-a2 has had its chances to take it and must have declined.
    start('replica-a2');
    await until('replica-a2 started', async () => (await logOf('replica-a2')).includes('virtops controller started'), 60_000);
    const campaigning = Date.now();
    await until('a lease renewal one lease duration after replica-a2 started', async () => {
      const renewed = (await lease())?.spec?.renewTime;
      return renewed !== undefined && new Date(renewed).getTime() >= campaigning + LEASE_DURATION_MS;
    }, 30_000);
    expect(await holder()).toBe('replica-b');
    expect(await logOf('replica-a2')).not.toMatch(/became leader/);
  }
});
