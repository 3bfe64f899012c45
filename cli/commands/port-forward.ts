import { createConnection, createServer, type Socket } from 'node:net';
import type { Command } from 'commander';
import { untilStopped } from '../stop-signal.js';
import { hostPortFor, spliceSockets, type LauncherPortsInfo } from '../../launcher/host-ports.js';
import { callLauncher } from '../../launcher/server/client.js';
import type { VmView } from '../../reconciler/standalone/backend.js';
import { addConnectionOptions, apiCall, parseVmName, resolveTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import { selectMode } from '../vm-access.js';

/**
 * `virtops port-forward VM [LOCAL:]REMOTE`: 127.0.0.1:LOCAL → the guest's REMOTE port.
 *
 * The guest's declared pod ports are already on 127.0.0.1 at host ports its launcher chose
 * (launcher/host-ports.ts); this command finds that port and relays to it. Finding it keeps
 * the API's access rules: the VM is looked up through `virtops up`'s API (its socket or
 * token), then its launcher socket is asked (0600 and peer-checked: the launcher's uid or
 * root, as `virtops console` reads the console socket). `--launcher-socket` asks a launcher
 * directly (no `up`: tests, or a launcher run by hand). The host port is looked up again
 * for each connection, so a restarted VM (new host ports) keeps working.
 */

export { hostPortFor };

export interface ForwardTarget {
  /** What a message names: "default/web". */
  label: string;
  launcherSocket: string;
}

/** `[LOCAL:]REMOTE` → ports; LOCAL 0 (`:REMOTE`) means any free port. Pure. */
export function parsePortSpec(spec: string): { local: number; remote: number } {
  const m = /^(?:(\d*):)?(\d+)$/.exec(spec);
  const port = (text: string, what: string, allowZero: boolean): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw new Error(`${what} port "${text}" is not a port number: use 1-65535`);
    return n;
  };
  if (!m) throw new Error(`"${spec}" is not [LOCAL:]REMOTE: e.g. 8080 (the same port locally), 2222:22, or :22 (any free local port)`);
  const remote = port(m[2]!, 'remote', false);
  const local = m[1] === undefined ? remote : m[1] === '' ? 0 : port(m[1], 'local', true);
  return { local, remote };
}

/** Where the VM's launcher listens: `--launcher-socket`, else through `virtops up`'s API. */
export async function resolveForwardTarget(vm: string, opts: ConnectionOptions & { namespace?: string; launcherSocket?: string; kubeconfig?: string }): Promise<ForwardTarget> {
  const [ns, name] = parseVmName(vm, opts.namespace);
  const label = `${ns}/${name}`;
  if (opts.launcherSocket) return { label, launcherSocket: opts.launcherSocket };
  if (selectMode(opts, process.env).mode === 'cluster') {
    throw new Error('port-forward and ssh work on a single host (virtops up) for now; in cluster mode the guest is at its launcher Pod\'s IP on its declared ports');
  }
  const v = await apiCall<VmView>(await resolveTarget(opts), 'GET', `/api/v1/vms/${ns}/${name}`);
  if (!v.instance) throw new Error(`VM ${label} is not running (status ${v.status?.printableStatus ?? 'Unknown'}): start it with virtops start ${name}`);
  return { label, launcherSocket: v.instance.socket };
}

/** Asks the launcher for the current host port of guest port `remote`. */
export async function currentHostPort(t: ForwardTarget, remote: number): Promise<number> {
  const res = await callLauncher<LauncherPortsInfo & { error?: string }>(t.launcherSocket, 'GET', '/v1/info', undefined, 10_000).catch((err: Error) => {
    throw new Error(`cannot reach the launcher of VM ${t.label} at ${t.launcherSocket} (${err.message}): is the VM running? (virtops describe vm ${t.label})`);
  });
  if (res.status !== 200) throw new Error(`the launcher of VM ${t.label} answered ${res.status}: ${res.body?.error ?? ''}`);
  return hostPortFor(res.body, remote, t.label);
}

/** Connects to the guest port; rejects with a message naming the VM and port. */
export async function connectGuest(t: ForwardTarget, remote: number): Promise<Socket> {
  const host = await currentHostPort(t, remote);
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port: host });
    s.once('connect', () => resolve(s));
    s.once('error', (err) => reject(new Error(`port ${remote} of VM ${t.label} (127.0.0.1:${host}): ${err.message}`)));
  });
}

/** Relays one client connection; tells the user when the guest side closed at once (nothing listening). */
function relay(client: Socket, t: ForwardTarget, remote: number, say: (line: string) => void): void {
  client.pause();
  connectGuest(t, remote).then(
    (guest) => {
      let received = 0;
      guest.on('data', (b: Buffer) => (received += b.length));
      guest.once('close', () => {
        if (received === 0) say(`connection to port ${remote} of VM ${t.label} closed with no data from the guest: is anything listening on port ${remote} in the guest?`);
      });
      spliceSockets(client, guest);
    },
    (err: Error) => {
      say(err.message);
      client.destroy();
    },
  );
}

export function registerPortForward(program: Command): void {
  addConnectionOptions(
    program
      .command('port-forward')
      .description('forward 127.0.0.1:LOCAL to a port of a VM (one its pod interface declares in ports); single host')
      .argument('<vm>', 'NAME or NAMESPACE/NAME')
      .argument('<ports>', '[LOCAL:]REMOTE: 8080, 2222:22, or :22 (any free local port)')
      .option('-n, --namespace <ns>', 'namespace', 'default')
      .option('--address <ip>', 'local address to listen on', '127.0.0.1')
      .option('--stdio', 'relay one connection over stdin/stdout instead of listening (ssh ProxyCommand)')
      .option('--launcher-socket <path>', 'ask this launcher socket directly instead of virtops up (root or the launcher\'s user)'),
  ).action(async (vm: string, spec: string, opts: ConnectionOptions & { namespace?: string; address: string; stdio?: boolean; launcherSocket?: string }) => {
    const { local, remote } = parsePortSpec(spec);
    const target = await resolveForwardTarget(vm, opts);
    const say = (line: string): void => void process.stderr.write(`${line}\n`);
    if (opts.stdio) {
      const guest = await connectGuest(target, remote);
      await new Promise<void>((resolve) => {
        process.stdin.pipe(guest);
        guest.pipe(process.stdout);
        guest.once('close', () => resolve());
        guest.once('error', () => resolve());
      });
      process.stdin.destroy();
      return;
    }
    await currentHostPort(target, remote); // fail now, not at the first connection
    const server = createServer((client) => relay(client, target, remote, say));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${opts.address}:${local}: ${err.code === 'EADDRINUSE' ? 'in use; pick another LOCAL port, or :' + remote + ' for any free one' : err.message}`)));
      server.listen(local, opts.address, () => resolve());
    });
    const bound = (server.address() as { port: number }).port;
    process.stdout.write(`Forwarding from ${opts.address}:${bound} -> ${target.label}:${remote}\n`);
    await untilStopped(async () => void server.close());
  });
}
