/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does:
 * a candidate takes the lease when it is free or expired, the leader renews it every
 * `renewMs`, and every write is a replace at the read resourceVersion, so two candidates
 * racing for an expired lease cannot both win (one gets a 409). A leader that cannot renew
 * before `leaseDurationMs` has passed since its last renewal stops leading (and the
 * process exits, so it never acts on a lease it may have lost).
 *
 * `decideLease` is the pure part: given the lease as read and the clock, what to write.
 */
import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage, type KubeClient } from './kube.js';

/** The controller's leader-election Lease (synth/install.ts grants exactly this name). */
export const CONTROLLER_LEASE = 'virtops-controller';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewMs?: number;
  retryMs?: number;
}

export type LeaseDecision =
  | { action: 'create'; lease: V1Lease }
  | { action: 'update'; lease: V1Lease; acquiring: boolean }
  | { action: 'wait'; holder: string; expiresAt: number };

/** Pure: what a candidate does with the lease it just read. */
export function decideLease(current: V1Lease | undefined, opts: Required<Pick<LeaderOptions, 'namespace' | 'name' | 'identity' | 'leaseDurationMs'>>, now: number): LeaseDecision {
  const durationSeconds = Math.max(1, Math.round(opts.leaseDurationMs / 1000));
  const nowTime = new Date(now);
  if (!current) {
    return {
      action: 'create',
      lease: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: opts.name, namespace: opts.namespace },
        spec: { holderIdentity: opts.identity, leaseDurationSeconds: durationSeconds, acquireTime: nowTime, renewTime: nowTime, leaseTransitions: 0 },
      },
    };
  }
  const spec = current.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
  const expiresAt = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
  const mine = holder === opts.identity;
  if (!mine && holder !== '' && expiresAt > now) return { action: 'wait', holder, expiresAt };
  const lease: V1Lease = {
    ...current,
    spec: {
      ...spec,
      holderIdentity: opts.identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: nowTime,
      ...(mine ? {} : { acquireTime: nowTime, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
    },
  };
  return { action: 'update', lease, acquiring: !mine };
}

export class LeaderElector {
  private stopped = false;
  private leading = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly leaseDurationMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderOptions,
    private readonly log: Logger,
    private readonly callbacks: { onStartedLeading: () => void; onStoppedLeading: () => void },
  ) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewMs = opts.renewMs ?? Math.floor(this.leaseDurationMs / 3);
    this.retryMs = opts.retryMs ?? Math.max(500, Math.floor(this.leaseDurationMs / 5));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops campaigning; a leader releases the lease (holder cleared) so a successor need not wait. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const current = await this.client.readLease(this.opts.namespace, this.opts.name);
      if (current?.spec?.holderIdentity === this.opts.identity) {
        await this.client.updateLease({ ...current, spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1 } });
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'releasing the leader lease failed; it expires on its own');
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    let ok = false;
    try {
      const current = await this.client.readLease(this.opts.namespace, this.opts.name);
      const d = decideLease(current, { ...this.opts, leaseDurationMs: this.leaseDurationMs }, now);
      if (d.action === 'wait') {
        if (this.leading) this.lose(`lease taken by ${d.holder}`);
        this.schedule(Math.min(this.retryMs, Math.max(50, d.expiresAt - now)));
        return;
      }
      const written = d.action === 'create' ? await this.client.createLease(d.lease) : await this.client.updateLease(d.lease);
      ok = written !== undefined;
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'leader lease read/write failed');
    }
    if (this.stopped) return;
    if (ok) {
      this.lastRenew = now;
      if (!this.leading) {
        this.leading = true;
        this.log.info({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity }, 'became leader');
        this.callbacks.onStartedLeading();
      }
      this.schedule(this.renewMs);
      return;
    }
    if (this.leading && Date.now() - this.lastRenew >= this.leaseDurationMs - this.renewMs) {
      // Renewing failed long enough that another candidate may take over: stop acting now.
      this.lose('could not renew the lease in time');
      return;
    }
    this.schedule(this.leading ? Math.min(this.retryMs, this.renewMs) : this.retryMs);
  }

  private lose(why: string): void {
    this.leading = false;
    this.stopped = true;
    this.log.error({ why }, 'lost leadership');
    this.callbacks.onStoppedLeading();
  }
}
