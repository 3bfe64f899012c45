/**
 * Lean entry of the launcher bundle (`node cli/bin.js launcher-monitor|launcher ...`): only
 * the launcher commands, not the whole CLI (saves startup time and memory per VM).
 */
import { Command } from 'commander';
import { registerLauncher } from '../cli/commands/launcher.js';

const program = new Command('virtops').configureOutput({ outputError: (s, write) => write(s) });
registerLauncher(program);
await program.parseAsync(process.argv);
