/**
 * `virtops domain-xml FILE` — print the libvirt domain XML a node would define for a
 * VirtualMachine or VirtualMachineInstance manifest (YAML or JSON, one or more
 * documents): the XML the launcher `virtops up --state-dir DIR` starts for it would define
 * (paths from the VM's launcher Pod and the launcher's own volume plan). Warnings and notes
 * (values decided at run time) go to stderr; invalid input exits 1 naming the field and the fix.
 * A VM naming an instancetype or preference is expanded first (as KubeVirt does when it
 * starts) against the ones in FILE and in any `-f FILE`; an unresolvable reference is an error.
 * The work is in domain-xml-run.ts, loaded only when the command runs.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { Emulation } from '../../launcher/convert/context.js';
import type { DomainXmlOptions } from './domain-xml-run.js';

/** `virtops up`'s default --state-dir (host-config.ts is light: registering the command loads no reconciler wiring). */
import { DEFAULT_STATE_DIR } from '../../reconciler/agent/host-config.js';

export function registerDomainXml(program: Command): void {
  program
    .command('domain-xml')
    .description('print the libvirt domain XML for a VirtualMachine or VirtualMachineInstance manifest')
    .argument('<file>', 'YAML or JSON manifest (multi-document files allowed, e.g. dist/*.k8s.yaml)')
    .option('--emulation <kvm|tcg>', 'accelerator: kvm → <domain type="kvm">, tcg → <domain type="qemu">', parseEmulation, 'kvm')
    .option('--state-dir <dir>', 'the virtops up --state-dir the paths are laid out under', DEFAULT_STATE_DIR)
    .option('--uid <uid>', 'instance uid to lay the ephemeral volumes out for (default: the manifest\'s, else a placeholder)')
    .option('--name <name>', 'which VM/VMI to convert when the file holds several')
    .option('-f, --file <file>', 'more manifests with the instancetypes and preferences the VM names (repeatable)', collect, [])
    .action(async (file: string, opts: DomainXmlOptions) => {
      // The converter, YAML parser and XML builder load only when this command runs.
      const { runDomainXml } = await import('./domain-xml-run.js');
      runDomainXml(file, opts);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseEmulation(value: string): Emulation {
  if (value !== 'kvm' && value !== 'tcg') throw new InvalidArgumentError('use kvm or tcg');
  return value;
}
