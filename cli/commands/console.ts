import { createConnection } from 'node:net';
import type { Command } from 'commander';
import { addConnectionOptions, apiCall, parseVmName, resolveTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import type { VmView } from '../../reconciler/standalone/backend.js';

/** Ctrl-] (0x1d), as in telnet and virsh console. */
const DETACH = 0x1d;

/**
 * `virtops console NAME`: attach to the VM's serial console (a unix socket QEMU serves on
 * this host). Raw terminal; Ctrl-] detaches. Without a TTY, stdin is forwarded as is.
 */
export function registerConsole(program: Command): void {
  addConnectionOptions(
    program
      .command('console')
      .description('attach to the serial console of a VM on this host (detach with Ctrl-])')
      .argument('<name>', 'NAME or NAMESPACE/NAME')
      .option('-n, --namespace <ns>', 'namespace', 'default')
  )
    .action(async (name: string, opts: { namespace?: string } & ConnectionOptions) => {
      const [ns, n] = parseVmName(name, opts.namespace);
      const v = await apiCall<VmView>(await resolveTarget(opts), 'GET', `/api/v1/vms/${ns}/${n}`);
      if (!v.instance) throw new Error(`VM ${ns}/${n} has no running instance (status ${v.status?.printableStatus ?? 'Unknown'}): start it with virtops start ${n}`);
      const path = v.instance.console;
      await new Promise<void>((resolve, reject) => {
        const sock = createConnection(path);
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
        sock.once('connect', () => {
          process.stderr.write(`Connected to ${v.instance!.domain} (serial console). Escape character is ^]\r\n`);
          if (tty) stdin.setRawMode(true);
          stdin.on('data', onInput);
          stdin.resume();
        });
        sock.on('data', (b) => process.stdout.write(b));
        sock.once('error', (err) => {
          restore();
          reject(new Error(`cannot attach to ${path}: ${err.message} (is the domain running? see virtops describe vm ${n})`));
        });
        sock.once('close', () => {
          restore();
          resolve();
        });
      });
    });
}
