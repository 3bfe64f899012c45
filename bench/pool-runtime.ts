/**
 * The pool runtime (benchmarks only; no product module imports this file): one process hosts
 * many launchers (the real Launcher class and command socket, one libvirt connection each),
 * started from the same argv the process runtime would exec. It exists for control-plane
 * scale work (bench/density.ts, bench/scaling.ts, bench/cluster.ts): one launcher process
 * per VM (~74 MiB RSS from the bundle, ~0.5 s of CPU to start) does not fit hundreds or
 * thousands of VMs on a small host, while the reconciler's side (source, backend, agent,
 * sockets, conversion, libvirt calls) is exactly the same. Not for real guests: without a
 * supervisor nothing cleans up after a crashed pool, and the Pod's env is not applied per
 * launcher.
 *
 * The agent's side is PoolRuntime, injected as the NodeAgent's runtime: by bench/pool-entry.ts
 * into `up` (`node bench/pool-bin.mjs up ...`, the same flags as `virtops up`), by
 * bench/cluster.ts into runAgent. The pool's host process is `node bench/pool-bin.mjs
 * launcher-pool --socket <path>` (runLauncherPool below).
 *
 *   POST   /launchers            {uid, argv}  start one (argv as the Pod's compute container runs it)
 *   GET    /launchers/:uid       200 while it runs, 404 otherwise
 *   DELETE /launchers/:uid       stop its domain within the grace period and remove it
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { guardPeers } from '../launcher/server/peer.js';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { launcherPaths, parseLauncherArgv, validateLauncherFlags } from '../launcher/flags.js';
import { callLauncher } from '../launcher/server/client.js';
import type { InstanceRecord, LauncherRuntime } from '../reconciler/agent/agent.js';
import type { ProcessSpec } from '../reconciler/agent/pod-process.js';
import { processAlive } from '../reconciler/agent/process-runtime.js';

/** The bench-only executable that runs `up` with this runtime and the pool's host (bench/pool-bin.mjs). */
export const POOL_BIN = fileURLToPath(new URL('./pool-bin.mjs', import.meta.url));

