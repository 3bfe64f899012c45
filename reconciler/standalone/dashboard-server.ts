/**
 * The web dashboard of `virtops up`, served at `/` on the TCP listener (`--listen`) only: a
 * unix socket has no browser. api.ts runs api-guard.ts first (Host, Origin, token or session
 * cookie + CSRF header, JSON-only mutations), then offers each request here before its own
 * routes; WebSocket upgrades (the serial console) go through the same guard.
 *
 * Login: `up` prints `http://HOST:PORT/login#token=…`. The token is in the fragment, which a
 * browser never sends, so it is in no request line, server log or Referer. The login page
 * POSTs it as JSON to /api/v1/session and gets an HttpOnly, SameSite=Strict session cookie
 * (12 h, in memory: a restart of `up` logs everyone out) and the session's CSRF secret, which
 * the page sends as X-Virtops-CSRF on every POST.
 *
 *   GET  /login, /assets/*                  public (no data)
 *   POST /api/v1/session {token}            → Set-Cookie + { csrf }
 *   GET  /api/v1/session                    → { csrf } of the cookie's session
 *   POST /api/v1/logout                     drops the session
 *   GET  /api/v1/events                     server-sent events (events-stream.ts)
 *   GET  /api/v1/dashboard/summary          revision + commit, refusal + commit, counts
 *   GET  /api/v1/dashboard/vms/:ns/:name    spec summary and disks (with sizes on disk)
 *   GET  /api/v1/dashboard/diff             /api/v1/diff plus a line diff of each changed VM
 *   WS   /api/v1/vms/:ns/:name/console      the serial console (one QEMU connection, many viewers)
 *   GET  /, /vms/…, /diff, /console/…       the app (index.html)
 *
 * One server for both modes: the routes read a `DashboardData`. `up` passes its backend
 * (`standaloneData`, below); `virtops controller --dashboard-listen` passes its view of the
 * API server (reconciler/cluster/dashboard.ts), which also answers the VM view and the
 * buttons (GET /api/v1/vms/:ns/:name, POST …/:action: on a single host api.ts does) and
 * is served by `startDashboardListener` (the same guard, nothing but the dashboard).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createConnection } from 'node:net';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { toYaml } from '../../api/yaml-compat.js';
import { git } from '../source/git.js';
import { IMPERATIVE_ACTIONS, type ImperativeAction, type KubeObject } from '../core/index.js';
import type { StandaloneBackend } from './backend.js';
import { SESSION_COOKIE, cookieValue, guardRequest, secretEquals, type GuardPolicy } from './api-guard.js';
import { DashboardFeed, type FeedSource } from './events-stream.js';
import type { SourceError } from './source-health.js';

const SESSION_TTL_MS = 12 * 3600 * 1000;
const MAX_SESSIONS = 1_000;

/** Dashboard sessions: random ids (the cookie) → CSRF secret, in memory. */
export class DashboardSessions {
  private readonly sessions = new Map<string, { csrf: string; expires: number }>();
  constructor(private readonly now: () => number = Date.now) {}

  create(): { id: string; csrf: string } {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(id, { csrf, expires: this.now() + SESSION_TTL_MS });
    return { id, csrf };
  }

  lookup(id: string): { csrf: string } | undefined {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expires <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return { csrf: s.csrf };
  }

  drop(id: string): void {
    this.sessions.delete(id);
  }
}

