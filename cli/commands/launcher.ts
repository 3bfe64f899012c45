import type { Command } from 'commander';

// Placeholder until the 'launcher' command lands; replaced by its owner.
export function registerLauncher(program: Command): void {
  program.command('launcher').description('(not implemented yet)').action(() => {
    throw new Error("'launcher' is not implemented yet");
  });
}
