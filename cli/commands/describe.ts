import type { Command } from 'commander';
import { apiCall, parseVmName, serverUrl } from '../../reconciler/standalone/client.js';
import type { VmView } from '../../reconciler/standalone/backend.js';
import { formatDescribe, type VmList } from '../../reconciler/standalone/format.js';

/** `virtops describe vm NAME`: conditions, events, revision, domain, console. */
export function registerDescribe(program: Command): void {
  program
    .command('describe')
    .description('show one VM of the running virtops up: conditions, events, revision, instance and domain')
    .argument('<resource>', 'vm')
    .argument('<name>', 'NAME or NAMESPACE/NAME')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--server <url>', 'virtops up API (default http://127.0.0.1:8686 or $VIRTOPS_SERVER)')
    .action(async (resource: string, name: string, opts: { namespace?: string; server?: string }) => {
      if (!['vm', 'vms', 'virtualmachine', 'virtualmachines'].includes(resource)) throw new Error(`resource "${resource}" is not supported: use virtops describe vm NAME`);
      const [ns, n] = parseVmName(name, opts.namespace);
      const v = await apiCall<VmView & { appliedRevision?: string | null; refused?: VmList['refused'] }>(serverUrl(opts.server), 'GET', `/api/v1/vms/${ns}/${n}`);
      process.stdout.write(`${formatDescribe(v, Date.now())}\n`);
    });
}
