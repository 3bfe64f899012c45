/**
 * The CLI side of the `virtops up` API (get, describe, console, start/stop/..., diff). Kept
 * light (node:http, fs, path) so registering CLI commands loads nothing else.
 *
 * Where: `--server` or `$VIRTOPS_SERVER` (`unix:/path` or `http://HOST:PORT`), else the unix
 * socket `<state-dir>/up.sock` (`--state-dir`, `$VIRTOPS_STATE_DIR`, default /var/lib/virtops).
 * Over TCP the bearer token comes from `--token-file`, `$VIRTOPS_TOKEN` (the token itself) or
 * `<state-dir>/api.token`.
 */
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_STATE_DIR } from '../agent/host-config.js';

export const SERVER_ENV = 'VIRTOPS_SERVER';
export const STATE_DIR_ENV = 'VIRTOPS_STATE_DIR';
export const TOKEN_ENV = 'VIRTOPS_TOKEN';
/** The API socket's name in the state dir (up.ts binds it, the CLI connects to it). */
export const SOCKET_NAME = 'up.sock';
/** The token file's name in the state dir (api-token.ts writes it). */
export const TOKEN_FILE_NAME = 'api.token';

export function socketPath(stateDir: string): string {
  return join(stateDir, SOCKET_NAME);
}

export type ApiTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number; token?: string };

export interface ConnectionOptions {
  server?: string;
  stateDir?: string;
  tokenFile?: string;
}

/** The options every command that talks to `up` takes. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--server <addr>', `virtops up API: unix:/path or http://HOST:PORT (default: the socket in the state dir, or $${SERVER_ENV})`)
    .option('--state-dir <dir>', `state dir of the virtops up to talk to (default $${STATE_DIR_ENV} or ${DEFAULT_STATE_DIR})`)
    .option('--token-file <file>', `bearer token for an http:// server (default $${TOKEN_ENV} or <state-dir>/${TOKEN_FILE_NAME})`);
}

/** Validates a --server value: `unix:/abs/path`, `http://HOST:PORT` or `HOST:PORT`. */
export function parseServer(raw: string): ApiTarget {
  if (raw.startsWith('unix:')) {
    const path = raw.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path.startsWith('/')) throw new Error(`--server "${raw}": a unix socket needs an absolute path, e.g. unix:${socketPath(DEFAULT_STATE_DIR)}`);
    return { kind: 'unix', path };
  }
  let u: URL;
  try {
    u = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new Error(`--server "${raw}" is not an address: use unix:/path/up.sock or http://127.0.0.1:8686 (or set ${SERVER_ENV})`);
  }
  if (u.protocol !== 'http:') throw new Error(`--server "${raw}": virtops up serves unix:/path or http:// only`);
  return { kind: 'tcp', host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 80 };
}

/** Where to send requests (and the token, for TCP), from the command's options and the environment. */
export async function resolveTarget(opts: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): Promise<ApiTarget> {
  const stateDir = opts.stateDir ?? env[STATE_DIR_ENV] ?? DEFAULT_STATE_DIR;
  const raw = opts.server ?? env[SERVER_ENV];
  const target = raw ? parseServer(raw) : ({ kind: 'unix', path: socketPath(stateDir) } as const);
  if (target.kind === 'unix') return target;
  let token: string | undefined;
  if (opts.tokenFile) {
    token = (await readFile(opts.tokenFile, 'utf8').catch((err: unknown) => {
      throw new Error(`--token-file ${opts.tokenFile}: ${(err as Error).message}`);
    })).trim();
  } else if (env[TOKEN_ENV]) {
    token = env[TOKEN_ENV]!.trim();
  } else {
    // Not readable (another user's state dir): go without; the server's 401 says what to do.
    token = (await readFile(join(stateDir, TOKEN_FILE_NAME), 'utf8').catch(() => '')).trim() || undefined;
  }
  return { ...target, ...(token ? { token } : {}) };
}

export function describeTarget(t: ApiTarget): string {
  return t.kind === 'unix' ? `unix:${t.path}` : `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

/** One request; non-2xx answers throw with the server's message. `target` may be a --server string. */
export async function apiCall<T>(target: ApiTarget | string, method: 'GET' | 'POST', path: string, payload?: unknown): Promise<T> {
  const t = typeof target === 'string' ? parseServer(target) : target;
  // Actions are JSON POSTs: the API refuses anything a browser could send cross-site unasked.
  const body = method === 'POST' ? JSON.stringify(payload ?? {}) : undefined;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      {
        method,
        path,
        ...(t.kind === 'unix' ? { socketPath: t.path, host: 'localhost' } : { host: t.host, port: t.port }),
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
          ...(t.kind === 'tcp' && t.token ? { authorization: `Bearer ${t.token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(unreachable(t, err))));
    req.end(body);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  if (status < 200 || status > 299) {
    const msg = typeof parsed === 'object' && parsed && 'error' in parsed ? String((parsed as { error: unknown }).error) : text;
    throw new Error(msg || `${method} ${path}: HTTP ${status}`);
  }
  return parsed as T;
}

function unreachable(t: ApiTarget, err: NodeJS.ErrnoException): string {
  const where = describeTarget(t);
  if (t.kind === 'unix' && err.code === 'EACCES') {
    return `permission denied on ${t.path}: the API socket is its owner's only (mode 0600); run as the user that runs virtops up (root for ${DEFAULT_STATE_DIR})`;
  }
  if (t.kind === 'unix' && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) {
    return `no virtops up serving at ${where} (${err.code}): is it running? pass --state-dir (or $${STATE_DIR_ENV}) of the running up, or --server`;
  }
  return `cannot reach virtops up at ${where} (${err.message}): is it running? pass --server or set ${SERVER_ENV}`;
}

/** `name` or `namespace/name` → [namespace, name]. */
export function parseVmName(arg: string, namespace: string | undefined): [string, string] {
  const parts = arg.split('/');
  if (parts.length > 2 || parts.some((p) => !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p))) {
    throw new Error(`VM name "${arg}" is not NAME or NAMESPACE/NAME (lower-case DNS names)`);
  }
  return parts.length === 2 ? [parts[0]!, parts[1]!] : [namespace ?? 'default', parts[0]!];
}
