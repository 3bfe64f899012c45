/**
 * The cluster's PoolController against the FakeKubeClient (an in-memory API double, see
 * test/helpers/fake-kube.ts): scale-out creates `<pool>-<n>` with the pool's owner
 * reference, a name another VM holds is skipped, scale-in deletes the highest indices, a
 * template change updates the kept VMs, status follows the VMs' Ready condition, and the
 * pool's deletion takes its VMs (owner references) without the controller recreating them.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { VirtualMachinePool } from '../../../api/pool.js';
import { PoolController } from '../../../reconciler/cluster/pool-controller.js';
import { FakeKubeClient } from '../../helpers/fake-kube.js';

const log = pino({ level: 'silent' });
const PV = 'pool.kubevirt.io/v1beta1';

function pool(replicas: number, memory = '64Mi'): VirtualMachinePool {
  return {
    apiVersion: PV,
    kind: 'VirtualMachinePool',
    metadata: { name: 'web', namespace: 'lab' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      virtualMachineTemplate: {
        metadata: { labels: { app: 'web' } },
        spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {}, memory: { guest: memory } } } } },
      },
    },
  };
}

let controller: PoolController | undefined;
afterEach(async () => {
  await controller?.stop();
  controller = undefined;
});

async function setup(p: VirtualMachinePool, others: VirtualMachine[] = []) {
  const kube = new FakeKubeClient();
  for (const vm of others) kube.seed(vm);
  const created = kube.seed<VirtualMachinePool>(p);
  controller = new PoolController(kube, { log, resyncMs: 60_000 });
  await controller.start();
  await controller.idle();
  const vms = () => kube.list<VirtualMachine>('kubevirt.io/v1', 'VirtualMachine', 'lab').map((v) => v.metadata.name).sort();
  const settle = async () => {
    await new Promise((r) => setTimeout(r, 20));
    await controller!.idle();
  };
  return { kube, uid: created.metadata.uid!, vms, settle };
}

describe('PoolController', () => {
  it('creates <pool>-0..n-1 owned by the pool; status replicas', async () => {
    const { kube, uid, vms, settle } = await setup(pool(3));
    await settle();
    expect(vms()).toEqual(['web-0', 'web-1', 'web-2']);
    const vm = kube.get<VirtualMachine>('kubevirt.io/v1', 'VirtualMachine', 'web-1', 'lab')!;
    expect(vm.metadata.ownerReferences).toEqual([{ apiVersion: PV, kind: 'VirtualMachinePool', name: 'web', uid, controller: true, blockOwnerDeletion: true }]);
    expect(vm.metadata.labels).toEqual({ app: 'web' });
    expect(kube.get<VirtualMachinePool>(PV, 'VirtualMachinePool', 'web', 'lab')!.status).toEqual({ replicas: 3, readyReplicas: 0, labelSelector: 'app=web' });
    expect(kube.events.filter((e) => e.reason === 'SuccessfulCreate')).toHaveLength(3);
  });

  it('skips a name another VM holds', async () => {
    const other: VirtualMachine = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'web-1', namespace: 'lab' }, spec: { template: { spec: { domain: { devices: {} } } } } };
    const { vms, settle } = await setup(pool(2), [other]);
    await settle();
    expect(vms()).toEqual(['web-0', 'web-1', 'web-2']);
  });

  it('scales in from the highest index, updates kept VMs on a template change, counts Ready', async () => {
    const { kube, vms, settle } = await setup(pool(4));
    await settle();
    kube.modify<VirtualMachinePool>(PV, 'VirtualMachinePool', 'web', 'lab', (p) => {
      p.spec.replicas = 2;
      p.spec.virtualMachineTemplate.spec.template.spec.domain.memory = { guest: '128Mi' };
    });
    await settle();
    expect(vms()).toEqual(['web-0', 'web-1']);
    for (const n of ['web-0', 'web-1']) {
      expect(kube.get<VirtualMachine>('kubevirt.io/v1', 'VirtualMachine', n, 'lab')!.spec.template.spec.domain.memory).toEqual({ guest: '128Mi' });
    }
    kube.modify<VirtualMachine>('kubevirt.io/v1', 'VirtualMachine', 'web-0', 'lab', (vm) => {
      vm.status = { conditions: [{ type: 'Ready', status: 'True' }] };
    });
    await settle();
    expect(kube.get<VirtualMachinePool>(PV, 'VirtualMachinePool', 'web', 'lab')!.status).toEqual({ replicas: 2, readyReplicas: 1, labelSelector: 'app=web' });
  });

  it("the pool's deletion takes its VMs; none is recreated", async () => {
    const { kube, vms, settle } = await setup(pool(2));
    await settle();
    kube.remove(PV, 'VirtualMachinePool', 'web', 'lab');
    await settle();
    expect(vms()).toEqual([]);
  });
});
