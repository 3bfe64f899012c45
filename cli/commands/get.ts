import type { Command } from 'commander';
import { addAccessOptions, openAccess, parseResource, type AccessOptions } from '../vm-access.js';

/**
 * `virtops get vms|vmis [-n NS | -A] [-o wide|json|yaml]`, kubectl-style, from the local
 * `virtops up` or (with a kubeconfig) the cluster, with KubeVirt's columns there.
 */
export function registerGet(program: Command): void {
  addAccessOptions(
    program
      .command('get')
      .description('list VMs (single host: NAME AGE STATUS READY REVISION; cluster: KubeVirt\'s columns) or VMIs (NAME AGE PHASE IP NODENAME READY; on a single host from each launcher, as root)')
      .argument('<resource>', 'vms | vmis (vm, vmi, virtualmachines, virtualmachineinstances)')
      .option('-o, --output <format>', 'wide | json | yaml')
      .option('-n, --namespace <ns>', 'only this namespace (single host default: all; cluster default: the context\'s)')
      .option('-A, --all-namespaces', 'every namespace (adds a NAMESPACE column)'),
  ).action(async (resource: string, opts: { output?: string; namespace?: string; allNamespaces?: boolean } & AccessOptions) => {
    const r = parseResource(resource, ['vms', 'vmis'], 'virtops get vms (or, in a cluster, virtops get vmis)');
    if (opts.output !== undefined && !['wide', 'json', 'yaml'].includes(opts.output)) {
      throw new Error(`-o "${opts.output}" is not one of wide, json, yaml: e.g. virtops get vms -o wide`);
    }
    if (opts.allNamespaces && opts.namespace) throw new Error('-A and -n exclude each other: pass one');
    const access = await openAccess(opts);
    const listing = await access.list(r, { ...(opts.namespace ? { namespace: opts.namespace } : {}), all: opts.allNamespaces === true });
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(listing.data, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write((await import('yaml')).stringify(listing.data));
    if (listing.notice) process.stderr.write(`${listing.notice}\n`);
    const text = listing.table({ wide: opts.output === 'wide', now: Date.now() });
    if (text === undefined) return void process.stderr.write(`${listing.empty}\n`);
    process.stdout.write(`${text}\n`);
  });
}
