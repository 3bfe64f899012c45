import type { Command } from 'commander';
import { addConnectionOptions, apiCall, parseVmName, resolveTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import type { VmView } from '../../reconciler/standalone/backend.js';
import { formatDescribe, type VmList } from '../../reconciler/standalone/format.js';

/** `virtops describe vm NAME`: conditions, events, revision, domain, console. */
export function registerDescribe(program: Command): void {
  addConnectionOptions(
    program
      .command('describe')
      .description('show one VM of the running virtops up: conditions, events, revision, instance and domain')
      .argument('<resource>', 'vm')
      .argument('<name>', 'NAME or NAMESPACE/NAME')
      .option('-n, --namespace <ns>', 'namespace', 'default')
  )
    .action(async (resource: string, name: string, opts: { namespace?: string } & ConnectionOptions) => {
      if (!['vm', 'vms', 'virtualmachine', 'virtualmachines'].includes(resource)) throw new Error(`resource "${resource}" is not supported: use virtops describe vm NAME`);
      const [ns, n] = parseVmName(name, opts.namespace);
      const v = await apiCall<VmView & { appliedRevision?: string | null; refused?: VmList['refused'] }>(await resolveTarget(opts), 'GET', `/api/v1/vms/${ns}/${n}`);
      process.stdout.write(`${formatDescribe(v, Date.now())}\n`);
    });
}
