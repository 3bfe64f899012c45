/**
 * VirtualMachinePool in cluster mode on the real control plane (etcd, kube-apiserver,
 * scheduler, controller-manager), real git and real launchers on libvirt's test:///default
 * driver; controller and agent run as synth/install.ts's service accounts with exactly its
 * RBAC. git holds the CRDs and one pool (no VMs): the controller applies the pool, its pool
 * controller creates `<pool>-0..2` owned by it, all Running, status readyReplicas 3; scaled to
 * 5 in git, -3 and -4 are added (the first three keep their VMIs); scaled to 2, the highest
 * indices are deleted with their VMIs and launcher Pods, status replicas 2.
 */
import { randomBytes } from 'node:crypto';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import type { VirtualMachinePool } from '../../../api/pool.js';
import { ALL_CRDS, renderCrd } from '../../../synth/crds.js';
import type { AgentHandle, ControllerHandle } from '../../../reconciler/cluster/run.js';
import { clusterTestenv } from './testenv-fixture.js';
import {
  deleteNode, deleteVmsAndWait, getVm, gitFixture, identities, listJson, startAgent, startController, stopLaunchersUnder, tempDir, until, type Env, type Identities,
} from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-it-${suffix}`;
const NODE = `vo-it-node-${suffix}`;
const POOL = 'web';
const LABEL = { 'virtops.io/pool': POOL };

function pool(replicas: number): VirtualMachinePool {
  return {
    apiVersion: 'pool.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePool',
    metadata: { name: POOL, namespace: NS },
    spec: {
      replicas,
      selector: { matchLabels: LABEL },
      virtualMachineTemplate: {
        metadata: { labels: LABEL },
        spec: {
          runStrategy: 'Always',
          template: { metadata: { labels: LABEL }, spec: { domain: { devices: {}, memory: { guest: '64Mi' } }, terminationGracePeriodSeconds: 0 } },
        },
      },
    },
  };
}

const dist = (replicas: number): Record<string, string> => ({
  'crds.k8s.yaml': ALL_CRDS.map((c) => YAML.stringify(renderCrd(c))).join('---\n'),
  'pool.k8s.yaml': YAML.stringify(pool(replicas)),
});

describe.skipIf(!env)('cluster mode: VirtualMachinePool (real control plane, test:///default launchers)', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let controller: ControllerHandle;
  let agent: AgentHandle;

  const names = (n: number) => Array.from({ length: n }, (_, i) => `${POOL}-${i}`);
  const vmis = async () => listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
  const running = async (list: string[]) => {
    const vms = await Promise.all(list.map((n) => getVm(ids.admin, NS, n)));
    return vms.every((v) => v?.status?.printableStatus === 'Running') ? vms.map((v) => v!) : undefined;
  };
  const poolStatus = async () => (await listJson<VirtualMachinePool>(ids.admin, 'pool.kubevirt.io/v1beta1', 'VirtualMachinePool', NS)).find((p) => p.metadata?.name === POOL)?.status;
  const vmiUids = async (list: string[]) => {
    const all = await vmis();
    return list.map((n) => all.find((v) => v.metadata.name === n)?.metadata.uid);
  };

  beforeAll(async () => {
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-it-agent-');
    agent = await startAgent(ids, NODE, state.dir, 'test:///default');
    controller = await startController(ids, git, NS);
  }, 120_000);

  afterAll(async () => {
    if (ids) {
      // The pool first (its VMs go with it, by owner reference), then whatever VM is left.
      await ids.admin.delete({ apiVersion: 'pool.kubevirt.io/v1beta1', kind: 'VirtualMachinePool', metadata: { name: POOL, namespace: NS } }).catch(() => undefined);
      await deleteVmsAndWait(ids.admin, NS);
    }
    await controller?.stop();
    await agent?.stop();
    if (state) await stopLaunchersUnder(state.dir);
    if (ids) {
      await deleteNode(ids.admin, NODE);
      await ids.admin.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }).catch(() => undefined);
    }
    await git?.cleanup();
    await state?.cleanup();
  }, 120_000);

  it('3 replicas from git: <pool>-0..2 owned by the pool, Running; status readyReplicas 3', async () => {
    await git.commitDist(dist(3), 'pool web: 3 replicas');
    const vms = await until('3 pool VMs Running', () => running(names(3)), 120_000);
    const uid = (await listJson<VirtualMachinePool>(ids.admin, 'pool.kubevirt.io/v1beta1', 'VirtualMachinePool', NS))[0]?.metadata.uid;
    for (const vm of vms) {
      expect(vm.metadata.ownerReferences).toEqual([{ apiVersion: 'pool.kubevirt.io/v1beta1', kind: 'VirtualMachinePool', name: POOL, uid, controller: true, blockOwnerDeletion: true }]);
      expect(vm.metadata.labels).toEqual(LABEL);
    }
    const status = await until('status readyReplicas 3', async () => {
      const s = await poolStatus();
      return s?.readyReplicas === 3 ? s : undefined;
    }, 60_000);
    expect(status).toMatchObject({ replicas: 3, readyReplicas: 3, labelSelector: `virtops.io/pool=${POOL}` });
  }, 240_000);

  it('5 replicas: -3 and -4 added, the first three keep their VMIs', async () => {
    const before = await vmiUids(names(3));
    await git.commitDist(dist(5), 'pool web: 5 replicas');
    await until('5 pool VMs Running', () => running(names(5)), 120_000);
    expect(await vmiUids(names(3))).toEqual(before);
    await until('status readyReplicas 5', async () => (await poolStatus())?.readyReplicas === 5, 60_000);
  }, 240_000);

  it('2 replicas: the highest indices deleted with their VMIs and launcher Pods', async () => {
    const before = await vmiUids(names(2));
    await git.commitDist(dist(2), 'pool web: 2 replicas');
    await until('-2, -3, -4 gone', async () => (await Promise.all(['2', '3', '4'].map((i) => getVm(ids.admin, NS, `${POOL}-${i}`)))).every((v) => v === undefined), 120_000);
    await until('their VMIs and launcher Pods gone', async () => {
      const left = (await vmis()).map((v) => v.metadata.name).sort();
      const pods = await listJson(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher');
      return left.join() === names(2).join() && pods.length === 2;
    }, 120_000);
    expect(await running(names(2))).toBeDefined();
    expect(await vmiUids(names(2))).toEqual(before);
    await until('status replicas 2', async () => {
      const s = await poolStatus();
      return s?.replicas === 2 && s.readyReplicas === 2;
    }, 60_000);
  }, 240_000);
});
