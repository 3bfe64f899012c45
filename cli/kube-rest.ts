/**
 * A small Kubernetes REST client for the CLI's cluster mode (get, describe, start/stop,
 * diff, reconcile, console). Not @kubernetes/client-node: loading it costs ~0.8 s per
 * command, more than kubectl needs for the whole `get pods`; here only node:https and js-yaml
 * are loaded. It reads kubeconfig files as kubectl does (`--kubeconfig`, else every file of
 * `$KUBECONFIG` merged, first one wins per name; `*-data` or file paths relative to the file)
 * with token, token file and client certificate credentials. Kubeconfigs with `exec` or
 * `auth-provider` users are handed to client-node, which implements those plugins.
 *
 * The daemons' client (reconciler/cluster/kube.ts, HttpKubeClient) makes its requests through
 * this one too (`KubeRest.live`), with credentials and a keep-alive agent from client-node's
 * KubeConfig for every request and a deadline on each.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
// js-yaml, not yaml: one small module; loading and first use of yaml's cost ~30 ms of every
// cluster-mode command's start (bench/cli.ts).
import jsYaml from 'js-yaml';

export interface KubeTarget {
  /** Where the config came from (messages name it). */
  source: string;
  context: string;
  server: URL;
  /** The context's namespace (default "default"). */
  namespace: string;
  tls: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>;
  headers: Record<string, string>;
}

