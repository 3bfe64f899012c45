import type { Command } from 'commander';
import { addAccessOptions, openAccess, parseResource, type AccessOptions } from '../vm-access.js';

/** `virtops describe vm NAME`: status, conditions, override, instance, events (either mode). */
export function registerDescribe(program: Command): void {
  addAccessOptions(
    program
      .command('describe')
      .description('show one VM: status, conditions, override, revision, instance (domain or VMI, node, launcher) and events')
      .argument('<resource>', 'vm')
      .argument('<name>', 'NAME or NAMESPACE/NAME')
      .option('-n, --namespace <ns>', 'namespace (single host default: default; cluster default: the context\'s)')
      .option('-o, --output <format>', 'json | yaml: everything describe read, as data'),
  ).action(async (resource: string, name: string, opts: { namespace?: string; output?: string } & AccessOptions) => {
    parseResource(resource, ['vms'], 'virtops describe vm NAME');
    if (opts.output !== undefined && !['json', 'yaml'].includes(opts.output)) throw new Error(`-o "${opts.output}" is not one of json, yaml`);
    const d = await (await openAccess(opts)).describe(opts.namespace, name);
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(d.data, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write((await import('../../api/yaml-compat.js')).toYaml(d.data));
    process.stdout.write(`${d.text(Date.now())}\n`);
  });
}
