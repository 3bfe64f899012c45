/** Prometheus metrics of `virtops up` (served on /metrics). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ReconcilerMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'virtops_reconcile_total', help: 'VM reconciles, by result', labelNames: ['result'] as const, registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: 'virtops_reconcile_duration_seconds',
    help: 'Time to reconcile one VM (includes launcher start and domain start)',
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly actions = new Counter({ name: 'virtops_actions_total', help: 'Actions carried out, by type and result', labelNames: ['action', 'result'] as const, registers: [this.registry] });
  readonly pushToRunning = new Histogram({
    name: 'virtops_push_to_running_seconds',
    help: 'From the source yielding a revision that creates or changes a VM to that VM running it',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly sourceChecks = new Counter({ name: 'virtops_source_checks_total', help: 'Source checks, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly vmsByStatus = new Gauge({ name: 'virtops_vms', help: 'VMs by printableStatus', labelNames: ['status'] as const, registers: [this.registry] });
  readonly revisionInfo = new Gauge({ name: 'virtops_applied_revision_info', help: 'The applied revision (value 1)', labelNames: ['sha'] as const, registers: [this.registry] });
  readonly refused = new Gauge({ name: 'virtops_revision_refused', help: '1 while the newest commit is refused and an older revision keeps running', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'virtops_process_' });
  }

  setStatusCounts(counts: Record<string, number>): void {
    this.vmsByStatus.reset();
    for (const [status, n] of Object.entries(counts)) this.vmsByStatus.set({ status }, n);
  }

  setRevision(sha: string | undefined): void {
    this.revisionInfo.reset();
    if (sha) this.revisionInfo.set({ sha }, 1);
  }
}