interface NamedEntry<T> {
  name: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

interface KubeconfigFile {
  path: string;
  doc: {
    'current-context'?: string;
    clusters?: NamedEntry<Record<string, unknown>>[];
    users?: NamedEntry<Record<string, unknown>>[];
    contexts?: NamedEntry<Record<string, unknown>>[];
  };
}

/** `--kubeconfig` wins; else the files of `$KUBECONFIG` (":"-separated). Pure. */
export function kubeconfigPaths(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  if (flag) return [flag];
  return (env['KUBECONFIG'] ?? '').split(':').filter((p) => p !== '');
}

function readConfig(path: string): KubeconfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`kubeconfig ${path}: ${(err as Error).message} (pass an existing file with --kubeconfig or fix $KUBECONFIG)`);
  }
  let doc: KubeconfigFile['doc'];
  try {
    // The core schema, as yaml's default: no timestamps or other implicit types.
    doc = (jsYaml.load(text, { schema: jsYaml.CORE_SCHEMA }) ?? {}) as KubeconfigFile['doc'];
  } catch (err) {
    throw new Error(`kubeconfig ${path}: not valid YAML: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object') throw new Error(`kubeconfig ${path}: not a kubeconfig (a YAML mapping with clusters, users, contexts)`);
  return { path, doc };
}

/** Merged lookup over the files, first file wins per name (kubectl's rule). */
function lookup(files: KubeconfigFile[], list: 'clusters' | 'users' | 'contexts', name: string): { entry: Record<string, unknown>; file: KubeconfigFile } | undefined {
  for (const f of files) {
    const found = (f.doc[list] ?? []).find((e) => e?.name === name);
    const key = list.slice(0, -1) as 'cluster' | 'user' | 'context';
    if (found) return { entry: (found[key] ?? {}) as Record<string, unknown>, file: f };
  }
  return undefined;
}

function fileOrData(entry: Record<string, unknown>, field: string, base: KubeconfigFile): Buffer | undefined {
  const data = entry[`${field}-data`];
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  const file = entry[field];
  if (typeof file === 'string' && file !== '') {
    const p = isAbsolute(file) ? file : resolve(dirname(base.path), file);
    try {
      return readFileSync(p);
    } catch (err) {
      throw new Error(`kubeconfig ${base.path}: ${field} ${p}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

/** Resolves the current context of the kubeconfig into a target. Throws naming the field and the fix. */
export function loadKubeTarget(paths: string[], opts: { context?: string } = {}): KubeTarget & { plugin: boolean } {
  if (paths.length === 0) throw new Error('no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG');
  const files = paths.map(readConfig);
  const source = paths.join(':');
  const contextName = opts.context ?? files.map((f) => f.doc['current-context']).find((c) => typeof c === 'string' && c !== '');
  if (!contextName) throw new Error(`kubeconfig ${source}: no current-context; set one (kubectl config use-context NAME) or pass --context`);
  const ctx = lookup(files, 'contexts', contextName);
  if (!ctx) throw new Error(`kubeconfig ${source}: context "${contextName}" is not defined under contexts:`);
  const clusterName = String(ctx.entry['cluster'] ?? '');
  const cluster = lookup(files, 'clusters', clusterName);
  if (!cluster) throw new Error(`kubeconfig ${source}: context "${contextName}" names cluster "${clusterName}", which is not defined under clusters:`);
  const serverRaw = cluster.entry['server'];
  if (typeof serverRaw !== 'string' || !/^https?:\/\//.test(serverRaw)) throw new Error(`kubeconfig ${cluster.file.path}: clusters[${clusterName}].server must be an https:// URL, got ${JSON.stringify(serverRaw)}`);
  const userName = String(ctx.entry['user'] ?? '');
  const user = userName ? lookup(files, 'users', userName) : undefined;
  const u = user?.entry ?? {};
  const headers: Record<string, string> = {};
  let token = typeof u['token'] === 'string' ? u['token'] : undefined;
  if (!token && typeof u['tokenFile'] === 'string') token = readFileSync(resolve(dirname(user!.file.path), u['tokenFile']), 'utf8').trim();
  if (token) headers['authorization'] = `Bearer ${token}`;
  else if (typeof u['username'] === 'string') headers['authorization'] = `Basic ${Buffer.from(`${u['username']}:${String(u['password'] ?? '')}`).toString('base64')}`;
  const ca = fileOrData(cluster.entry, 'certificate-authority', cluster.file);
  const cert = user ? fileOrData(u, 'client-certificate', user.file) : undefined;
  const key = user ? fileOrData(u, 'client-key', user.file) : undefined;
  const tls: KubeTarget['tls'] = {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(cluster.entry['insecure-skip-tls-verify'] === true ? { rejectUnauthorized: false } : {}),
    ...(typeof cluster.entry['tls-server-name'] === 'string' ? { servername: cluster.entry['tls-server-name'] } : {}),
  };
  return {
    source,
    context: contextName,
    server: new URL(serverRaw),
    namespace: typeof ctx.entry['namespace'] === 'string' && ctx.entry['namespace'] ? ctx.entry['namespace'] : 'default',
    tls,
    headers,
    plugin: u['exec'] !== undefined || u['auth-provider'] !== undefined,
  };
}

/** An API error with the server's status code and message. */
export class KubeApiError extends Error {
  constructor(readonly code: number, message: string, readonly reason?: string) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** The message of a refused request's body: a metav1.Status's `message`, else `error`, else the text. */
export function refusalMessage(body: string): string {
  try {
    const st = JSON.parse(body) as { message?: string; error?: string };
    if (typeof st.message === 'string') return st.message;
    if (typeof st.error === 'string') return st.error;
  } catch {
    /* plain text */
  }
  return body.trim();
}

export type PatchType = 'merge' | 'apply';

/** One entry of API discovery (an APIResourceList's `resources`). */
export interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/** `/api/v1` for the core group, `/apis/<group>/<version>` for the others. Pure. */
export function groupVersionPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/**
 * The REST path of resource `r` of `apiVersion`: the object `name`, else the collection. A
 * namespaced resource is addressed in `namespace`; without one, a collection spans all
 * namespaces (callers addressing one object pass its namespace, `default` if it has none). Pure.
 */
export function resourcePath(apiVersion: string, r: ApiResource, namespace?: string, name?: string): string {
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${groupVersionPath(apiVersion)}${ns}/${r.name}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

/** How soon after a discovery answer a kind missing from it is looked up again. */
const REDISCOVER_AFTER_MS = 1000;

export interface KubeRestOptions {
  /**
   * Called before every request with its options: adds credentials (fresh each time, so
   * rotating tokens and exec plugins keep working) and the connection agent.
   */
  authorize?: (o: RequestOptions) => Promise<void>;
  /** A deadline for each request (upgrades excluded); the error says it was not answered. */
  timeoutMs?: number;
  userAgent?: string;
}

export class KubeRest {
  /** API discovery per group version: when asked, and the answer (undefined: the group version is not served). */
  private readonly discovery = new Map<string, { at: number; resources: Promise<ApiResource[] | undefined> }>();

  private constructor(readonly target: KubeTarget, private readonly opts: KubeRestOptions = {}) {}

  /**
   * The resource that serves `kind` in `apiVersion`, from API discovery (one request per group
   * version, cached); undefined when it is not served. A kind missing from an answer older than
   * a second is looked up again: its CRD may have been installed since.
   */
  async resource(apiVersion: string, kind: string): Promise<ApiResource | undefined> {
    const find = (list: ApiResource[] | undefined) => list?.find((r) => r.kind === kind && !r.name.includes('/'));
    const cached = this.discovery.get(apiVersion);
    if (cached) {
      // A failed look-up rejects here too (its first caller drops it from the cache).
      const hit = find(await cached.resources);
      if (hit || Date.now() - cached.at < REDISCOVER_AFTER_MS) return hit;
    }
    const resources = this.get<{ resources?: ApiResource[] }>(groupVersionPath(apiVersion)).then((l) => (l ? l.resources ?? [] : undefined));
    this.discovery.set(apiVersion, { at: Date.now(), resources });
    try {
      return find(await resources);
    } catch (err) {
      this.discovery.delete(apiVersion);
      throw err;
    }
  }

  /** Loads the kubeconfig; exec/auth-provider users get their credentials through client-node. */
  static async connect(paths: string[], opts: { context?: string } = {}): Promise<KubeRest> {
    const t = loadKubeTarget(paths, opts);
    if (t.plugin) {
      const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
      const kc = new KubeConfig();
      kc.loadFromFile(paths[0]!);
      if (opts.context) kc.setCurrentContext(opts.context);
      const o: RequestOptions = { headers: {} };
      await kc.applyToHTTPSOptions(o);
      const h = (o.headers ?? {}) as Record<string, string>;
      if (h['Authorization'] ?? h['authorization']) t.headers['authorization'] = (h['Authorization'] ?? h['authorization'])!;
      if (o.cert) t.tls.cert = o.cert as Buffer;
      if (o.key) t.tls.key = o.key as Buffer;
    }
    return new KubeRest(t);
  }

  /**
   * Requests as a loaded client-node KubeConfig's current context, in-cluster service
   * accounts included: the KubeConfig applies its credentials, TLS settings and connection
   * agent to each request (`applyToHTTPSOptions`), so a rotated token is picked up.
   */
  static live(kc: KubeConfig, opts: Omit<KubeRestOptions, 'authorize'> = {}): KubeRest {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster; pass a kubeconfig whose current-context names a cluster');
    const ctx = kc.getContextObject(kc.getCurrentContext());
    return new KubeRest(
      { source: 'the kubeconfig', context: kc.getCurrentContext(), server: new URL(cluster.server), namespace: ctx?.namespace ?? 'default', tls: {}, headers: {} },
      { ...opts, authorize: (o) => kc.applyToHTTPSOptions(o) },
    );
  }

  private options(method: string, path: string, headers: Record<string, string>): RequestOptions {
    const s = this.target.server;
    const base = s.pathname.replace(/\/$/, '');
    return {
      method,
      protocol: s.protocol,
      hostname: s.hostname.replace(/^\[|\]$/g, ''),
      port: s.port || (s.protocol === 'https:' ? 443 : 80),
      path: `${base}${path}`,
      headers: { accept: 'application/json', 'user-agent': this.opts.userAgent ?? 'virtops-cli', ...this.target.headers, ...headers },
      ...this.target.tls,
    };
  }

  /** One JSON request; non-2xx throws a KubeApiError with the server's message. */
  async call<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, patch?: PatchType): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const contentType = patch === 'merge' ? 'application/merge-patch+json' : patch === 'apply' ? 'application/apply-patch+yaml' : 'application/json';
    const headers: Record<string, string> = payload !== undefined ? { 'content-type': contentType, 'content-length': String(Buffer.byteLength(payload)) } : {};
    const options = this.options(method, path, headers);
    if (this.opts.authorize) await this.opts.authorize(options);
    const { timeoutMs } = this.opts;
    if (timeoutMs !== undefined) options.signal = AbortSignal.timeout(timeoutMs);
    const res = await new Promise<{ status: number; text: string }>((resolveRes, reject) => {
      const req = (this.target.server.protocol === 'https:' ? httpsRequest : httpRequest)(options, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => resolveRes({ status: r.statusCode ?? 0, text }));
        r.on('error', reject);
      });
      req.on('error', (err) => {
        if (err.name === 'AbortError' && timeoutMs !== undefined) reject(new Error(`${method} ${path}: the API server at ${this.target.server.origin} did not answer within ${timeoutMs / 1000}s (request given up; it is retried)`));
        else reject(new Error(`cannot reach the Kubernetes API at ${this.target.server.origin} (context ${this.target.context} of ${this.target.source}): ${err.message}`));
      });
      req.end(payload);
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.text);
    } catch {
      parsed = res.text;
    }
    if (res.status < 200 || res.status > 299) {
      const st = parsed as { message?: string; reason?: string } | string;
      const message = typeof st === 'object' && st?.message ? st.message : String(res.text || `HTTP ${res.status}`);
      throw new KubeApiError(res.status, `${method} ${path}: ${message}`, typeof st === 'object' ? st?.reason : undefined);
    }
    return parsed as T;
  }

  /** GET that maps 404 to undefined. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.call<T>('GET', path);
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  /**
   * An HTTP upgrade (`Connection: Upgrade`) through the API server, e.g. to a node's proxy
   * subresource: resolves with the raw socket once the far end answered 101.
   */
  async upgrade(path: string, protocol: string): Promise<{ socket: Duplex; head: Buffer }> {
    const options = this.options('GET', path, { connection: 'Upgrade', upgrade: protocol });
    if (this.opts.authorize) {
      await this.opts.authorize(options);
      // The upgraded socket leaves the pool for good: a connection of its own, not a pooled one.
      delete options.agent;
    }
    return new Promise((resolveUp, reject) => {
      const req = (this.target.server.protocol === 'https:' ? httpsRequest : httpRequest)(options);
      req.on('upgrade', (_res: IncomingMessage, socket: Duplex, head: Buffer) => resolveUp({ socket, head }));
      req.on('response', (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => reject(new KubeApiError(res.statusCode ?? 0, `GET ${path}: HTTP ${res.statusCode}: ${refusalMessage(text)}`)));
      });
      req.on('error', (err) => reject(new Error(`cannot reach the Kubernetes API at ${this.target.server.origin}: ${err.message}`)));
      req.end();
    });
  }
}
