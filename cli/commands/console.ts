import type { Command } from 'commander';
import { addAccessOptions, openAccess, type AccessOptions } from '../vm-access.js';

/** Ctrl-] (0x1d), as in telnet and virsh console. */
const DETACH = 0x1d;

/**
 * `virtops console NAME`: attach to the VM's serial console. Single host: the unix socket
 * QEMU serves on this host. Cluster: through the API server's `nodes/<node>/proxy` to the
 * node agent, with the user's credentials (RBAC `get nodes/proxy`). Raw terminal; Ctrl-]
 * detaches. Without a TTY, stdin is forwarded as is and the command ends when the
 * connection does.
 */
export function registerConsole(program: Command): void {
  addAccessOptions(
    program
      .command('console')
      .description('attach to the serial console of a VM (single host: its socket; cluster: through the API server to the node agent); detach with Ctrl-]')
      .argument('<name>', 'NAME or NAMESPACE/NAME')
      .option('-n, --namespace <ns>', 'namespace (single host default: default; cluster default: the context\'s)'),
  ).action(async (name: string, opts: { namespace?: string } & AccessOptions) => {
    const { socket: sock, head, label } = await (await openAccess(opts)).console(opts.namespace, name);
    await new Promise<void>((resolve, reject) => {
      const stdin = process.stdin;
      const tty = stdin.isTTY === true;
      const restore = (): void => {
        if (tty) stdin.setRawMode(false);
        stdin.pause();
        stdin.off('data', onInput);
      };
      const onInput = (chunk: Buffer): void => {
        const i = chunk.indexOf(DETACH);
        if (tty && i >= 0) {
          if (i > 0) sock.write(chunk.subarray(0, i));
          restore();
          sock.end();
          process.stderr.write('\r\n[detached]\r\n');
          resolve();
          return;
        }
        sock.write(chunk);
      };
      process.stderr.write(`Connected to ${label} (serial console). Escape character is ^]\r\n`);
      if (head?.length) process.stdout.write(head);
      if (tty) stdin.setRawMode(true);
      stdin.on('data', onInput);
      stdin.resume();
      sock.on('data', (b: Buffer) => process.stdout.write(b));
      sock.once('error', (err: Error) => {
        restore();
        reject(new Error(`console of ${label}: ${err.message}`));
      });
      sock.once('close', () => {
        restore();
        resolve();
      });
    });
  });
}
