/**
 * The launcher's command socket, published for the node agent beside a real kubelet (the
 * compute container's env names the directory: synth's NODE_SOCKET_ENV, set only in Pods
 * rendered with `libvirtDaemon: 'pod'`).
 *
 * The directory is the Pod's own `<node socket dir>/<pod uid>/` on the node (a hostPath
 * mounted with `subPathExpr: $(POD_UID)`), so the agent finds each launcher by Pod uid, as
 * virt-handler finds virt-launcher through its share dir. The monitor serves a relay there
 * rather than the launcher socket itself, because the launcher admits only peers it can name
 * (SO_PEERCRED, launcher/server/peer.ts): the agent runs outside the Pod's pid namespace,
 * where the kernel reports its pid as 0. The relay runs in the Pod (same uid and pid
 * namespace as the launcher), so the launcher accepts it.
 *
 * Who can reach the relay: the socket is 0600 in a 0700 directory owned by the Pod's uid
 * (the node agent chowns it to the Pod's runAsUser before the monitor may write there; see
 * reconciler/cluster/kubelet-launchers.ts), and only this Pod mounts that directory: root on
 * the node (the agent) and this Pod's own processes. The agent, for its part, checks that the
 * process listening on it is in this Pod's cgroup before it talks to it.
 */
import { access, chmod, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/** The env var that names the directory (unset: nothing is published). */
export const NODE_SOCKET_ENV = 'VIRTOPS_NODE_SOCKET_DIR';
/** The socket's name in that directory. */
export const NODE_SOCKET_NAME = 'launcher-sock';

export interface NodeSocketRelay {
  readonly path: string;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `dir` is writable (the node agent hands it over), then serves `<dir>/<name>`,
 * relaying each connection to `target` (the launcher's socket). Returns undefined when
 * `signal` aborts first.
 */
export async function publishNodeSocket(opts: {
  dir: string;
  name: string;
  target: string;
  signal: AbortSignal;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}): Promise<NodeSocketRelay | undefined> {
  const path = join(opts.dir, opts.name);
  let waitedLogged = false;
  for (;;) {
    if (opts.signal.aborted) return undefined;
    if (await access(opts.dir, constants.W_OK).then(() => true, () => false)) break;
    if (!waitedLogged) {
      opts.log.info({ dir: opts.dir }, 'waiting for the node agent to hand over this Pod\'s socket directory');
      waitedLogged = true;
    }
    await sleep(500);
  }
  await rm(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const out = connect(opts.target);
    sockets.add(inbound).add(out);
    inbound.pipe(out).pipe(inbound);
    const drop = () => {
      inbound.destroy();
      out.destroy();
      sockets.delete(inbound);
      sockets.delete(out);
    };
    inbound.on('error', drop).on('close', drop);
    out.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  opts.log.info({ socket: path, target: opts.target }, 'launcher socket published for the node agent');
  return {
    path,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(path, { force: true });
    },
  };
}
