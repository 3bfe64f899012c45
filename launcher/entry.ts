/**
 * Lean entry of the launcher bundle (`node cli/bin.js launcher-monitor|launcher ...`): only
 * the launcher commands, not the whole CLI (saves startup time and memory per VM).
 */
import { Command } from 'commander';
import { registerLauncher } from '../cli/commands/launcher.js';

const program = new Command('virtops').configureOutput({ outputError: (s, write) => write(s) });
registerLauncher(program);
// Not awaited at top level: the bundle is one CommonJS file (scripts/build-bundles.mjs). A
// rejection is unhandled and ends the process with its stack, as a top-level await did.
void program.parseAsync(process.argv);
