/**
 * `virtops expand FILE [VM]` — print a VirtualMachine with its instancetype and preference
 * expanded into its template, as `virtctl expand` does: YAML (or `-o json`), the matchers
 * removed so the output stands alone. The instancetypes and preferences come from FILE and
 * any `-f FILE`; an unresolvable reference or a conflict exits 1 naming the field and the fix.
 * The work is in expand-run.ts, loaded only when the command runs.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { ExpandOptions } from './expand-run.js';

export function registerExpand(program: Command): void {
  program
    .command('expand')
    .description('print a VirtualMachine with its instancetype and preference applied (as virtctl expand)')
    .argument('<file>', 'YAML or JSON manifests holding the VM (and its instancetype/preference, e.g. dist/*.k8s.yaml)')
    .argument('[vm]', 'which VM, when the file holds several')
    .option('-f, --file <file>', 'more manifests with instancetypes and preferences (repeatable)', collect, [])
    .option('-o, --output <format>', 'yaml or json', parseOutput, 'yaml')
    .action(async (file: string, vm: string | undefined, opts: ExpandOptions) => {
      const { runExpand } = await import('./expand-run.js');
      runExpand(file, vm, opts);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseOutput(value: string): 'yaml' | 'json' {
  if (value !== 'yaml' && value !== 'json') throw new InvalidArgumentError('use yaml or json');
  return value;
}
