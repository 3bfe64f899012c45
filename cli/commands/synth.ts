import type { Command } from 'commander';

// Placeholder until the 'synth' command lands; replaced by its owner.
export function registerSynth(program: Command): void {
  program.command('synth').description('(not implemented yet)').action(() => {
    throw new Error("'synth' is not implemented yet");
  });
}