export async function runLauncherPool(socketPath: string, log: Logger): Promise<{ close(): Promise<void> }> {
  const [{ Launcher }, { startCommandServer }, { createLauncherDeps }, { createLibvirtDriver }] = await Promise.all([
    import('../launcher/launcher.js'),
    import('../launcher/server/server.js'),
    import('../launcher/wiring.js'),
    import('../launcher/libvirt/index.js'),
  ]);
  type Hosted = { stop(): Promise<void> };
  const hosted = new Map<string, Hosted>();

  const start = async (uid: string, argv: string[]): Promise<void> => {
    const v = validateLauncherFlags(parseLauncherArgv(argv));
    if (!v.ok) throw new Error(v.errors.join('; '));
    const config = v.config;
    const child = log.child({ vmi: `${config.namespace}/${config.name}`, uid });
    const deps = await createLauncherDeps(config, child);
    // Polling instead of one `virsh event` child per launcher: hundreds of them would not fit.
    // Each launcher polls only its own domain: listing every domain per launcher made N
    // launchers cost N² state reads per interval (a core at 100% with 1,000 hosted).
    deps.driver = createLibvirtDriver({ uri: config.libvirtUri, eventSource: 'poll', pollIntervalMs: 30_000, watchDomains: [launcherPaths(config).domainName] });
    deps.refreshIntervalMs = 30_000;
    const launcher = new Launcher(config, deps);
    const server = await startCommandServer(launcher, launcherPaths(config).socket, child);
    await launcher.start();
    hosted.set(uid, {
      stop: async () => {
        await launcher.terminate().catch((err: unknown) => child.error({ err }, 'terminate failed'));
        await server.close();
        await deps.driver.close().catch(() => undefined);
      },
    });
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => reply(res, 500, { error: (err as Error).message }));
  });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const m = /^\/launchers(?:\/([^/]+))?$/.exec(req.url ?? '');
    if (req.url === '/healthz') return reply(res, 200, { ok: true, launchers: hosted.size });
    if (!m) return reply(res, 404, { error: 'no such endpoint' });
    if (req.method === 'POST' && !m[1]) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { uid: string; argv: string[] };
      if (hosted.has(body.uid)) return reply(res, 200, { pid: process.pid });
      await start(body.uid, body.argv);
      return reply(res, 201, { pid: process.pid });
    }
    const uid = m[1] ?? '';
    if (req.method === 'GET') return reply(res, hosted.has(uid) ? 200 : 404, { alive: hosted.has(uid) });
    if (req.method === 'DELETE') {
      const h = hosted.get(uid);
      hosted.delete(uid);
      await h?.stop();
      return reply(res, 200, { stopped: h !== undefined });
    }
    reply(res, 405, { error: 'method not allowed' });
  };
  await mkdir(dirname(socketPath), { recursive: true });
  await rm(socketPath, { force: true });
  guardPeers(server, socketPath, log);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  log.info({ socket: socketPath }, 'launcher pool serving');
  return {
    close: async () => {
      await Promise.all([...hosted.values()].map((h) => h.stop()));
      hosted.clear();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(socketPath, { force: true });
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * The agent's side: starts the pool's host processes on first use and asks them to host
 * launchers. `hosts` > 1 spreads launchers over that many host processes by a hash of the
 * VMI uid: one event loop stops keeping up somewhere past 3,000 launchers (bench:scaling at
 * 5,000 on test:///default, BENCHMARKS.md), which is the bench's limit, not the product's
 * (one process per VM). Host 0 serves `socketPath`, host i `<socketPath without .sock>-<i>.sock`.
 */
export class PoolRuntime implements LauncherRuntime {
  readonly kind = 'pool';
  private readonly ready = new Map<string, Promise<number>>();
  private readonly hosts: number;

  /** `command`: what runs the pool's host (default `node bench/pool-bin.mjs`); `launcher-pool --socket <path>` is appended. */
  constructor(private readonly opts: { socketPath: string; logFile: string; command?: string[]; hosts?: number }) {
    this.hosts = opts.hosts ?? 1;
    if (!Number.isInteger(this.hosts) || this.hosts < 1) throw new Error(`hosts: ${String(opts.hosts)} must be a whole number ≥ 1`);
  }

  /** The socket of the host that holds (or will hold) this launcher. */
  private socketOf(uid: string): string {
    const host = this.hosts === 1 ? 0 : createHash('sha1').update(uid).digest().readUInt32BE(0) % this.hosts;
    return host === 0 ? this.opts.socketPath : `${this.opts.socketPath.replace(/\.sock$/, '')}-${host}.sock`;
  }

  private ensure(socketPath: string): Promise<number> {
    let ready = this.ready.get(socketPath);
    if (ready) return ready;
    ready = (async () => {
      const up = await callLauncher<{ ok: boolean }>(socketPath, 'GET', '/healthz', undefined, 2000).then((r) => r.status === 200, () => false);
      if (up) return 0;
      const { open } = await import('node:fs/promises');
      const logFd = await open(this.opts.logFile, 'a');
      const [cmd, ...args] = this.opts.command ?? [process.execPath, POOL_BIN];
      const child = spawn(cmd!, [...args, 'launcher-pool', '--socket', socketPath], { detached: true, stdio: ['ignore', logFd.fd, logFd.fd] });
      child.unref();
      await logFd.close();
      for (let i = 0; i < 600; i++) {
        const ok = await callLauncher(socketPath, 'GET', '/healthz', undefined, 2000).then((r) => r.status === 200, () => false);
        if (ok) return child.pid ?? 0;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the launcher pool did not open ${socketPath}; see ${this.opts.logFile}`);
    })();
    ready.catch(() => this.ready.delete(socketPath));
    this.ready.set(socketPath, ready);
    return ready;
  }

  async start(record: InstanceRecord, spec: ProcessSpec): Promise<number> {
    const socket = this.socketOf(record.uid);
    await this.ensure(socket);
    const res = await callLauncher<{ pid?: number; error?: string }>(socket, 'POST', '/launchers', { uid: record.uid, argv: spec.argv }, 120_000);
    if (res.status !== 200 && res.status !== 201) throw new Error(`launcher pool: ${res.body?.error ?? res.status}`);
    return res.body.pid ?? 0;
  }

  async alive(record: InstanceRecord): Promise<boolean> {
    if (record.pid !== undefined && record.pid > 0 && !(await processAlive(record.pid))) return false;
    // A busy pool answers slowly; only a definite 404 means the launcher is not hosted.
    return callLauncher(this.socketOf(record.uid), 'GET', `/launchers/${record.uid}`, undefined, 30_000).then((r) => r.status === 200, () => record.pid !== undefined && record.pid > 0);
  }

  async stop(record: InstanceRecord, graceMs: number): Promise<void> {
    await callLauncher(this.socketOf(record.uid), 'DELETE', `/launchers/${record.uid}`, undefined, graceMs + 30_000).catch(() => undefined);
  }
}
