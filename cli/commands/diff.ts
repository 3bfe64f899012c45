import type { Command } from 'commander';
import { addConnectionOptions, apiCall, resolveTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import type { DiffEntry } from '../../reconciler/standalone/backend.js';

/** `virtops diff`: what the next reconcile would do (revision changes, then per-VM actions). */
export function registerDiff(program: Command): void {
  addConnectionOptions(
    program
      .command('diff')
      .description('show what the next reconcile of the running virtops up would do')
      .option('-o, --output <format>', 'json')
  )
    .action(async (opts: { output?: string } & ConnectionOptions) => {
      if (opts.output !== undefined && opts.output !== 'json') throw new Error(`-o "${opts.output}": only json is supported`);
      const d = await apiCall<{ applied?: string; next?: string; entries: DiffEntry[] }>(await resolveTarget(opts), 'GET', '/api/v1/diff');
      if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
      const out: string[] = [`applied: ${d.applied ?? '(none)'}`];
      if (d.next && d.next !== d.applied) out.push(`next:    ${d.next}`);
      let changes = 0;
      for (const e of d.entries) {
        const acts = e.actions.filter((a) => a.type !== 'none');
        const note = e.actions.find((a) => a.type === 'none');
        if (e.change === 'unchanged' && acts.length === 0) continue;
        changes++;
        const sign = e.change === 'create' ? '+' : e.change === 'prune' ? '-' : '~';
        out.push(`${sign} ${e.vm} (${e.change})`);
        for (const a of acts) out.push(`    ${a.type}: ${a.reason}`);
        if (acts.length === 0 && note) out.push(`    no action: ${note.reason}`);
      }
      if (changes === 0) out.push('no changes: the host matches the revision');
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
