import type { Command } from 'commander';
import { IMPERATIVE_ACTIONS } from '../../reconciler/core/types.js';
import { addAccessOptions, openAccess, type AccessOptions } from '../vm-access.js';

const WHAT: Record<string, string> = {
  start: 'start the VM (a Halted VM runs as Always until the override is cleared)',
  stop: 'stop the VM, whatever its runStrategy says',
  restart: 'stop the running instance and start a new one (applies a pending RestartRequired change)',
  pause: 'pause the running instance',
  unpause: 'resume a paused instance',
};

/**
 * `virtops start|stop|restart|pause|unpause NAME`: imperative actions that do not fight git.
 * Each is recorded on the VM as a visible override (single host: in up's state; cluster: the
 * VM's `virtops.io/override` annotation) and cleared by the next commit that changes the VM.
 */
export function registerVmActions(program: Command): void {
  for (const action of IMPERATIVE_ACTIONS) {
    addAccessOptions(
      program
        .command(action)
        .description(`${WHAT[action]}; recorded as an override until the next commit that changes the VM`)
        .argument('<name>', 'NAME or NAMESPACE/NAME')
        .option('-n, --namespace <ns>', 'namespace (single host default: default; cluster default: the context\'s)'),
    ).action(async (name: string, opts: { namespace?: string } & AccessOptions) => {
      process.stdout.write(`${await (await openAccess(opts)).act(opts.namespace, name, action)}\n`);
    });
  }
}
