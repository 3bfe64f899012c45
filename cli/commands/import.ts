import type { Command } from 'commander';

// Placeholder until the 'import' command lands; replaced by its owner.
export function registerImport(program: Command): void {
  program.command('import').description('(not implemented yet)').action(() => {
    throw new Error("'import' is not implemented yet");
  });
}
