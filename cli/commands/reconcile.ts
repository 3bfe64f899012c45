import type { Command } from 'commander';
import { durationFlag } from '../../reconciler/agent/duration-flag.js';
import { addAccessOptions, openAccess, type AccessOptions } from '../vm-access.js';

/**
 * `virtops reconcile`: sync now, like `flux reconcile`: the reconciler re-reads git, applies
 * the newest good revision and looks at every VM; waits until it has.
 */
export function registerReconcile(program: Command): void {
  addAccessOptions(
    program
      .command('reconcile')
      .description('sync now: re-read git, apply the newest good revision, look at every VM; waits until done')
      .option('--timeout <duration>', 'how long to wait for the reconciler', '2m'),
  ).action(async (opts: { timeout: string } & AccessOptions) => {
    const errors: string[] = [];
    const timeoutMs = durationFlag(opts.timeout, '--timeout', errors, { min: 1000 });
    if (timeoutMs === undefined) throw new Error(errors.join('; '));
    process.stdout.write(`${await (await openAccess(opts)).reconcile({ timeoutMs })}\n`);
  });
}
