/**
 * The cluster's VirtualMachinePool controller (KubeVirt's virt-controller pool loop, reduced
 * to what virtops carries out): for each pool, the VMs it owns (controller owner reference to
 * the pool's uid, selected by its selector) are compared with what api/pool.ts expandPool
 * wants — the one expansion the single host runs too — and the difference is written:
 *
 * - scale-out: the missing `<pool>-<n>` VMs are created (lowest free indices);
 * - scale-in: the VMs the sort policy picks are deleted (the VM controller stops their VMIs;
 *   a VM's deletion takes its instance with it, as for any VM);
 * - template change: each kept VM whose labels, annotations or spec differ from the template's
 *   rendering is updated in place (server-side apply, field manager virtops); the VM
 *   controller then shows RestartRequired or applies it, as for a git edit of a VM;
 * - status: replicas, readyReplicas (owned VMs whose Ready condition is True), labelSelector.
 *
 * The VMs are not in git's inventory: git's pool owns them, and the API server's garbage
 * collector deletes them with the pool (blockOwnerDeletion owner references).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualMachine } from '../../api/kubevirt.js';
import { POOL_API_VERSION, POOL_KIND, type VirtualMachinePool, type VirtualMachinePoolStatus, controllingPool, expandPool, ownedByPool, poolStatus } from '../../api/pool.js';
import { canonicalJson } from '../core/index.js';
import { RateLimitedQueue, type ReconcileResult } from '../queue.js';
import type { Informer } from './informer.js';
import { errorMessage, type KubeClient } from './kube.js';

export interface PoolControllerOptions {
  log: Logger;
  /** Periodic pass over every pool. @default 30 s */
  resyncMs?: number;
}

const poolKey = (ns: string, name: string): string => `${ns}/${name}`;
const nsOf = (o: { metadata?: { namespace?: string } }): string => o.metadata?.namespace ?? 'default';

/** Pure: what of a VM the pool renders (compared to decide on an update). */
export function renderedPart(vm: VirtualMachine): string {
  return canonicalJson({ labels: vm.metadata.labels ?? {}, annotations: vm.metadata.annotations ?? {}, spec: vm.spec });
}

export class PoolController {
  private readonly pools: Informer<VirtualMachinePool & KubernetesObject>;
  private readonly vms: Informer<VirtualMachine & KubernetesObject>;
  private readonly queue: RateLimitedQueue;
  private started: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly client: KubeClient, private readonly opts: PoolControllerOptions) {
    const log = opts.log;
    this.queue = new RateLimitedQueue((k) => this.sync(k), {
      concurrency: 4,
      onError: (k, err, retryInMs) => log.error({ pool: k, err: errorMessage(err), retryInMs }, 'pool sync failed; retrying with backoff'),
    });
    this.pools = client.informer(
      { path: `/apis/${POOL_API_VERSION}/virtualmachinepools`, apiVersion: POOL_API_VERSION, kind: POOL_KIND },
      (_type, pool) => this.queue.add(poolKey(nsOf(pool), pool.metadata?.name ?? '')),
      log,
    );
    this.vms = client.informer(
      { path: '/apis/kubevirt.io/v1/virtualmachines', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine' },
      (_type, vm) => {
        const pool = controllingPool(vm);
        if (pool) this.queue.add(poolKey(nsOf(vm), pool));
      },
      log,
    );
  }

  /** Starts the informers (idempotent); resolves once both listed. */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.opts.log.info('pool controller starting');
      await Promise.all([this.pools.start(), this.vms.start()]);
      for (const p of this.pools.list()) this.queue.add(poolKey(nsOf(p), p.metadata.name ?? ''));
      this.timer = setInterval(() => {
        for (const p of this.pools.list()) this.queue.add(poolKey(nsOf(p), p.metadata.name ?? ''));
      }, this.opts.resyncMs ?? 30_000);
      this.timer.unref();
    })();
    return this.started;
  }

  get isStarted(): boolean {
    return this.started !== undefined;
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.queue.stop();
    await Promise.all([this.pools.stop(), this.vms.stop()]);
  }

  private async sync(key: string): Promise<ReconcileResult> {
    const [ns, name] = key.split('/') as [string, string];
    const pool = this.pools.get(name, ns);
    // A deleted pool: the garbage collector removes its VMs (owner references).
    if (!pool || pool.metadata.deletionTimestamp) return {};
    const log = this.opts.log.child({ pool: key });
    const inNs = this.vms.list(ns);
    const owned = inNs.filter((vm) => ownedByPool(vm, pool) && !vm.metadata.deletionTimestamp);
    const terminating = inNs.filter((vm) => ownedByPool(vm, pool) && vm.metadata.deletionTimestamp);
    const taken = new Set(inNs.filter((vm) => !owned.includes(vm)).map((vm) => vm.metadata.name!));
    const want = expandPool(pool, {
      owned: owned.map((vm) => ({ name: vm.metadata.name!, ...(vm.metadata.creationTimestamp ? { createdAt: Date.parse(vm.metadata.creationTimestamp) } : {}) })),
      taken,
    });
    // KubeVirt counts VMs already being deleted against a scale-in: do not delete more.
    const remove = want.remove.slice(0, Math.max(0, want.remove.length - terminating.length));
    for (const vmName of remove) {
      const vm = owned.find((v) => v.metadata.name === vmName)!;
      await this.client.delete(vm, { ...(vm.metadata.uid ? { preconditionUid: vm.metadata.uid } : {}) });
      log.info({ vm: vmName }, 'scale-in: deleted VM');
      void this.client.event(pool, 'Normal', 'SuccessfulDelete', `Deleted VM ${ns}/${vmName} from pool`, 'virtops-pool-controller').catch(() => undefined);
    }
    for (const vm of want.vms) {
      const name = vm.metadata.name!;
      const current = owned.find((v) => v.metadata.name === name);
      if (!current) {
        // The pool's own uid in the owner reference (the API server's, not the derived one).
        vm.metadata.ownerReferences = [{ apiVersion: POOL_API_VERSION, kind: POOL_KIND, name: pool.metadata.name!, uid: pool.metadata.uid!, controller: true, blockOwnerDeletion: true }];
        const created = await this.client.create(vm as unknown as KubernetesObject);
        if (created) {
          log.info({ vm: name }, 'scale-out: created VM');
          void this.client.event(pool, 'Normal', 'SuccessfulCreate', `Created VM ${ns}/${name}`, 'virtops-pool-controller').catch(() => undefined);
        }
      } else if (renderedPart(current) !== renderedPart(vm)) {
        vm.metadata.ownerReferences = current.metadata.ownerReferences;
        await this.client.apply(vm as unknown as KubernetesObject);
        log.info({ vm: name }, 'template changed: updated VM');
      }
    }
    await this.writeStatus(pool, owned.filter((vm) => !remove.includes(vm.metadata.name!)));
    return {};
  }

  private async writeStatus(pool: VirtualMachinePool, owned: readonly VirtualMachine[]): Promise<void> {
    const next: VirtualMachinePoolStatus = poolStatus(pool, owned.map((vm) => ({
      name: vm.metadata.name!,
      ready: vm.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    })));
    const cur = pool.status ?? {};
    if (cur.replicas === next.replicas && cur.readyReplicas === next.readyReplicas && cur.labelSelector === next.labelSelector) return;
    await this.client.patchCustomStatus('virtualmachinepools', nsOf(pool), pool.metadata.name!, next);
  }
}
