/**
 * VirtualMachinePools on a single host: a revision's pools become VMs (and launcher Pods) as
 * if they were in git, before the revision is planned, so everything downstream (plan,
 * prune, overrides, node ports, the reconcile) treats them as any VM. The expansion itself is
 * api/pool.ts's expandPool, the one the cluster's pool controller calls.
 *
 * What the pool owns now is read from the previously applied revision (its pool VMs carry
 * the pool's owner reference), so a scale-out keeps the existing VMs and adds the lowest free
 * indices, and a scale-in removes the ones the sort policy picks; the VMs that leave are
 * pruned (instance stopped, domain and disks removed) like any VM that left git.
 */
import { isInstancetypeObject } from '../../api/instancetype.js';
import type { VirtualMachine } from '../../api/kubevirt.js';
import { type VirtualMachinePool, type VirtualMachinePoolStatus, controllingPool, expandPool, isPool, ownedByPool, poolStatus } from '../../api/pool.js';
import { renderLauncherPod } from '../../synth/launcher-pod.js';
import type { KubeObject } from '../core/types.js';

const isVmObject = (m: KubeObject): boolean => m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine';
const nsOf = (m: { metadata: { namespace?: string } }): string => (m.metadata.namespace as string | undefined) ?? 'default';

/**
 * Pure: `manifests` plus, for each pool in them, the VMs it wants now and their launcher Pods
 * (rendered with the default launcher options; a VM sized by an instancetype of the revision
 * gets a Pod sized by it). `previous` is the applied revision's manifests (with the pool VMs
 * this function added to it then). A VM in git with a pool VM's name keeps the name: the
 * pool takes another index, as KubeVirt's pool skips names in use.
 */
export function withPoolVms(manifests: readonly KubeObject[], previous: readonly KubeObject[]): KubeObject[] {
  const pools = manifests.filter(isPool) as unknown as VirtualMachinePool[];
  if (pools.length === 0) return [...manifests];
  const gitVms = manifests.filter(isVmObject);
  const taken = new Map<string, Set<string>>();
  for (const vm of gitVms) {
    const set = taken.get(nsOf(vm)) ?? new Set<string>();
    set.add(vm.metadata.name as string);
    taken.set(nsOf(vm), set);
  }
  const previousPoolVms = previous.filter((m) => isVmObject(m) && controllingPool(m as unknown as VirtualMachine) !== undefined) as unknown as VirtualMachine[];
  const instancetypes = manifests.filter(isInstancetypeObject);
  const out: KubeObject[] = [...manifests];
  for (const pool of [...pools].sort((a, b) => `${nsOf(a)}/${a.metadata.name}`.localeCompare(`${nsOf(b)}/${b.metadata.name}`))) {
    const ns = nsOf(pool);
    const names = taken.get(ns) ?? new Set<string>();
    taken.set(ns, names);
    const owned = previousPoolVms
      .filter((vm) => nsOf(vm) === ns && ownedByPool(vm, pool) && !names.has(vm.metadata.name!))
      .map((vm) => ({ name: vm.metadata.name! }));
    const { vms } = expandPool(pool, { owned, taken: names });
    for (const vm of vms) {
      names.add(vm.metadata.name!);
      out.push(vm as unknown as KubeObject, renderLauncherPod(vm, {}, instancetypes) as unknown as KubeObject);
    }
  }
  return out;
}

export interface PoolView {
  namespace: string;
  name: string;
  /** spec.replicas (default 1). */
  desired: number;
  paused: boolean;
  status: VirtualMachinePoolStatus;
  /** The pool's VMs, by index. */
  vms: string[];
}

/** Pure: each pool of the applied manifests with its status, from whether each of its VMs is Ready. */
export function poolViews(applied: readonly KubeObject[], isReady: (namespace: string, name: string) => boolean): PoolView[] {
  const vms = applied.filter(isVmObject) as unknown as VirtualMachine[];
  return (applied.filter(isPool) as unknown as VirtualMachinePool[]).map((pool) => {
    const ns = nsOf(pool);
    const owned = vms.filter((vm) => nsOf(vm) === ns && ownedByPool(vm, pool)).map((vm) => vm.metadata.name!);
    return {
      namespace: ns,
      name: pool.metadata.name!,
      desired: pool.spec.replicas ?? 1,
      paused: pool.spec.paused === true,
      status: poolStatus(pool, owned.map((name) => ({ name, ready: isReady(ns, name) }))),
      vms: owned,
    };
  }).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}
