/**
 * Fills a claim once (a DataVolume's import, api/datavolume.ts decides what): downloads
 * over HTTP(S) while hashing, pulls a registry image into the node image store, or clones
 * another claim; then converts the source (qcow2, raw, vmdk, vdi, vhd, vhdx) to the raw
 * claim file with qemu-img, at the requested size.
 *
 *   <pvcDir>/<ns>/<name>/disk.img               the claim (KubeVirt's filesystem-PVC layout)
 *   <pvcDir>/<ns>/<name>/.import-<id>/          this attempt's download and partial disk
 *
 * Everything is written in the attempt's directory and renamed into place at the end, so a
 * failed, aborted or crashed import never leaves a partial `disk.img`; the attempt's
 * directory is always removed. An existing disk.img is never overwritten.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, chown, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ImportPlan, parseQemuImgProgress } from '../../api/datavolume.js';
import { run } from './exec.js';
import type { ImageStore } from './image-store.js';

export interface ImportContext {
  /** `<state-dir>/pvcs`: every claim of this host. */
  pvcDir: string;
  /** For registry sources. */
  imageStore?: ImageStore;
  /** Aborts the attempt (the worker's deadline, or the DataVolume leaving git). */
  signal: AbortSignal;
  /** 0..1 as the copy goes. */
  onProgress?: (fraction: number) => void;
  /**
   * Give the claim's dir (g+rwx) and disk.img (g+rw) to this group: where a kubelet mounts the
   * claim into a launcher Pod, QEMU runs as the Pod's user and group (107), not root. (The
   * kubelet's fsGroup change of a `local` PV covers read-write mounts only; this covers both.)
   */
  group?: number;
}

/** An import that cannot succeed as asked; the message says what and how to fix it. */
export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

export function claimDir(pvcDir: string, namespace: string, name: string): string {
  return join(pvcDir, namespace, name);
}

export function claimFile(pvcDir: string, namespace: string, name: string): string {
  return join(claimDir(pvcDir, namespace, name), 'disk.img');
}

const CONVERTIBLE = new Set(['raw', 'qcow2', 'vmdk', 'vdi', 'vpc', 'vhdx']);

