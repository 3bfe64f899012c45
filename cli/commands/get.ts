import type { Command } from 'commander';
import { addConnectionOptions, apiCall, resolveTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import { formatVmTable, refusalNotice, type VmList } from '../../reconciler/standalone/format.js';

const VM_RESOURCES = ['vms', 'vm', 'virtualmachines', 'virtualmachine'];

/** `virtops get vms [-o wide|json|yaml]`: the VMs of the running `virtops up`, kubectl-style. */
export function registerGet(program: Command): void {
  addConnectionOptions(
    program
      .command('get')
      .description('list VMs managed by the running virtops up (NAME AGE STATUS READY REVISION)')
      .argument('<resource>', 'vms')
      .option('-o, --output <format>', 'wide | json | yaml')
      .option('-n, --namespace <ns>', 'only this namespace (default: all, shown when not "default")')
  )
    .action(async (resource: string, opts: { output?: string; namespace?: string } & ConnectionOptions) => {
      if (!VM_RESOURCES.includes(resource)) throw new Error(`resource "${resource}" is not supported: use virtops get vms`);
      if (opts.output !== undefined && !['wide', 'json', 'yaml'].includes(opts.output)) {
        throw new Error(`-o "${opts.output}" is not one of wide, json, yaml: e.g. virtops get vms -o wide`);
      }
      const list = await apiCall<VmList>(await resolveTarget(opts), 'GET', '/api/v1/vms');
      if (opts.namespace) list.vms = list.vms.filter((v) => v.namespace === opts.namespace);
      if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      if (opts.output === 'yaml') return void process.stdout.write((await import('yaml')).stringify(list));
      const notice = refusalNotice(list);
      if (notice) process.stderr.write(`${notice}\n`);
      if (list.vms.length === 0) {
        process.stderr.write(`No VMs${list.revision ? ` in revision ${list.revision.slice(0, 12)}` : ' (no revision applied yet)'}.\n`);
        return;
      }
      const allNamespaces = list.vms.some((v) => v.namespace !== 'default');
      process.stdout.write(`${formatVmTable(list, { wide: opts.output === 'wide', now: Date.now(), allNamespaces })}\n`);
    });
}