export function sessionCookie(id: string): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`;
}

// ---- static assets ---------------------------------------------------------------------

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  /** Hashed names are immutable; the HTML pages are not cached. */
  immutable: boolean;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml', '.json': 'application/json' };

/** The built assets (scripts/build-bundles.mjs `dashboard`): the package's copy, else the checkout's (built when stale). */
export async function dashboardAssetsDir(warn: (msg: string) => void): Promise<string | undefined> {
  const packaged = fileURLToPath(new URL('../../bundles/dashboard/', import.meta.url));
  if (existsSync(join(packaged, 'index.html'))) return packaged;
  const script = new URL('../../scripts/build-bundles.mjs', import.meta.url);
  if (!existsSync(fileURLToPath(script))) return undefined;
  const mod = (await import(pathToFileURL(fileURLToPath(script)).href)) as { dashboardBundle(o: { warn(m: string): void }): Promise<{ dir: string } | undefined> };
  return (await mod.dashboardBundle({ warn }))?.dir;
}

export async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(dir)) {
    const type = TYPES[extname(name)];
    if (!type || name === 'sizes.json') continue;
    const body = await readFile(join(dir, name));
    assets.set(name, { body, ...(body.length > 1024 ? { gzip: gzipSync(body, { level: 9 }) } : {}), type, immutable: !name.endsWith('.html') });
  }
  return assets;
}

/** Headers every page gets: no framing (clickjacking), no sniffing, scripts and connections from this origin only. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

// ---- pure helpers ----------------------------------------------------------------------

export interface DiffLine {
  op: ' ' | '+' | '-';
  text: string;
}

/** A line diff (LCS) of two texts; unchanged runs longer than 2×context are folded to `…`. */
export function lineDiff(a: string, b: string, context = 3): DiffLine[] {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push({ op: ' ', text: x[i]! });
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) out.push({ op: '+', text: y[j++]! });
    else out.push({ op: '-', text: x[i++]! });
  }
  // Fold long unchanged runs, keeping `context` lines around each change.
  const keep = out.map((l, k) => l.op !== ' ' || out.slice(Math.max(0, k - context), k + context + 1).some((o) => o.op !== ' '));
  const folded: DiffLine[] = [];
  for (let k = 0; k < out.length; k++) {
    if (keep[k]) folded.push(out[k]!);
    else if (keep[k - 1] !== false) folded.push({ op: ' ', text: '…' });
  }
  return folded;
}

export interface DiskSummary {
  name: string;
  bus?: string;
  kind: string;
  source: string;
  /** Declared size (emptyDisk capacity, DataVolume request), if any. */
  declared?: string;
}

/** The VM page's spec summary, from the VM manifest in git (pure). */
export function specSummary(vm: KubeObject | undefined): { runStrategy?: string; cpu?: unknown; memory?: unknown; machine?: unknown; kernelBoot?: string; networks: string[]; disks: DiskSummary[]; labels: Record<string, string> } | undefined {
  if (!vm) return undefined;
  const spec = (vm as { spec?: Record<string, any> }).spec ?? {};
  const t = spec['template']?.spec ?? {};
  const dom = t.domain ?? {};
  const volumes: Record<string, any>[] = t.volumes ?? [];
  const dvts: Record<string, any>[] = spec['dataVolumeTemplates'] ?? [];
  const disks: DiskSummary[] = (dom.devices?.disks ?? []).map((d: Record<string, any>) => {
    const vol = volumes.find((v) => v['name'] === d['name']) ?? {};
    const kind = Object.keys(vol).find((k) => k !== 'name') ?? 'unknown';
    const src = vol[kind] ?? {};
    const source = src.image ?? src.claimName ?? src.name ?? src.path ?? (kind === 'cloudInitNoCloud' ? 'cloud-init' : '');
    const dvt = kind === 'dataVolume' ? dvts.find((x) => x['metadata']?.name === src.name) : undefined;
    const declared = src.capacity ?? dvt?.['spec']?.storage?.resources?.requests?.storage ?? dvt?.['spec']?.pvc?.resources?.requests?.storage;
    const type = Object.keys(d).find((k) => ['disk', 'cdrom', 'lun'].includes(k));
    return { name: String(d['name']), ...(type && d[type]?.bus ? { bus: String(d[type].bus) } : {}), kind, source: String(source), ...(declared ? { declared: String(declared) } : {}) };
  });
  return {
    ...(spec['runStrategy'] ? { runStrategy: String(spec['runStrategy']) } : spec['running'] !== undefined ? { runStrategy: spec['running'] ? 'Always' : 'Halted' } : {}),
    ...(dom.cpu ? { cpu: dom.cpu } : {}),
    ...(dom.memory ?? dom.resources?.requests?.memory ? { memory: dom.memory ?? { requests: dom.resources.requests.memory } } : {}),
    ...(dom.machine ? { machine: dom.machine } : {}),
    ...(dom.firmware?.kernelBoot?.container?.image ? { kernelBoot: String(dom.firmware.kernelBoot.container.image) } : {}),
    networks: (t.networks ?? []).map((n: Record<string, unknown>) => `${String(n['name'])} (${Object.keys(n).filter((k) => k !== 'name').join(', ')})`),
    disks,
    labels: (t.metadata?.labels ?? spec['template']?.metadata?.labels ?? {}) as Record<string, string>,
  };
}

// ---- the serial console ----------------------------------------------------------------

const SCROLLBACK_BYTES = 256 * 1024;
const LOG_TAIL_BYTES = 64 * 1024;
const MAX_VIEWER_BACKLOG = 4 * 1024 * 1024;

/**
 * One VM's console: a single connection to QEMU's serial socket (it takes one client at a
 * time) shared by every browser viewer. A new viewer gets the scrollback (the serial log's
 * tail when the hub opened, then what came since), then live output; input from any viewer
 * goes to the guest. The last viewer leaving closes the connection.
 */
class ConsoleHub {
  readonly viewers = new Set<WebSocket>();
  private scrollback: Buffer[] = [];
  private size = 0;
  private sock: Duplex | undefined;

  constructor(private readonly onEmpty: () => void) {}

  async open(target: ConsoleTarget): Promise<void> {
    const tail = await target.tail().catch(() => Buffer.alloc(0));
    if (tail.length) {
      this.append(tail);
      // Viewers that joined while the hub was opening have seen nothing yet.
      for (const v of this.viewers) v.send(tail, { binary: true });
    }
    const { socket, head } = await target.connect();
    this.sock = socket;
    const onData = (b: Buffer): void => {
      this.append(b);
      for (const v of this.viewers) {
        // A viewer that stopped reading is dropped rather than buffered without bound.
        if (v.bufferedAmount > MAX_VIEWER_BACKLOG) v.terminate();
        else v.send(b, { binary: true });
      }
    };
    if (head?.length) onData(head);
    this.sock.on('data', onData);
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => {
      for (const v of this.viewers) v.close(1011, 'the serial console closed (domain stopped?)');
      this.viewers.clear();
      this.onEmpty();
    });
  }

  join(ws: WebSocket): void {
    this.viewers.add(ws);
    if (this.size) ws.send(Buffer.concat(this.scrollback), { binary: true });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // Binary frames are keystrokes; text frames are control messages ({"resize":[cols,rows]}):
      // a serial line has no window size, so a resize only changes the browser's terminal.
      if (isBinary) this.sock?.write(data);
    });
    ws.on('close', () => {
      this.viewers.delete(ws);
      if (this.viewers.size === 0) this.close();
    });
  }

  close(): void {
    this.sock?.end();
    this.sock?.destroy();
    this.onEmpty();
  }

  private append(b: Buffer): void {
    this.scrollback.push(b);
    this.size += b.length;
    while (this.size > SCROLLBACK_BYTES && this.scrollback.length > 1) this.size -= this.scrollback.shift()!.length;
  }
}

async function readTail(file: string, bytes: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf;
  } finally {
    await fh.close();
  }
}

// ---- the server ------------------------------------------------------------------------

/** Where a VM's serial console is: one connection is shared by all its viewers. */
export interface ConsoleTarget {
  /** One hub per key: a new instance of the VM gets a new connection. */
  key: string;
  /** The byte stream to the serial console (`head`: bytes that came with an HTTP upgrade). */
  connect(): Promise<{ socket: Duplex; head?: Buffer }>;
  /** Output from before the connection (a single host's serial log); may be empty. */
  tail(): Promise<Buffer>;
}

/**
 * What the dashboard's routes read and do, per mode: `standaloneData` (the backend of `up`)
 * and reconciler/cluster/dashboard.ts (the API server, seen by the controller).
 */
export interface DashboardData extends FeedSource {
  /** Emits `vm` (namespace, name) and `applied` when they change (the live feed's trigger). */
  readonly changes: EventEmitter;
  /** The overview's header: revision, commit, refusal, counts. */
  summary(): Promise<unknown>;
  /** GET /api/v1/dashboard/vms/:ns/:name (spec summary, disk files, revisionSeen); undefined: no such VM. */
  vmDetail(namespace: string, name: string): Promise<unknown>;
  /** GET /api/v1/dashboard/diff */
  diff(): Promise<unknown>;
  /** The serial console, or why not (said in the page: the WebSocket closes with it). */
  console(namespace: string, name: string): Promise<ConsoleTarget | { error: string }>;
  /** Cluster mode: the VM page's view (on a single host api.ts answers it). */
  vmView?(namespace: string, name: string): Promise<unknown>;
  /** Cluster mode: the buttons (an override; on a single host api.ts does it). */
  act?(namespace: string, name: string, action: ImperativeAction): Promise<unknown>;
  /** Where the login token is, told on a wrong one. */
  readonly tokenHint: string;
}

export interface DashboardOptions {
  backend: StandaloneBackend;
  /** The API token (exchanged for a session at /api/v1/session). */
  token: string;
  stateDir: string;
  repo: string;
  log: Logger;
  changes: import('node:events').EventEmitter;
  sourceError: () => SourceError | undefined;
  /** The next revision the source holds (for the diff page). */
  nextManifests: () => { sha: string; manifests: KubeObject[] } | undefined;
  diff: () => Promise<unknown>;
  assetsDir: string;
}

export interface Dashboard {
  sessions: DashboardSessions;
  feed: DashboardFeed;
  /** true when the request was the dashboard's (answered). */
  handle(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<boolean>;
  /** A WebSocket upgrade the guard let through: true when it was ours. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string): boolean;
  close(): void;
}

/** The dashboard of `virtops up`: its backend as the data. */
export async function createDashboard(opts: DashboardOptions): Promise<Dashboard> {
  return createDashboardServer({ data: standaloneData(opts), token: opts.token, log: opts.log, assetsDir: opts.assetsDir });
}

/** Commit messages and authors by sha, from the first of `where` (git dir args) that has it; cached. */
export function commitLookup(where: () => string[][]): (sha: string | undefined) => Promise<CommitInfo | null> {
  const commits = new Map<string, CommitInfo | null>();
  return async (sha) => {
    if (!sha) return null;
    if (commits.has(sha)) return commits.get(sha)!;
    const info = await commitInfo(sha, where());
    if (info) commits.set(sha, info);
    return info;
  };
}

/** `up`'s data: the backend, its state dir and the source (pure wiring). */
export function standaloneData(opts: Omit<DashboardOptions, 'token' | 'log' | 'assetsDir'>): DashboardData {
  const { backend } = opts;
  const commit = commitLookup(() => [['--git-dir', join(opts.stateDir, 'source', 'repo.git')], ...(existsSync(opts.repo) ? [['-C', opts.repo]] : [])]);

  async function summary(): Promise<unknown> {
    const a = backend.appliedRevision;
    const counts = backend.statusCounts();
    return {
      revision: a.sha ?? null,
      appliedAt: a.appliedAt ? new Date(a.appliedAt).toISOString() : null,
      commit: await commit(a.sha),
      refused: a.refused ? { ...a.refused, at: new Date(a.refused.at).toISOString(), commit: await commit(a.refused.sha) } : null,
      sourceError: opts.sourceError() ?? null,
      counts,
      total: Object.values(counts).reduce((x, y) => x + y, 0),
    };
  }

  async function richDiff(): Promise<unknown> {
    const base = (await opts.diff()) as { entries?: { vm: string; change: string }[] };
    const next = opts.nextManifests();
    const appliedVms = vmsByKey(backend.appliedManifests());
    const nextVms = next && next.sha !== backend.appliedRevision.sha ? vmsByKey(next.manifests) : undefined;
    return {
      ...base,
      entries: (base.entries ?? []).map((e) => {
        if (!nextVms || (e.change !== 'update' && e.change !== 'create' && e.change !== 'prune')) return e;
        const before = appliedVms.get(e.vm);
        const after = nextVms.get(e.vm);
        return { ...e, lines: lineDiff(before ? toYaml(before) : '', after ? toYaml(after) : '') };
      }),
    };
  }

  return {
    list: () => backend.list(),
    get: (ns, name) => backend.get(ns, name),
    get appliedRevision() {
      return backend.appliedRevision;
    },
    statusCounts: () => backend.statusCounts(),
    changes: opts.changes,
    summary,
    diff: richDiff,
    tokenHint: 'use the login link virtops up printed, or the content of api.token in its state dir',
    async vmDetail(ns, name) {
      const view = backend.get(ns, name);
      if (!view) return undefined;
      const manifest = backend.appliedManifests().find((m) => m.kind === 'VirtualMachine' && m.metadata.namespace === ns && m.metadata.name === name);
      const a = backend.appliedRevision;
      // When the source yielded the revision this VM runs: the start of its push → Running stages.
      const seen = a.sha && view.revision === a.sha && a.seenAt !== undefined ? { sha: a.sha, seenAt: new Date(a.seenAt).toISOString(), commit: await commit(a.sha) } : null;
      return { spec: specSummary(manifest) ?? null, files: view.instance ? await diskFiles(view.instance.podDir) : [], revisionSeen: seen };
    },
    async console(ns, name) {
      const inst = backend.get(ns, name)?.instance;
      if (!inst) return { error: `VM ${ns}/${name} has no running instance: start it first` };
      return {
        key: `${ns}/${name}/${inst.uid}`,
        tail: () => readTail(inst.serialLog, LOG_TAIL_BYTES),
        connect: () =>
          new Promise((resolve, reject) => {
            const s = createConnection(inst.console);
            s.once('connect', () => resolve({ socket: s }));
            s.once('error', reject);
          }),
      };
    },
  };
}

export interface DashboardServerOptions {
  data: DashboardData;
  /** The login token (exchanged for a session at /api/v1/session). */
  token: string;
  log: Logger;
  assetsDir: string;
}

/** The dashboard's routes over `data` (either mode). */
export async function createDashboardServer(opts: DashboardServerOptions): Promise<Dashboard> {
  const { data, log } = opts;
  const assets = await loadAssets(opts.assetsDir);
  if (!assets.has('index.html') || !assets.has('login.html')) throw new Error(`the dashboard assets in ${opts.assetsDir} lack index.html or login.html: rebuild them (node scripts/build-bundles.mjs dashboard)`);
  const sessions = new DashboardSessions();
  const hubs = new Map<string, ConsoleHub>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const feed = new DashboardFeed({ backend: data, changes: data.changes, summary: () => data.summary() });

  function sendAsset(req: IncomingMessage, res: ServerResponse, name: string, headers: Record<string, string> = {}): void {
    const a = assets.get(name)!;
    const gz = a.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gz ? a.gzip! : a.body;
    res.writeHead(200, {
      'content-type': a.type,
      'content-length': body.length,
      'cache-control': a.immutable ? 'public, max-age=31536000, immutable' : 'no-store',
      vary: 'accept-encoding',
      ...(gz ? { 'content-encoding': 'gzip' } : {}),
      ...(a.type.startsWith('text/html') ? PAGE_HEADERS : { 'x-content-type-options': 'nosniff' }),
      ...headers,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<boolean> {
    const sid = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const vmRoute = /^\/api\/v1\/vms\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/login') return sendAsset(req, res, 'login.html'), true;
      if (path === '/favicon.ico') return res.writeHead(204, { 'cache-control': 'public, max-age=86400' }).end(), true;
      const am = /^\/assets\/([\w.-]+)$/.exec(path);
      if (am) {
        if (!assets.has(am[1]!) || am[1]!.endsWith('.html')) return send(res, 404, { error: `no asset ${am[1]}` }), true;
        return sendAsset(req, res, am[1]!), true;
      }
      if (path === '/' || path === '/diff' || /^\/(vms|console)\/[^/]+\/[^/]+$/.test(path)) return sendAsset(req, res, 'index.html'), true;
      if (path === '/api/v1/session') {
        const s = sid ? sessions.lookup(sid) : undefined;
        return send(res, 200, s ? { csrf: s.csrf } : { csrf: null, note: 'authenticated by the bearer token: no CSRF secret is needed' }), true;
      }
      if (path === '/api/v1/events') return await feed.attach(req, res), true;
      if (path === '/api/v1/dashboard/summary') return send(res, 200, { ...((await data.summary()) as object), history: feed.history, pushes: feed.pushes }), true;
      if (path === '/api/v1/dashboard/diff') return send(res, 200, await data.diff()), true;
      const vm = /^\/api\/v1\/dashboard\/vms\/([^/]+)\/([^/]+)$/.exec(path);
      if (vm) {
        const [ns, name] = [decodeURIComponent(vm[1]!), decodeURIComponent(vm[2]!)];
        const detail = await data.vmDetail(ns, name);
        return send(res, detail === undefined ? 404 : 200, detail ?? { error: `VirtualMachine ${ns}/${name} not found` }), true;
      }
      if (vmRoute && !vmRoute[3] && data.vmView) {
        const [ns, name] = [decodeURIComponent(vmRoute[1]!), decodeURIComponent(vmRoute[2]!)];
        const view = await data.vmView(ns, name);
        return send(res, view === undefined ? 404 : 200, view ?? { error: `VirtualMachine ${ns}/${name} not found` }), true;
      }
      return false;
    }
    if (method === 'POST' && vmRoute?.[3] && data.act) {
      req.resume();
      const [ns, name, action] = [decodeURIComponent(vmRoute[1]!), decodeURIComponent(vmRoute[2]!), decodeURIComponent(vmRoute[3])];
      if (!(IMPERATIVE_ACTIONS as readonly string[]).includes(action)) return send(res, 400, { error: `unknown action "${action}": use one of ${IMPERATIVE_ACTIONS.join(', ')}` }), true;
      try {
        return send(res, 202, await data.act(ns, name, action as ImperativeAction)), true;
      } catch (err) {
        return send(res, /not found/.test((err as Error).message) ? 404 : 409, { error: (err as Error).message }), true;
      }
    }
    if (method === 'POST' && path === '/api/v1/session') {
      const body = await readJsonBody(req).catch(() => undefined);
      const given = body && typeof body === 'object' && typeof (body as { token?: unknown }).token === 'string' ? (body as { token: string }).token : undefined;
      if (!secretEquals(given?.trim(), opts.token)) {
        log.warn({ client: req.socket.remoteAddress }, 'dashboard login with a wrong token');
        return send(res, 401, { error: `the token does not match: ${data.tokenHint}` }), true;
      }
      const s = sessions.create();
      log.info({ client: req.socket.remoteAddress }, 'dashboard login');
      return send(res, 200, { csrf: s.csrf }, { 'set-cookie': sessionCookie(s.id) }), true;
    }
    if (method === 'POST' && path === '/api/v1/logout') {
      req.resume();
      if (sid) sessions.drop(sid);
      return send(res, 200, { ok: true }, { 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` }), true;
    }
    return false;
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string): boolean {
    const m = /^\/api\/v1\/vms\/([^/]+)\/([^/]+)\/console$/.exec(path);
    if (!m) return false;
    const [ns, name] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
    void data.console(ns, name).then(
      (target) => attach(req, socket, head, ns, name, target),
      (err: unknown) => attach(req, socket, head, ns, name, { error: (err as Error).message }),
    );
    return true;
  }

  function attach(req: IncomingMessage, socket: Duplex, head: Buffer, ns: string, name: string, target: ConsoleTarget | { error: string }): void {
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Why there is no console goes to the page as the close reason (a refused handshake has none).
      if ('error' in target) return ws.close(1011, closeReason(target.error));
      const key = target.key;
      let hub = hubs.get(key);
      if (hub) return hub.join(ws);
      hub = new ConsoleHub(() => hubs.get(key) === hub && hubs.delete(key));
      hubs.set(key, hub);
      const h = hub;
      h.join(ws);
      h.open(target).catch((err: unknown) => {
        log.warn({ vm: `${ns}/${name}`, err: (err as Error).message }, 'dashboard console: cannot attach');
        for (const v of h.viewers) v.close(1011, closeReason(`cannot attach to the serial console: ${(err as Error).message}`));
        hubs.delete(key);
      });
    });
  }

  return {
    sessions,
    feed,
    handle,
    upgrade,
    close: () => {
      feed.close();
      for (const h of hubs.values()) h.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}

/** A WebSocket close reason: at most 123 bytes of UTF-8. */
export function closeReason(text: string): string {
  let t = text;
  while (Buffer.byteLength(t) > 123) t = `${t.slice(0, Math.min(t.length - 1, 119))}…`;
  return t;
}

function vmsByKey(manifests: readonly KubeObject[]): Map<string, KubeObject> {
  return new Map(manifests.filter((m) => m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine').map((m) => [`${m.metadata.namespace ?? 'default'}/${m.metadata.name}`, m]));
}

export interface CommitInfo {
  sha: string;
  subject: string;
  body: string;
  author: string;
  email: string;
  date: string;
}

/** The commit's message and author, from the first git dir that has it. */
async function commitInfo(sha: string, where: string[][]): Promise<CommitInfo | null> {
  if (!/^[0-9a-f]{40,64}$/.test(sha)) return null;
  for (const w of where) {
    const out = await git([...w, 'show', '-s', '--format=%H%x00%an%x00%ae%x00%aI%x00%s%x00%b', sha], { timeoutMs: 5_000 }).catch(() => undefined);
    if (!out) continue;
    const [full, author, email, date, subject, body] = out.split('\0');
    return { sha: full!, author: author!, email: email!, date: date!, subject: subject!, body: (body ?? '').trim() };
  }
  return null;
}

/** Disk files of the instance under its pod dir, with their sizes (allocated and apparent). */
async function diskFiles(podDir: string): Promise<{ path: string; bytes: number; allocated: number }[]> {
  const out: { path: string; bytes: number; allocated: number }[] = [];
  async function walk(dir: string, depth: number): Promise<void> {
    if (depth > 6 || out.length > 50) return;
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (e.isFile() && /\.(qcow2|img|raw|iso)$/.test(e.name)) {
        const st = await stat(p).catch(() => undefined);
        if (st) out.push({ path: p.slice(podDir.length + 1), bytes: st.size, allocated: st.blocks * 512 });
      }
    }
  }
  await walk(podDir, 0);
  return out;
}

function readJsonBody(req: IncomingMessage, limit = 16 * 1024): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err as Error);
      }
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/**
 * A listener serving the dashboard and nothing else (cluster mode: `virtops controller
 * --dashboard-listen`). The same guard as `up`'s API (api-guard.ts): Host and Origin checks,
 * the token or a session cookie, CSRF header on cookie-authenticated POSTs, JSON-only
 * mutations; unauthenticated page loads go to /login.
 */
