/**
 * The HTTP API of `virtops up` (default 127.0.0.1:8686). JSON in and out.
 *
 *   GET  /healthz                          the process is up
 *   GET  /readyz                           503 until a revision is applied and its first pass ran
 *   GET  /metrics                          Prometheus text format
 *   POST /hooks/git                        push webhook (GitHub, GitLab, generic HMAC); only with a secret
 *   GET  /api/v1/source                    applied revision, last refusal, source counters
 *   GET  /api/v1/vms                       { revision, refused?, vms: VmView[] }
 *   GET  /api/v1/vms/:ns/:name             VmView (conditions, events, instance, domain, console)
 *   POST /api/v1/vms/:ns/:name/:action     start | stop | restart | pause | unpause (an override)
 *   GET  /api/v1/diff                      what the next reconcile would do
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { IMPERATIVE_ACTIONS, type ImperativeAction } from '../core/index.js';
import type { ReconcilerMetrics } from './metrics.js';
import { ReconcileError, type StandaloneBackend } from './backend.js';

export interface ApiOptions {
  backend: StandaloneBackend;
  metrics: ReconcilerMetrics;
  log: Logger;
  ready: () => boolean;
  sourceInfo: () => Record<string, unknown>;
  diff: () => Promise<unknown>;
  /** The webhook route from reconciler/source; returns false when the path is not its own. */
  webhook?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface ApiServer {
  address: string;
  close(): Promise<void>;
}

export async function startApi(listen: { host: string; port: number }, opts: ApiOptions): Promise<ApiServer> {
  const { backend, metrics } = opts;
  const server: Server = createServer((req, res) => {
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
    if (opts.webhook && path.startsWith('/hooks/') && opts.webhook(req, res)) return;
    if (path === '/healthz') return send(res, 200, { ok: true });
    if (path === '/readyz') return opts.ready() ? send(res, 200, { ready: true }) : send(res, 503, { ready: false, reason: 'no revision applied yet' });
    if (path === '/metrics') {
      metrics.setStatusCounts(backend.statusCounts());
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (path === '/api/v1/source') return send(res, 200, opts.sourceInfo());
    if (path === '/api/v1/diff') return send(res, 200, await opts.diff());
    if (path === '/api/v1/vms' && method === 'GET') {
      const a = backend.appliedRevision;
      return send(res, 200, { revision: a.sha ?? null, appliedAt: a.appliedAt ? new Date(a.appliedAt).toISOString() : null, ...(a.refused ? { refused: a.refused } : {}), vms: backend.list() });
    }
    const m = /^\/api\/v1\/vms\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m) {
      const [, ns, name, action] = m.map((x) => (x === undefined ? x : decodeURIComponent(x)));
      if (!action && method === 'GET') {
        const v = backend.get(ns!, name!);
        if (!v) return send(res, 404, { error: `VirtualMachine ${ns}/${name} not found; see virtops get vms` });
        const a = backend.appliedRevision;
        return send(res, 200, { ...v, appliedRevision: a.sha ?? null, ...(a.refused ? { refused: a.refused } : {}) });
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

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const address = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : `${listen.host}:${listen.port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
