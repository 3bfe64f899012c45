/**
 * The HTTP API of `virtops up` and its other listeners. JSON in and out.
 *
 * Control API: always on the unix socket `<state-dir>/up.sock` (mode 0600: its owner only),
 * and on TCP only with `--listen HOST:PORT` (then every request needs the bearer token).
 * Who may call it is decided by api-guard.ts (Host, Origin, token, method and content type).
 *
 *   GET  /healthz                          the process is up
 *   GET  /readyz                           503 until a revision is applied and its first pass ran
 *   GET  /metrics                          Prometheus text format
 *   GET  /api/v1/source                    applied revision, last refusal, source counters
 *   GET  /api/v1/vms                       { revision, refused?, vms: VmView[] }
 *   GET  /api/v1/pools                     { revision, pools: PoolView[] }: VirtualMachinePools (desired, status, VMs)
 *   GET  /api/v1/vms/:ns/:name             VmView (conditions, events, instance, domain, console)
 *   POST /api/v1/vms/:ns/:name/:action     start | stop | restart | pause | unpause (an override)
 *   GET  /api/v1/diff                      what the next reconcile would do
 *   POST /api/v1/reconcile                 re-read git now (`virtops reconcile`); { revision }
 *
 * Webhook listener (`--webhook-listen`): only `/hooks/*` (HMAC-verified, size- and
 * rate-limited), 404 for anything else. Metrics listener (`--metrics-listen`): only GET
 * /metrics, /healthz, /readyz, unauthenticated. Exposing either exposes nothing else.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createConnection } from 'node:net';
import type { Duplex } from 'node:stream';
import { chmod, lstat, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { IMPERATIVE_ACTIONS, type ImperativeAction } from '../core/index.js';
import type { ReconcilerMetrics } from './metrics.js';
import { ReconcileError, type StandaloneBackend } from './backend.js';
import { guardRequest, RateLimiter, type GuardPolicy } from './api-guard.js';
import { guardPeers } from '../../launcher/server/peer.js';
import { type SourceError, sourceErrorLine } from './source-health.js';
import type { Dashboard } from './dashboard-server.js';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function formatListen(l: ListenAddress): string {
  return l.kind === 'unix' ? `unix:${l.path}` : `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

interface HealthOptions {
  backend: StandaloneBackend;
  metrics: ReconcilerMetrics;
  ready: () => boolean;
  /** A failing git source (fetch or apply): /readyz answers 503 with it, the VM views carry it. */
  sourceError?: () => SourceError | undefined;
}

export interface ApiOptions extends HealthOptions {
  log: Logger;
  sourceInfo: () => Record<string, unknown>;
  diff: () => Promise<unknown>;
  /** VirtualMachinePools of the applied revision with their status (pools.ts PoolView). */
  pools?: () => unknown;
  /** `virtops reconcile`: re-read git now; resolves with the applied revision once handled. */
  reconcile?: () => Promise<{ revision: string | null }>;
  /** More endpoints (storage-api.ts: DataVolumes, snapshots, restores): true when one answered. */
  extraRoutes?: (req: IncomingMessage, res: ServerResponse, path: string, method: string) => Promise<boolean>;
  /** TCP only: the bearer token, and where callers find it (told in 401 answers). */
  token?: string;
  tokenHint?: string;
  /** TCP on a wildcard address: names of this host accepted in `Host`. */
  hostNames?: readonly string[];
  /** TCP only: the web dashboard at `/` (dashboard-server.ts), with its session cookies. */
  dashboard?: Dashboard;
}

