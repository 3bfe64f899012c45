import type { Command } from 'commander';

// Placeholder until the 'init' command lands; replaced by its owner.
export function registerInit(program: Command): void {
  program.command('init').description('(not implemented yet)').action(() => {
    throw new Error("'init' is not implemented yet");
  });
}
