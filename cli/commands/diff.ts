import type { Command } from 'commander';
import { addAccessOptions, formatDiff, openAccess, type AccessOptions } from '../vm-access.js';

/**
 * `virtops diff`: single host, what the next reconcile of `up` would do; cluster (like
 * `flux diff`), what applying the dist/ of this directory would change and what the controller
 * would then do to each VM.
 */
export function registerDiff(program: Command): void {
  addAccessOptions(
    program
      .command('diff')
      .description('show what the next reconcile would change (single host: up\'s next pass; cluster: ./dist against the API server, then per-VM actions)')
      .option('--path <dir>', 'cluster mode: the manifest directory to compare (relative to this directory)', 'dist')
      .option('-o, --output <format>', 'json'),
  ).action(async (opts: { output?: string; path: string } & AccessOptions) => {
    if (opts.output !== undefined && opts.output !== 'json') throw new Error(`-o "${opts.output}": only json is supported`);
    const access = await openAccess(opts);
    const d = await access.diff({ path: opts.path });
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
    process.stdout.write(`${formatDiff(d, access.mode)}\n`);
  });
}
