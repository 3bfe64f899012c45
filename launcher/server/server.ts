/**
 * The launcher's command socket: JSON over HTTP on a unix socket (see README.md here for
 * the endpoints). Owner-only (0600); a stale socket file from a dead launcher is removed
 * before listening, and the file is removed again on close.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, mkdir, realpath, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Launcher, Transition } from '../launcher.js';
import { LauncherRequestError } from '../request-error.js';
import { guardPeers } from './peer.js';

const MAX_BODY = 4 * 1024 * 1024;

export interface CommandServer {
  socketPath: string;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * `launcher` may still be loading (a promise): the socket then listens at once, `/healthz`
 * answers, and every other endpoint waits for the launcher (launcher/main.ts).
 */
export async function startCommandServer(launcherOrLoading: Launcher | Promise<Launcher>, requestedPath: string, log: PeerLog = stderrLog): Promise<CommandServer> {
  let launcher: Launcher | undefined;
  const loading = Promise.resolve(launcherOrLoading).then((l) => (launcher = l));
  loading.catch(() => undefined); // a launcher that failed to load: its requests answer 500 with the reason
  const ready = async (): Promise<Launcher> => launcher ?? (await loading);
  await mkdir(dirname(requestedPath), { recursive: true, mode: 0o700 });
  // Bind where the directory really is: the Pod's sockets emptyDir is nested in its share dir
  // through a symlink, and the path through the link is longer than the 107 bytes a unix
  // socket address holds (the kernel would silently cut it). The node agent checks, and
  // connects to, this resolved path.
  const socketPath = join(await realpath(dirname(requestedPath)), basename(requestedPath));
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`launcher socket path ${socketPath} is over the 107-byte unix socket limit: use a shorter --state-dir`);
  await rm(socketPath, { force: true });

  const streams = new Set<ServerResponse>();
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    '/healthz': { GET: async (_q, res) => send(res, 200, { ok: true }) },
    '/v1/info': { GET: async (_q, res) => send(res, 200, await (await ready()).info()) },
    '/v1/vmi': {
      PUT: async (req, res) => {
        const body = await readJson(req);
        const out = await (await ready()).sync(body);
        send(res, out.result === 'created' ? 201 : 200, out);
      },
    },
    '/v1/shutdown': {
      POST: async (req, res) => {
        const body = await readJson(req, true);
        let grace: number | undefined;
        if (body !== undefined) {
          const g = (body as Record<string, unknown> | null)?.['gracePeriodSeconds'];
          if (typeof body !== 'object' || body === null || Array.isArray(body)) {
            throw new LauncherRequestError(400, 'body must be a JSON object like {"gracePeriodSeconds": 30}', { fieldErrors: [{ path: '', message: 'must be an object' }] });
          }
          if (g !== undefined && (typeof g !== 'number' || !Number.isInteger(g) || g < 0)) {
            throw new LauncherRequestError(400, 'gracePeriodSeconds must be a whole number of seconds ≥ 0', { fieldErrors: [{ path: 'gracePeriodSeconds', message: 'must be an integer ≥ 0, e.g. 30' }] });
          }
          grace = g as number | undefined;
        }
        send(res, 200, await (await ready()).shutdown(grace));
      },
    },
    '/v1/kill': { POST: async (_q, res) => send(res, 200, await (await ready()).kill()) },
    '/v1/pause': { POST: async (_q, res) => send(res, 200, await (await ready()).pause()) },
    '/v1/unpause': { POST: async (_q, res) => send(res, 200, await (await ready()).unpause()) },
    '/v1/events': {
      GET: async (req, res) => {
        const launcher = await ready();
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        streams.add(res);
        const write = (t: Transition | { kind: 'snapshot'; info: unknown }): boolean => res.write(`${JSON.stringify(t)}\n`);
        // The current state first, so a client never misses the state it started from.
        write({ kind: 'snapshot', info: await launcher.info() });
        const off = launcher.onTransition(write);
        req.on('close', () => {
          off();
          streams.delete(res);
        });
      },
    },
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[path];
    const handler = route?.[req.method ?? 'GET'];
    if (!route) return send(res, 404, { error: `no endpoint ${path}; see launcher/server/README.md` });
    if (!handler) {
      res.setHeader('allow', Object.keys(route).join(', '));
      return send(res, 405, { error: `${req.method} not allowed on ${path}; use ${Object.keys(route).join(' or ')}` });
    }
    handler(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.end();
      if (err instanceof LauncherRequestError) {
        return send(res, err.status, { error: err.message, ...err.details });
      }
      if (err instanceof Error && err.name === 'LibvirtUnavailableError') {
        return send(res, 503, { error: err.message, reason: 'LibvirtUnavailable' });
      }
      send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });

  // Besides the 0600 mode: only a peer of our uid or root gets an answer (SO_PEERCRED).
  guardPeers(server, socketPath, log);

  // Create the socket owner-only from the start (no window with a wider mode).
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(socketPath, 0o600);

  return {
    socketPath,
    close: async () => {
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await rm(socketPath, { force: true });
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new LauncherRequestError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (optional) return undefined;
    throw new LauncherRequestError(400, 'empty body: send a JSON object', { fieldErrors: [{ path: '', message: 'required' }] });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new LauncherRequestError(400, `body is not valid JSON: ${(err as Error).message}`, { fieldErrors: [{ path: '', message: 'invalid JSON' }] });
  }
}

type PeerLog = { warn: (obj: object, msg: string) => void };

/** Without a logger: one JSON line on stderr (the launcher's log file). */
const stderrLog: PeerLog = { warn: (obj, msg) => void process.stderr.write(`${JSON.stringify({ level: 40, ...obj, msg })}\n`) };
