/**
 * Cluster mode end to end on a real control plane (etcd, kube-apiserver, kube-scheduler,
 * kube-controller-manager with its garbage collector), real git and real launchers on
 * libvirt's test:///default driver (boot does not matter here; see boot.test.ts for a real
 * guest). The controller and the agent run as the service accounts of synth/install.ts,
 * bound to exactly the RBAC it renders: anything else they tried would fail these tests.
 */
import { randomBytes } from 'node:crypto';
import { AuthorizationV1Api, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { ResilientInformer } from '../../../reconciler/cluster/informer.js';
import type { AgentHandle, ControllerHandle } from '../../../reconciler/cluster/run.js';
import { bareVm } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';
import {
  commitVms, deleteNode, deleteVmsAndWait, stopLaunchersUnder, getVm, gitFixture, identities, listJson, processesWith, startAgent, startController, tempDir, until, type Env, type Identities,
} from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-life-${suffix}`;
const NODE = `vo-node-${suffix}`;

function vmIn(name: string, opts: Parameters<typeof bareVm>[1] & { annotations?: Record<string, string> } = {}): VirtualMachine {
  const v = bareVm(name, opts);
  v.metadata.namespace = NS;
  if (opts.annotations) v.metadata.annotations = opts.annotations;
  return v;
}

const GIT_ANNOTATION = { 'example.com/owner': 'git' };
const base = () => [vmIn('a', { annotations: GIT_ANNOTATION }), vmIn('big', { memory: '100Gi' })];

describe.skipIf(!env)('cluster mode on a real control plane (test:///default launchers)', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let controller: ControllerHandle;
  let agent: AgentHandle;

  const vmis = () => listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
  const pods = (vm?: string) => listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, vm ? `vm.kubevirt.io/name=${vm}` : 'kubevirt.io=virt-launcher');
  const status = async (name: string) => (await getVm(ids.admin, NS, name))?.status;

  beforeAll(async () => {
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-agent-');
    agent = await startAgent(ids, NODE, state.dir, 'test:///default');
    controller = await startController(ids, git, NS);
  }, 120_000);

  afterAll(async () => {
    // Let the agent finalise what is left (it removes the VMI finalizers), then tear down.
    if (ids) await deleteVmsAndWait(ids.admin, NS);
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

  it('a push → VM Running (VMI Running on the node, launcher Pod Running); a VM larger than the node → ErrorUnschedulable with the scheduler\'s reason', async () => {
    await commitVms(git, base(), 'two VMs');
    const running = await until('VM a Running', async () => ((await status('a'))?.printableStatus === 'Running' ? status('a') : undefined), 90_000);
    expect(running).toMatchObject({ ready: true, created: true, runStrategy: 'Always' });
    expect(running?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const vm = (await getVm(ids.admin, NS, 'a'))!;
    expect(running?.observedGeneration).toBe(vm.metadata.generation);

    const [vmi] = (await vmis()).filter((x) => x.metadata?.name === 'a');
    expect(vmi?.status).toMatchObject({ phase: 'Running', nodeName: NODE });
    expect(vmi?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachine', name: 'a', uid: vm.metadata.uid, controller: true });
    expect(vmi?.metadata?.finalizers).toContain('virtops.io/vmi-cleanup');
    const [pod] = await pods('a');
    expect(pod?.spec?.nodeName).toBe(NODE);
    expect(pod?.status?.phase).toBe('Running');
    expect(pod?.metadata?.labels?.['kubevirt.io/created-by']).toBe(vmi?.metadata?.uid);
    expect(pod?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachineInstance', uid: vmi?.metadata?.uid, controller: true });
    expect(await processesWith(vmi!.metadata!.uid!)).toBeGreaterThan(0);

    const big = await until('VM big ErrorUnschedulable', async () => ((await status('big'))?.printableStatus === 'ErrorUnschedulable' ? status('big') : undefined), 60_000);
    expect(big?.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/Insufficient memory/);
    // The Node the agent registered carries the host's capacity.
    const node = await ids.admin.read<KubernetesObject & { status?: { capacity?: Record<string, string> } }>({ apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } });
    expect(node?.status?.capacity?.['memory']).toMatch(/Ki$/);
  }, 150_000);

  it('a steady VM costs no API writes (no no-op status updates)', async () => {
    const clients = [ids.controller.client, ids.agent.client]; // the HttpKubeClients the handles were given (they count writes)
    const aboutA = (w: { name: string }) => w.name === 'a' || w.name.startsWith('virt-launcher-a-');
    const vmc = controller.controller;
    const ag = agent.agent;
    const bothIdle = () => Promise.all([vmc.idle(), ag.idle()]);
    // Steady: every informer of the controller and the agent holds the API server's current
    // version of VM a, its VMI and its launcher Pod (so every event about them has been
    // queued) and both queues have worked them off; still so afterwards (nothing they did
    // changed a again).
    const caughtUp = async () => {
      const [vm, [vmi], [pod]] = await Promise.all([getVm(ids.admin, NS, 'a'), vmis().then((l) => l.filter((x) => x.metadata?.name === 'a')), pods('a')]);
      if (!vm || !vmi || !pod) return false;
      const podName = pod.metadata!.name!;
      type Versioned = { metadata?: { resourceVersion?: string } };
      const same = (cached: Versioned | undefined, live: Versioned) => cached?.metadata?.resourceVersion === live.metadata?.resourceVersion;
      return same(vmc.vms.get('a', NS), vm) && same(vmc.vmis.get('a', NS), vmi) && same(vmc.pods.get(podName, NS), pod)
        && same(ag.vmis.get('a', NS), vmi) && same(ag.pods.get(podName, NS), pod);
    };
    await until('VM a steady (informers caught up, queues idle)', async () => {
      if (!(await caughtUp())) return false;
      await bothIdle();
      return caughtUp();
    }, 10_000);
    // Each client's log is append-only: remember where each one stood (a concatenation of
    // both would shift the agent's old entries past a count taken before).
    const marks = clients.map((c) => c.writes.length);
    const since = () => clients.flatMap((c, i) => c.writes.slice(marks[i])).filter(aboutA);
    // Three re-apply intervals (2 s) ...
    await until('three re-applies of VM a', () => since().filter((w) => w.verb === 'apply').length >= 3, 15_000);
    // ... then a resync pass of each (what their resync timers do: every VM, every launcher
    // Pod of the node, queued), worked off: both have looked at a steady VM a and decided.
    vmc.resync();
    for (const p of ag.pods.list()) ag.queue.add(`${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`);
    await bothIdle();
    // Re-applying git (server-side apply of VM a) is the only write allowed; it did happen.
    expect(since().filter((w) => w.verb !== 'apply')).toEqual([]);
    expect(since().filter((w) => w.verb === 'apply').length).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('a `kubectl edit` of a git-owned field is reverted at the next apply; a field another manager owns is left alone', async () => {
    await ids.admin.rest.call('PATCH', `/apis/kubevirt.io/v1/namespaces/${NS}/virtualmachines/a?fieldManager=kubectl-edit`,
      { metadata: { annotations: { 'example.com/owner': 'human' }, labels: { team: 'blue' } } }, 'merge');
    expect((await getVm(ids.admin, NS, 'a'))?.metadata.annotations?.['example.com/owner']).toBe('human');
    const vm = await until('annotation reverted', async () => {
      const v = await getVm(ids.admin, NS, 'a');
      return v?.metadata.annotations?.['example.com/owner'] === 'git' ? v : undefined;
    }, 30_000);
    expect(vm.metadata.labels?.['team']).toBe('blue');
    expect(vm.status?.printableStatus).toBe('Running');
  }, 60_000);

  it('kube-apiserver restarted mid-reconcile: everything converges, one VMI and one launcher Pod per VM', async () => {
    const names = ['c1', 'c2', 'c3'];
    await commitVms(git, [...base(), ...names.map((n) => vmIn(n))], 'three more');
    await until('a first new VMI', async () => (await vmis()).some((v) => names.includes(v.metadata?.name ?? '')), 60_000, 50);
    const informers = [controller.controller.vms, controller.controller.vmis, controller.controller.pods, agent.agent.pods, agent.agent.vmis].map((i) => {
      if (!(i instanceof ResilientInformer)) throw new Error('expected the controller and agent informers to be ResilientInformers');
      return i;
    });
    const restarts = informers.map((i) => i.restarts);
    await e.stopComponent('kube-apiserver');
    // Down until both have noticed: every informer of the controller and the agent lost its
    // watch and retried against the stopped server (the second restart follows a failed one).
    await until('the controller and agent to notice the API server is gone', () => informers.every((i, k) => i.restarts >= restarts[k]! + 2), 30_000, 50);
    await e.startComponent('kube-apiserver');
    for (const n of names) await until(`${n} Running`, async () => (await status(n))?.printableStatus === 'Running', 120_000);
    for (const n of names) expect((await pods(n)).length).toBe(1);
    expect((await vmis()).map((v) => v.metadata?.name).sort()).toEqual(['a', 'big', ...names].sort());
  }, 200_000);

  it('runStrategy Halted in git → VMI, Pod and launcher (with its domain) gone, VM Stopped and healthy', async () => {
    const [before] = (await vmis()).filter((v) => v.metadata?.name === 'c1');
    await commitVms(git, [...base(), vmIn('c1', { runStrategy: 'Halted' }), vmIn('c2'), vmIn('c3')], 'halt c1');
    const s = await until('c1 Stopped', async () => ((await status('c1'))?.printableStatus === 'Stopped' ? status('c1') : undefined), 60_000);
    expect(s).toMatchObject({ ready: false, created: false });
    expect(s?.conditions?.find((c) => c.type === 'Failure')).toBeUndefined();
    await until('c1 VMI and Pod gone', async () => !(await vmis()).some((v) => v.metadata?.name === 'c1') && (await pods('c1')).length === 0, 60_000);
    expect(await processesWith(before!.metadata!.uid!)).toBe(0);
  }, 120_000);

  it('a VM removed from git → VM, VMI, Pod and launcher gone; other objects untouched', async () => {
    const [before] = (await vmis()).filter((v) => v.metadata?.name === 'c2');
    // Something virtops never applied, of the same kind: must survive the prune.
    await ids.admin.apply({ ...vmIn('foreign', { runStrategy: 'Halted' }) } as unknown as KubernetesObject);
    await commitVms(git, [...base(), vmIn('c1', { runStrategy: 'Halted' }), vmIn('c3')], 'remove c2');
    await until('c2 pruned', async () => (await getVm(ids.admin, NS, 'c2')) === undefined, 60_000);
    await until('c2 VMI and Pod gone', async () => !(await vmis()).some((v) => v.metadata?.name === 'c2') && (await pods('c2')).length === 0, 60_000);
    expect(await processesWith(before!.metadata!.uid!)).toBe(0);
    expect(await getVm(ids.admin, NS, 'foreign')).toBeDefined();
    expect((await status('c3'))?.printableStatus).toBe('Running');
  }, 120_000);

  it('RBAC: the controller and agent service accounts can do what they need and nothing else', async () => {
    const can = async (who: 'controller' | 'agent', verb: string, resource: string, opts: { group?: string; namespace?: string; subresource?: string; name?: string } = {}) => {
      const api = ids[who].client.kc.makeApiClient(AuthorizationV1Api);
      const r = await api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource, group: opts.group ?? '', ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.subresource ? { subresource: opts.subresource } : {}), ...(opts.name ? { name: opts.name } : {}) } } } });
      return r.status?.allowed === true;
    };
    const kv = { group: 'kubevirt.io', namespace: NS };
    // Controller: VMs, VMIs, launcher Pods, VM status, events, its lease and inventory.
    expect(await can('controller', 'create', 'virtualmachineinstances', kv)).toBe(true);
    expect(await can('controller', 'patch', 'virtualmachines', { ...kv, subresource: 'status' })).toBe(true);
    expect(await can('controller', 'create', 'pods', { namespace: NS })).toBe(true);
    const lease = { group: 'coordination.k8s.io', namespace: NS };
    expect(await can('controller', 'update', 'leases', { ...lease, name: 'virtops-controller' })).toBe(true);
    expect(await can('controller', 'update', 'leases', { ...lease, name: 'someone-elses' })).toBe(false);
    expect(await can('controller', 'patch', 'configmaps', { namespace: NS, name: 'virtops-inventory' })).toBe(true);
    expect(await can('controller', 'get', 'configmaps', { namespace: NS, name: 'kube-root-ca.crt' })).toBe(false);
    const crd = { group: 'apiextensions.k8s.io' };
    expect(await can('controller', 'patch', 'customresourcedefinitions', { ...crd, name: 'virtualmachines.kubevirt.io' })).toBe(true);
    expect(await can('controller', 'patch', 'customresourcedefinitions', { ...crd, name: 'widgets.example.com' })).toBe(false);
    expect(await can('controller', 'delete', 'customresourcedefinitions', { ...crd, name: 'virtualmachines.kubevirt.io' })).toBe(false);
    expect(await can('controller', 'get', 'secrets', { namespace: NS })).toBe(false);
    expect(await can('controller', 'create', 'nodes')).toBe(false);
    expect(await can('controller', 'patch', 'pods', { namespace: NS, subresource: 'status' })).toBe(false);
    expect(await can('controller', 'patch', 'configmaps', { namespace: 'default' })).toBe(false);
    expect(await can('controller', 'update', 'leases', { group: 'coordination.k8s.io', namespace: 'kube-system' })).toBe(false);
    // Agent: VMI status and finalizers, its Node and node lease, launcher Pod status.
    expect(await can('agent', 'patch', 'virtualmachineinstances', { ...kv, subresource: 'status' })).toBe(true);
    expect(await can('agent', 'patch', 'pods', { namespace: NS, subresource: 'status' })).toBe(true);
    expect(await can('agent', 'update', 'leases', { group: 'coordination.k8s.io', namespace: 'kube-node-lease' })).toBe(true);
    expect(await can('agent', 'create', 'virtualmachineinstances', kv)).toBe(false);
    expect(await can('agent', 'delete', 'virtualmachines', kv)).toBe(false);
    expect(await can('agent', 'create', 'pods', { namespace: NS })).toBe(false);
    expect(await can('agent', 'get', 'secrets', { namespace: NS })).toBe(false);
    expect(await can('agent', 'patch', 'virtualmachines', { ...kv, subresource: 'status' })).toBe(false);
  }, 30_000);
});
