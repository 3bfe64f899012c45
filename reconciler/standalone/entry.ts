/**
 * A lean entry point for `virtops up`: the same command as
 * `virtops up`, without loading every other CLI command's modules (the DSL importer,
 * cdk8s, ...), which costs ~115 MiB of RSS in a long-running process.
 *
 *   node --import tsx reconciler/standalone/entry.ts up --repo ... (same flags as virtops up)
 */
import { Command } from 'commander';
import { registerUp } from '../../cli/commands/up.js';

const program = new Command('virtops').showHelpAfterError();
registerUp(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`virtops: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