export interface ApiServer {
  /** `unix:/path` or `host:port` (the bound port when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

export async function startApi(listen: ListenAddress, opts: ApiOptions): Promise<ApiServer> {
  const { backend } = opts;
  if (listen.kind === 'tcp' && !opts.token) throw new Error('a TCP control API needs a token');
  let policy: GuardPolicy | undefined;
  const server: Server = createServer((req, res) => {
    // Decided before routing: a refused request reaches no handler, so it changes nothing.
    const verdict = policy ? guardRequest({ method: req.method ?? 'GET', path: pathOf(req), headers: req.headers }, policy) : ({ ok: false, status: 403, error: 'not ready' } as const);
    if (!verdict.ok) {
      req.resume();
      // A browser opening a dashboard page without a session: the login page, not a 401 body.
      if ('login' in verdict && verdict.login) {
        res.writeHead(303, { location: '/login', 'cache-control': 'no-store', 'content-length': 0 });
        return res.end();
      }
      return send(res, verdict.status, { error: verdict.error }, verdict.status === 401 ? { 'www-authenticate': 'Bearer realm="virtops"' } : {});
    }
    void route(req, res).catch((err: unknown) => {
      if (err instanceof ReconcileError) return send(res, err.reason === 'NotFound' ? 404 : 409, { error: err.message, reason: err.reason });
      opts.log.error({ err, url: req.url }, 'API request failed');
      send(res, 500, { error: (err as Error).message });
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (opts.dashboard && (await opts.dashboard.handle(req, res, path, method))) return;
    if (await serveHealth(path, method, res, opts)) return;
    if (path === '/api/v1/source') return send(res, 200, opts.sourceInfo());
    if (path === '/api/v1/diff') return send(res, 200, await opts.diff());
    if (path === '/api/v1/reconcile' && method === 'POST' && opts.reconcile) return send(res, 200, await opts.reconcile());
    if (opts.extraRoutes && (await opts.extraRoutes(req, res, path, method))) return;
    if (path === '/api/v1/pools' && method === 'GET' && opts.pools) return send(res, 200, opts.pools());
    if (path === '/api/v1/vms' && method === 'GET') {
      const a = backend.appliedRevision;
      const sourceError = opts.sourceError?.();
      return send(res, 200, { revision: a.sha ?? null, appliedAt: a.appliedAt ? new Date(a.appliedAt).toISOString() : null, ...(a.refused ? { refused: a.refused } : {}), ...(sourceError ? { sourceError } : {}), vms: backend.list() });
    }
    const m = /^\/api\/v1\/vms\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m) {
      const [, ns, name, action] = m.map((x) => (x === undefined ? x : decodeURIComponent(x)));
      if (!action && method === 'GET') {
        const v = backend.get(ns!, name!);
        if (!v) return send(res, 404, { error: `VirtualMachine ${ns}/${name} not found; see virtops get vms` });
        const a = backend.appliedRevision;
        const sourceError = opts.sourceError?.();
        return send(res, 200, { ...v, appliedRevision: a.sha ?? null, ...(a.refused ? { refused: a.refused } : {}), ...(sourceError ? { sourceError } : {}) });
      }
      if (action && method === 'POST') {
        if (!(IMPERATIVE_ACTIONS as readonly string[]).includes(action)) {
          return send(res, 400, { error: `unknown action "${action}": use one of ${IMPERATIVE_ACTIONS.join(', ')}` });
        }
        return send(res, 202, await backend.requestAction(ns!, name!, action as ImperativeAction));
      }
      return send(res, 405, { error: `${method} not allowed on ${path}` });
    }
    send(res, 404, { error: `no endpoint ${method} ${path}; see reconciler/standalone/api.ts` });
  }

  // WebSocket upgrades (the dashboard's serial console): the same guard, then the dashboard.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const verdict = policy ? guardRequest({ method: req.method ?? 'GET', path: pathOf(req), headers: req.headers }, policy) : ({ ok: false, status: 403, error: 'not ready' } as const);
    if (!verdict.ok) {
      socket.end(`HTTP/1.1 ${verdict.status} Refused\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: verdict.error })}`);
      return;
    }
    if (!opts.dashboard?.upgrade(req, socket, head, pathOf(req))) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
  });
  // The unix socket: besides its 0600 mode, only a peer of our uid or root (SO_PEERCRED).
  if (listen.kind === 'unix') guardPeers(server, listen.path, opts.log);
  const bound = await listenOn(server, listen);
  const dash = opts.dashboard;
  policy = bound.listen.kind === 'unix'
    ? { listen: { kind: 'unix' } }
    : { listen: bound.listen, token: opts.token!, ...(opts.tokenHint ? { tokenHint: opts.tokenHint } : {}), ...(opts.hostNames ? { hostNames: opts.hostNames } : {}), ...(dash ? { session: (id: string) => dash.sessions.lookup(id) } : {}) };
  return bound;
}

/** `/metrics`, `/healthz`, `/readyz` (GET): read-only, on the control API and the metrics listener. */
async function serveHealth(path: string, method: string, res: ServerResponse, opts: HealthOptions): Promise<boolean> {
  if (path !== '/healthz' && path !== '/readyz' && path !== '/metrics') return false;
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, 405, { error: `${path} is read-only: use GET` });
    return true;
  }
  if (path === '/healthz') send(res, 200, { ok: true });
  else if (path === '/readyz') {
    const e = opts.sourceError?.();
    if (!opts.ready()) send(res, 503, { ready: false, reason: 'no revision applied yet' });
    else if (e) send(res, 503, { ready: false, reason: sourceErrorLine(e), sourceError: e });
    else send(res, 200, { ready: true });
  }
  else {
    opts.metrics.setStatusCounts(opts.backend.statusCounts());
    const text = await opts.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
    res.end(text);
  }
  return true;
}