export async function startDashboardListener(listen: { host: string; port: number }, dash: Dashboard, opts: { token: string; tokenHint: string; hostNames?: readonly string[]; log: Logger }): Promise<{ address: string; port: number; close(): Promise<void> }> {
  let policy: GuardPolicy | undefined;
  const verdictOf = (req: IncomingMessage) => (policy ? guardRequest({ method: req.method ?? 'GET', path: pathOf(req), headers: req.headers }, policy) : ({ ok: false, status: 403, error: 'not ready' } as const));
  const server = createServer((req, res) => {
    const verdict = verdictOf(req);
    if (!verdict.ok) {
      req.resume();
      if ('login' in verdict && verdict.login) return void res.writeHead(303, { location: '/login', 'cache-control': 'no-store', 'content-length': 0 }).end();
      return send(res, verdict.status, { error: verdict.error }, verdict.status === 401 ? { 'www-authenticate': 'Bearer realm="virtops"' } : {});
    }
    const method = req.method ?? 'GET';
    const path = pathOf(req);
    dash.handle(req, res, path, method).then(
      (done) => {
        if (done) return;
        req.resume();
        send(res, path === '/healthz' ? 200 : 404, path === '/healthz' ? { ok: true } : { error: `no endpoint ${method} ${path}: this listener serves the dashboard only` });
      },
      (err: unknown) => {
        opts.log.error({ err, url: req.url }, 'dashboard request failed');
        send(res, 500, { error: (err as Error).message });
      },
    );
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const verdict = verdictOf(req);
    if (!verdict.ok) return void socket.end(`HTTP/1.1 ${verdict.status} Refused\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: verdict.error })}`);
    if (!dash.upgrade(req, socket, head, pathOf(req))) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
  });
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  policy = { listen: { kind: 'tcp', host: listen.host, port }, token: opts.token, tokenHint: opts.tokenHint, ...(opts.hostNames ? { hostNames: opts.hostNames } : {}), session: (id) => dash.sessions.lookup(id) };
  return {
    address: `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '/';
  }
}
