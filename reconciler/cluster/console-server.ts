/**
 * The node agent's console endpoint (virt-handler's console, reached the kubelet way): an
 * HTTPS server on the Node's kubelet port that answers only clients whose certificate the
 * `--client-ca-file` CA signed, i.e. the API server's kubelet client certificate
 * (kube-apiserver `--kubelet-client-certificate`). Users never reach it directly: they go
 * through `nodes/<node>/proxy/...`, where the API server authenticates and authorizes them
 * (RBAC `get nodes/proxy`) and then connects here with its own certificate.
 *
 *   GET /virtops/v1/console/<namespace>/<name>   Connection: Upgrade, Upgrade: virtops-console.v1
 *       → 101, then the raw bytes of the VMI's serial console (QEMU's unix socket), both ways
 *   GET /healthz → ok
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { CONSOLE_PROTOCOL, parseConsolePath } from './requests.js';

export interface ConsoleServerOptions {
  /** Address to listen on (the Node's InternalIP must reach it), e.g. 0.0.0.0. */
  address: string;
  /** 0 picks a free port. */
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** CA of the API server's kubelet client certificate: the only accepted clients. */
  clientCaFile: string;
  /** The serial console socket of a VMI running on this node. */
  lookup(namespace: string, name: string): string | undefined;
  log: Logger;
}

export interface ConsoleServer {
  port: number;
  close(): Promise<void>;
}

function refuse(socket: Duplex, status: number, text: string, message: string): void {
  const body = JSON.stringify({ kind: 'Status', status: 'Failure', message, code: status });
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export async function startConsoleServer(o: ConsoleServerOptions): Promise<ConsoleServer> {
  const [cert, key, ca] = await Promise.all([o.tlsCertFile, o.tlsKeyFile, o.clientCaFile].map((f) => readFile(f)));
  // requestCert + rejectUnauthorized: the TLS handshake itself refuses anyone else.
  const server: Server = createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `no endpoint ${req.method} ${req.url}: the console needs an upgrade to ${CONSOLE_PROTOCOL}` }));
  });
  const open = new Set<Socket | Duplex>();
  server.on('upgrade', (req, socket: Duplex) => {
    const who = (req.socket as TLSSocket).getPeerCertificate?.()?.subject?.CN ?? '?';
    const target = parseConsolePath(req.url ?? '');
    if (!target) return refuse(socket, 404, 'Not Found', `no console at ${req.url}; use /virtops/v1/console/<namespace>/<name>`);
    if ((req.headers['upgrade'] ?? '').toLowerCase() !== CONSOLE_PROTOCOL) return refuse(socket, 400, 'Bad Request', `upgrade to ${CONSOLE_PROTOCOL} only`);
    const path = o.lookup(target.namespace, target.name);
    if (!path) return refuse(socket, 404, 'Not Found', `VMI ${target.namespace}/${target.name} has no running launcher on this node`);
    const serial = connect(path);
    open.add(socket);
    open.add(serial);
    serial.once('connect', () => {
      o.log.info({ vmi: `${target.namespace}/${target.name}`, client: who }, 'console attached');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${CONSOLE_PROTOCOL}\r\nconnection: Upgrade\r\n\r\n`);
      serial.pipe(socket);
      socket.pipe(serial);
    });
    serial.once('error', (err) => {
      if (!serial.readyState || serial.connecting) refuse(socket, 502, 'Bad Gateway', `serial console ${path}: ${err.message}`);
      else socket.destroy();
    });
    const done = () => {
      serial.destroy();
      socket.destroy();
      open.delete(socket);
      open.delete(serial);
    };
    serial.once('close', done);
    socket.once('close', done);
    socket.once('error', done);
  });
  server.on('tlsClientError', (err) => o.log.debug({ err: err.message }, 'console client refused (TLS)'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  o.log.info({ address: o.address, port }, 'console server listening (API server clients only)');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