/** `--metrics-listen`: the health endpoints and /metrics only, no authentication (they are read-only). */
export async function startMetricsServer(listen: ListenAddress, opts: HealthOptions & { log: Logger }): Promise<ApiServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    req.resume();
    serveHealth(path, req.method ?? 'GET', res, opts).then(
      (served) => void (served || send(res, 404, { error: 'not found: this listener serves only /metrics, /healthz and /readyz' })),
      (err: unknown) => {
        opts.log.error({ err }, 'metrics request failed');
        send(res, 500, { error: 'metrics failed' });
      },
    );
  });
  limitTimeouts(server);
  return listenOn(server, listen);
}

export interface WebhookServerOptions {
  /** The webhook route (reconciler/source/webhook-http.ts): false when the path is not its own. */
  route: (req: IncomingMessage, res: ServerResponse) => boolean;
  log: Logger;
  /** Per client address; default 10 at once, then one per 2 s. */
  limiter?: RateLimiter;
}

/** `--webhook-listen`: `/hooks/*` only; every other path is 404, whatever the method. */
export async function startWebhookServer(listen: ListenAddress, opts: WebhookServerOptions): Promise<ApiServer> {
  const limiter = opts.limiter ?? new RateLimiter();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!path.startsWith('/hooks/')) {
      req.resume();
      return send(res, 404, { error: 'not found: this listener serves only /hooks/*' });
    }
    const wait = limiter.take(req.socket.remoteAddress ?? 'unknown', Date.now());
    if (wait > 0) {
      req.resume();
      opts.log.warn({ client: req.socket.remoteAddress, path }, 'webhook rate limit');
      return send(res, 429, { reason: 'too many requests from this address' }, { 'retry-after': String(Math.ceil(wait / 1000)) });
    }
    if (!opts.route(req, res)) {
      req.resume();
      send(res, 404, { error: `no webhook at ${path}; the git webhook is /hooks/git` });
    }
  });
  limitTimeouts(server);
  return listenOn(server, listen);
}

/** Listeners others can reach must not be held open by slow or idle clients. */
function limitTimeouts(server: Server): void {
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
}

/**
 * Binds `server`. A unix socket is bound in a fresh 0700 directory, chmod'ed 0600 and then
 * renamed into place, so it is never reachable with wider permissions (whatever the umask)
 * and a stale socket left by a killed `up` is replaced atomically; a socket someone still
 * serves, or a path that is not a socket, is refused. Close removes the socket if it is ours.
 */
async function listenOn(server: Server, listen: ListenAddress): Promise<ApiServer & { listen: ListenAddress }> {
  const bindTo = (target: string | { port: number; host: string }): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (typeof target === 'string') server.listen(target, done);
      else server.listen(target.port, target.host, done);
    });
  const closeServer = (): Promise<void> =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  if (listen.kind === 'tcp') {
    await bindTo(listen);
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : listen.port;
    const actual: ListenAddress = { kind: 'tcp', host: listen.host, port };
    return { address: formatListen(actual), listen: actual, close: closeServer };
  }

  const path = listen.path;
  const dir = dirname(path);
  await refuseUnlessStale(path);
  await removeLeftoverBindDirs(dir);
  const tmpDir = await mkdtemp(join(dir, BIND_DIR_PREFIX)); // mode 0700
  const tmp = join(tmpDir, 's');
  let ino: number;
  try {
    await bindTo(tmp);
    await chmod(tmp, 0o600);
    await rename(tmp, path);
    ino = (await stat(path)).ino;
  } catch (err) {
    await closeServer();
    throw err;
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
  return {
    address: formatListen(listen),
    listen,
    close: async () => {
      await closeServer();
      // Only our own socket: a later `up` may already have replaced it.
      const now = await stat(path).catch(() => undefined);
      if (now?.ino === ino) await rm(path, { force: true });
    },
  };
}

const BIND_DIR_PREFIX = '.api-';

/** Bind dirs of an `up` killed between bind and rename. */
async function removeLeftoverBindDirs(dir: string): Promise<void> {
  for (const e of await readdir(dir).catch(() => [] as string[])) {
    if (e.startsWith(BIND_DIR_PREFIX)) await rm(join(dir, e), { recursive: true, force: true });
  }
}

async function refuseUnlessStale(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket: move it away (virtops up serves its API there)`);
  const answered = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (answered) throw new Error(`${path} is served by another process (another virtops up on this state dir?): stop it first`);
}

function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '/';
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
