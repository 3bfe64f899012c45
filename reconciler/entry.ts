/**
 * Entry point of the reconciler bundle (scripts/build-bundles.mjs) that `cli/bin.js` runs
 * for the long-lived commands `virtops up`, `virtops controller` and `virtops agent`: the
 * same command definitions as the full CLI (cli/commands/*.ts), without every other
 * command's modules (the DSL importer, cdk8s, ...) or tsx's loader.
 */
import { Command } from 'commander';
import { registerUp } from '../cli/commands/up.js';
import { registerController } from '../cli/commands/controller.js';
import { registerAgent } from '../cli/commands/agent.js';

const program = new Command('virtops').showHelpAfterError().configureOutput({ outputError: (s, write) => write(s) });
registerUp(program);
registerController(program);
registerAgent(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`virtops: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
