/**
 * launcher/volumes/import.ts against real programs: qemu-img, skopeo and a local registry, an
 * HTTP server on this host. Every source kind, the checks that refuse an import (HTTP 404,
 * a claim smaller than the image, a compressed image), and that a failed or aborted attempt
 * leaves no claim and no temp dir. Offline snapshot copies (launcher/volumes/snapshot.ts) too.
 */
import { createHash } from 'node:crypto';
import { skipReason } from '../../helpers/skip.js';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ImportPlan, planImport } from '../../../api/datavolume.js';
import { ImageStore } from '../../../launcher/volumes/image-store.js';
import { claimFile, runImport } from '../../../launcher/volumes/import.js';
import { copyDiskFile } from '../../../launcher/volumes/snapshot.js';
import { pushTestGuestImages, startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { ensureTestGuest } from '../../helpers/test-guest.js';

let work: string;
let pvcDir: string;
let registry: LocalRegistry;
let diskImage: string;
let server: Server;
let base: string;
let guestDisk: Buffer;
let slowStarted = false;

const plan = (name: string, spec: Record<string, unknown>, annotations?: Record<string, string>): ImportPlan => {
  const r = planImport({ metadata: { name, ...(annotations ? { annotations } : {}) }, spec }, 'default');
  if ('issues' in r) throw new Error(JSON.stringify(r.issues));
  return r;
};
const storage = (s: string) => ({ resources: { requests: { storage: s } } });
const ctx = (extra: Partial<Parameters<typeof runImport>[1]> = {}) => ({ pvcDir, imageStore: new ImageStore({ dir: join(work, 'images'), insecureRegistries: [registry.host] }), signal: new AbortController().signal, ...extra });
const info = async (path: string) => JSON.parse((await execa('qemu-img', ['info', '--output=json', path])).stdout) as { format: string; 'virtual-size': number };
const label = async (path: string) => (await readFile(path)).subarray(0, 30).toString().split('\n')[0];
const leftovers = async (name: string) => (await readdir(join(pvcDir, 'default', name)).catch(() => [] as string[])).filter((e) => e.startsWith('.import-'));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vo-import-'));
  pvcDir = join(work, 'pvcs');
  registry = await startRegistry();
  diskImage = (await pushTestGuestImages(registry)).diskImage;
  const guest = await ensureTestGuest();
  guestDisk = await readFile(guest.disk);
  server = createServer((req, res) => {
    if (req.url === '/disk.qcow2') return void res.writeHead(200, { 'content-length': guestDisk.length }).end(guestDisk);
    if (req.url === '/disk.qcow2.gz') return void res.end(gzipSync(guestDisk));
    if (req.url === '/slow') {
      // Headers and a little data, then nothing: an attempt that only an abort ends.
      slowStarted = true;
      res.writeHead(200, { 'content-length': guestDisk.length });
      res.write(guestDisk.subarray(0, 1024));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}, 300_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('runImport', () => {
  it('http with the right checksum: a raw claim of the requested size holding the image; progress reaches 1', async () => {
    const sum = createHash('sha256').update(guestDisk).digest('hex');
    const seen: number[] = [];
    const r = await runImport(plan('from-http', { source: { http: { url: `${base}/disk.qcow2` } }, storage: storage('32Mi') }, { 'virtops.io/checksum': `sha256:${sum}` }), ctx({ onProgress: (f) => seen.push(f) }));
    expect(r.path).toBe(claimFile(pvcDir, 'default', 'from-http'));
    expect(await info(r.path)).toMatchObject({ format: 'raw', 'virtual-size': 32 * 1024 * 1024 });
    expect(await label(r.path)).toBe('virtops-disk-label: test-disk');
    expect(seen.at(-1)).toBe(1);
    expect(seen.every((f, i) => i === 0 || f >= seen[i - 1]!)).toBe(true);
    expect(await leftovers('from-http')).toEqual([]);
    // Never re-imported: a second run keeps what is there.
    await writeFile(r.path, 'kept');
    await runImport(plan('from-http', { source: { http: { url: `${base}/disk.qcow2` } }, storage: storage('32Mi') }), ctx());
    expect(await readFile(r.path, 'utf8')).toBe('kept');
  });

  it('without a size, the image\'s own size', async () => {
    const r = await runImport(plan('own-size', { source: { http: { url: `${base}/disk.qcow2` } }, storage: {} }), ctx());
    expect((await info(r.path))['virtual-size']).toBe(8 * 1024 * 1024);
  });

  it.each([
    ['a wrong checksum', { source: { http: { url: '/disk.qcow2' } }, storage: storage('32Mi') }, { 'virtops.io/checksum': `sha256:${'0'.repeat(64)}` }, /checksum mismatch: the sha256 of .* is [0-9a-f]{64}, the annotation virtops.io\/checksum says 0{64}/],
    ['HTTP 404', { source: { http: { url: '/missing.qcow2' } }, storage: storage('32Mi') }, undefined, /HTTP 404 Not Found/],
    ['a claim smaller than the image', { source: { http: { url: '/disk.qcow2' } }, storage: storage('4Mi') }, undefined, /virtual size 8388608 bytes is larger than the requested storage 4194304 bytes/],
    ['a gzip-compressed image', { source: { http: { url: '/disk.qcow2.gz' } }, storage: storage('32Mi') }, undefined, /gzip-compressed/],
  ])('%s fails and leaves no claim and no temp dir', async (_what, spec, annotations, message) => {
    const s = structuredClone(spec) as { source: { http: { url: string } } };
    s.source.http.url = `${base}${s.source.http.url}`;
    const name = `bad-${Math.random().toString(36).slice(2, 8)}`;
    await expect(runImport(plan(name, s, annotations), ctx())).rejects.toThrow(message);
    expect(existsSync(claimFile(pvcDir, 'default', name))).toBe(false);
    expect(await leftovers(name)).toEqual([]);
  });

  it('an aborted attempt (the deadline) leaves nothing either', async () => {
    const abort = new AbortController();
    const p = runImport(plan('aborted', { source: { http: { url: `${base}/slow` } }, storage: storage('32Mi') }), ctx({ signal: abort.signal }));
    for (let i = 0; i < 100 && !slowStarted; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    abort.abort(new Error('deadline'));
    await expect(p).rejects.toThrow();
    expect(existsSync(claimFile(pvcDir, 'default', 'aborted'))).toBe(false);
    expect(await leftovers('aborted')).toEqual([]);
  });

  it('registry: the disk under /disk/ of a containerDisk image', async () => {
    const r = await runImport(plan('from-registry', { source: { registry: { url: `docker://${diskImage}` } }, storage: storage('16Mi') }), ctx());
    expect(await info(r.path)).toMatchObject({ format: 'raw', 'virtual-size': 16 * 1024 * 1024 });
    expect(await label(r.path)).toBe('virtops-disk-label: test-disk');
  });

  it('clone of another claim, and blank', async () => {
    const c = await runImport(plan('clone', { source: { pvc: { name: 'from-registry' } }, storage: storage('64Mi') }), ctx());
    expect(await info(c.path)).toMatchObject({ format: 'raw', 'virtual-size': 64 * 1024 * 1024 });
    expect(await label(c.path)).toBe('virtops-disk-label: test-disk');
    await expect(runImport(plan('clone-missing', { source: { pvc: { name: 'nope' } }, storage: storage('1Mi') }), ctx())).rejects.toThrow(/claim default\/nope not found/);
    const b = await runImport(plan('blank', { source: { blank: {} }, storage: storage('2Mi') }), ctx());
    expect((await stat(b.path)).size).toBe(2 * 1024 * 1024);
  });

  it.skipIf(skipReason('import.test.ts, claim group ownership', { 'needs root (chown to the launcher Pods\' group 107)': process.getuid?.() !== 0 }) !== undefined)('with a group (beside a kubelet: the launcher Pods\' 107): the claim dir g+rwx and the file g+rw of that group', async () => {
    const g = await runImport(plan('grouped', { source: { blank: {} }, storage: storage('1Mi') }), ctx({ group: 107 }));
    const [d, f] = await Promise.all([stat(join(pvcDir, 'default', 'grouped')), stat(g.path)]);
    expect([d.uid, d.gid, d.mode & 0o777]).toEqual([0, 107, 0o770]);
    expect([f.uid, f.gid, f.mode & 0o777]).toEqual([0, 107, 0o660]);
  });
});

describe('copyDiskFile (offline snapshot and restore copies)', () => {
  it('copies byte for byte into place; a failed copy leaves nothing', async () => {
    const src = claimFile(pvcDir, 'default', 'from-registry');
    const dest = join(work, 'copy.img');
    await copyDiskFile(src, dest);
    expect((await readFile(dest)).equals(await readFile(src))).toBe(true);
    await expect(copyDiskFile(join(work, 'missing.img'), join(work, 'copy2.img'))).rejects.toThrow(/copying .*missing.img/);
    expect(existsSync(join(work, 'copy2.img')) || existsSync(join(work, 'copy2.img.partial'))).toBe(false);
  });
});
