import type { Command } from 'commander';

// Placeholder until the 'domain-xml' command lands; replaced by its owner.
export function registerDomainXml(program: Command): void {
  program.command('domain-xml').description('(not implemented yet)').action(() => {
    throw new Error("'domain-xml' is not implemented yet");
  });
}
