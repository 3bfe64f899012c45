import type { Command } from 'commander';
import { IMPERATIVE_ACTIONS } from '../../reconciler/core/types.js';
import { addConnectionOptions, apiCall, parseVmName, resolveTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import type { VmView } from '../../reconciler/standalone/backend.js';

const WHAT: Record<string, string> = {
  start: 'start the VM (a Halted VM runs as Always until the override is cleared)',
  stop: 'stop the VM, whatever its runStrategy says',
  restart: 'stop the running instance and start a new one (applies a pending RestartRequired change)',
  pause: 'pause the running instance',
  unpause: 'resume a paused instance',
};

/**
 * `virtops start|stop|restart|pause|unpause NAME`: imperative actions that do not fight git.
 * Each is recorded on the VM as a visible override and cleared by the next commit that changes the VM.
 */
export function registerVmActions(program: Command): void {
  for (const action of IMPERATIVE_ACTIONS) {
    addConnectionOptions(
      program
        .command(action)
        .description(`${WHAT[action]}; recorded as an override until the next commit that changes the VM`)
        .argument('<name>', 'NAME or NAMESPACE/NAME')
        .option('-n, --namespace <ns>', 'namespace', 'default')
    )
      .action(async (name: string, opts: { namespace?: string } & ConnectionOptions) => {
        const [ns, n] = parseVmName(name, opts.namespace);
        const v = await apiCall<VmView>(await resolveTarget(opts), 'POST', `/api/v1/vms/${ns}/${n}/${action}`);
        process.stdout.write(`virtualmachine ${v.namespace}/${v.name}: ${action} requested (override; the next commit changing this VM clears it)\n`);
      });
  }
}