/** Runs one import attempt; resolves with the claim's size in bytes. */
export async function runImport(plan: ImportPlan, ctx: ImportContext): Promise<{ path: string; bytes: bigint }> {
  const dir = claimDir(ctx.pvcDir, plan.namespace, plan.name);
  const final = join(dir, 'disk.img');
  const existing = await stat(final).catch(() => undefined);
  if (existing) return { path: final, bytes: BigInt(existing.size) };
  await mkdir(dir, { recursive: true, mode: 0o750 });
  if (ctx.group !== undefined) await shareWithGroup(dir, ctx.group, 0o770);
  // Leftovers of attempts that died with the process (a crash, a SIGKILL of up).
  for (const e of await readdir(dir)) if (e.startsWith('.import-')) await rm(join(dir, e), { recursive: true, force: true });
  const work = join(dir, `.import-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { mode: 0o700 });
  try {
    const downloadShare = plan.source.kind === 'http' ? 0.8 : 0;
    let source: string;
    switch (plan.source.kind) {
      case 'http':
        source = join(work, 'download');
        await download(plan, source, ctx, (f) => ctx.onProgress?.(f * downloadShare));
        break;
      case 'registry': {
        if (!ctx.imageStore) throw new ImportError('no image store is configured for registry imports');
        const pulled = await ctx.imageStore.pull({ image: plan.source.image, pullPolicy: 'IfNotPresent' }, { volume: plan.name });
        source = (await ctx.imageStore.extractFile(pulled, '/disk', true, plan.name)).path;
        break;
      }
      case 'clone':
        source = await findClaimFile(ctx.pvcDir, plan.source.namespace, plan.source.name);
        break;
      case 'blank':
        source = '';
        break;
    }
    ctx.signal.throwIfAborted();
    const tmp = join(work, 'disk.img');
    if (plan.source.kind === 'blank') {
      await run('qemu-img', ['create', '-q', '-f', 'raw', tmp, String(plan.bytes)]);
    } else {
      const info = await imageInfo(source);
      const size = plan.bytes ?? info.virtualSize;
      if (info.virtualSize > size) {
        throw new ImportError(`the image's virtual size ${info.virtualSize} bytes is larger than the requested storage ${size} bytes: raise storage.resources.requests.storage to at least ${info.virtualSize}`);
      }
      // The claim at its full size (sparse), then the image copied in: a larger claim keeps its size.
      await run('qemu-img', ['create', '-q', '-f', 'raw', tmp, String(size)]);
      await convert(source, info.format, tmp, ctx, (f) => ctx.onProgress?.(downloadShare + f * (1 - downloadShare)));
    }
    ctx.signal.throwIfAborted();
    const fd = await open(tmp, 'r+');
    await fd.sync().finally(() => fd.close());
    if (ctx.group !== undefined) await shareWithGroup(tmp, ctx.group, 0o660);
    await rename(tmp, final);
    ctx.onProgress?.(1);
    return { path: final, bytes: BigInt((await stat(final)).size) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `path` owned by `group` (its owner kept) with `mode`. */
async function shareWithGroup(path: string, group: number, mode: number): Promise<void> {
  await chown(path, -1, group);
  await chmod(path, mode);
}

/** GET `url` into `dest`, hashing as it arrives; the checksum (if any) must match. */
async function download(plan: ImportPlan, dest: string, ctx: ImportContext, progress: (f: number) => void): Promise<void> {
  const url = plan.source.kind === 'http' ? plan.source.url : '';
  let res: Response;
  try {
    res = await fetch(url, { signal: ctx.signal, redirect: 'follow' });
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new ImportError(`GET ${url} failed: ${cause ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new ImportError(`GET ${url}: HTTP ${res.status} ${res.statusText}${res.status === 404 ? ' (fix: the URL in source.http.url)' : ''}`);
  }
  const total = Number(res.headers.get('content-length') ?? NaN);
  const hash = createHash(plan.checksum?.algorithm ?? 'sha256');
  let received = 0;
  let lastReport = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      if (Number.isFinite(total) && total > 0 && (received - lastReport > 1 << 20 || received === total)) {
        lastReport = received;
        progress(Math.min(1, received / total));
      }
      cb(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), meter, createWriteStream(dest, { mode: 0o600 }), { signal: ctx.signal });
  if (Number.isFinite(total) && received !== total) throw new ImportError(`GET ${url}: got ${received} of ${total} bytes`);
  if (plan.checksum) {
    const got = hash.digest('hex');
    if (got !== plan.checksum.hex) {
      throw new ImportError(`checksum mismatch: the ${plan.checksum.algorithm} of ${url} is ${got}, the annotation virtops.io/checksum says ${plan.checksum.hex} (fix: the URL or the checksum)`);
    }
  }
}

async function imageInfo(path: string): Promise<{ format: string; virtualSize: bigint }> {
  // Compressed images would pass as "raw" garbage: refuse them by their magic bytes.
  const fd = await open(path, 'r');
  const head = Buffer.alloc(6);
  await fd.read(head, 0, 6, 0).finally(() => fd.close());
  if (head[0] === 0x1f && head[1] === 0x8b) throw new ImportError('the source is gzip-compressed: serve the uncompressed image (qcow2 or raw)');
  if (head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) throw new ImportError('the source is xz-compressed: serve the uncompressed image (qcow2 or raw)');
  let info: { format?: string; 'virtual-size'?: number; 'backing-filename'?: string };
  try {
    info = JSON.parse(await run('qemu-img', ['info', '--output=json', '--force-share', path])) as typeof info;
  } catch (err) {
    throw new ImportError(`the source is not a disk image qemu-img reads: ${(err as Error).message}`);
  }
  if (!info.format || !CONVERTIBLE.has(info.format)) throw new ImportError(`the source is a ${String(info.format)} image; virtops imports ${[...CONVERTIBLE].join(', ')}`);
  if (info['backing-filename']) throw new ImportError('the source image has a backing file: flatten it (qemu-img convert) first');
  return { format: info.format, virtualSize: BigInt(info['virtual-size'] ?? 0) };
}

/** `qemu-img convert -p -n` into the pre-created raw target, reporting its progress. */
function convert(src: string, format: string, dest: string, ctx: ImportContext, progress: (f: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-img', ['convert', '-p', '-n', '-U', '-f', format, '-O', 'raw', src, dest], { stdio: ['ignore', 'pipe', 'pipe'], signal: ctx.signal });
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      const f = parseQemuImgProgress(s);
      if (f !== undefined) progress(f);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', (e) => reject(ctx.signal.aborted ? ctx.signal.reason : new ImportError(`qemu-img convert: ${e.message}`)));
    child.once('close', (code) => (code === 0 ? resolve() : reject(ctx.signal.aborted ? ctx.signal.reason : new ImportError(`qemu-img convert failed (exit ${code}): ${err.trim()}`))));
  });
}

/** A claim's file, as the launcher finds it (materialize.ts findClaim): exactly one must exist. */
export async function findClaimFile(pvcDir: string, namespace: string, name: string): Promise<string> {
  const candidates = [join(pvcDir, namespace, `${name}.img`), join(pvcDir, namespace, `${name}.qcow2`), join(pvcDir, namespace, name, 'disk.img')];
  const found: string[] = [];
  for (const c of candidates) if (await stat(c).catch(() => undefined)) found.push(c);
  if (found.length === 0) throw new ImportError(`claim ${namespace}/${name} not found: expected one of ${candidates.join(', ')}`);
  if (found.length > 1) throw new ImportError(`claim ${namespace}/${name} is ambiguous: both ${found.join(' and ')} exist; remove one`);
  return found[0]!;
}
