import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ensureTestGuest } from './test-guest.js';

/** A real OCI registry (Debian's docker-registry, i.e. distribution) on 127.0.0.1. */
export interface LocalRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, the prefix of image references. */
  host: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a registry with its own storage dir; resolves once `/v2/` answers. */
export async function startRegistry(): Promise<LocalRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'virtops-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: { level: error }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      `http: { addr: "${host}" }`,
      '',
    ].join('\n'),
  );
  const proc: ResultPromise = execa('docker-registry', ['serve', config], { reject: false, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  let exited = false;
  void proc.then(() => (exited = true));

  const stop = async (): Promise<void> => {
    if (!exited) {
      proc.kill('SIGTERM');
      await proc;
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`docker-registry exited before serving on ${host}: ${stderr.trim()}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer /v2/ on ${host} within 15 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://${host}`, host, stop };
}

export interface PushedTestGuest {
  /** kernelBoot.container image: /boot/vmlinuz, /boot/initrd.img */
  kernelBootImage: string;
  /** containerDisk image: /disk/disk.qcow2 */
  diskImage: string;
}

/** Copies an OCI layout (tag `latest`) to `<registry>/<repo>:latest`. */
export async function pushOciLayout(registry: LocalRegistry, layout: string, repo: string): Promise<string> {
  const ref = `${registry.host}/${repo}:latest`;
  await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${ref}`]);
  return ref;
}

/** Pushes the test guest's images as `virtops/test-guest:latest` and `virtops/test-disk:latest`. */
export async function pushTestGuestImages(registry: LocalRegistry): Promise<PushedTestGuest> {
  const guest = await ensureTestGuest();
  return {
    kernelBootImage: await pushOciLayout(registry, guest.ociKernelBoot, 'virtops/test-guest'),
    diskImage: await pushOciLayout(registry, guest.ociDisk, 'virtops/test-disk'),
  };
}

/**
 * An HTTP proxy in front of a registry that breaks the first `breakBlobs` blob downloads
 * halfway (headers and half the body, then the connection is dropped), as a registry or a
 * network dropping a transfer does. Everything else passes through unchanged.
 */
export async function startBreakingProxy(upstream: LocalRegistry, breakBlobs: number): Promise<LocalRegistry & { broken(): number }> {
  let broken = 0;
  const server = createHttpServer((req, res) => {
    const [host, port] = upstream.host.split(':');
    const out = request({ host, port: Number(port), method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && up.statusCode === 200;
      if (!isBlob || broken >= breakBlobs) {
        up.pipe(res);
        return;
      }
      broken++;
      const length = Number(up.headers['content-length'] ?? 0);
      const chunks: Buffer[] = [];
      up.on('data', (b: Buffer) => chunks.push(b));
      up.on('end', () => {
        res.write(Buffer.concat(chunks).subarray(0, Math.floor(length / 2)), () => res.socket?.destroy());
      });
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const host = `127.0.0.1:${port}`;
  return {
    url: `http://${host}`,
    host,
    broken: () => broken,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
