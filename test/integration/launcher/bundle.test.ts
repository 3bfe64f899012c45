/**
 * The launcher as the node agent runs it: `node cli/bin.js launcher-monitor ...` takes the
 * fast path (scripts/build-bundles.mjs) and runs the monitor and launcher from the esbuild
 * bundle, not tsx. One real guest start under libvirtd proves the bundle is complete
 * (native binding, validator, volumes, converter chunks) and cleans up after itself.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, pushTestGuestImages, type LocalRegistry } from '../../helpers/registry.js';
import { callLauncher } from '../../../launcher/server/client.js';
import { validateManifest } from '../../../api/validate.js';
import { pointerToPath } from '../../../launcher/launcher.js';
import {
  REPO, type MonitorHandle, domainListed, domstate, ephemeralFiles, exists, forceCleanup, processesMentioning, runCleanupOnly, killThenCleanUp, testGuestVmi, virsh, waitFor,
} from './harness.js';
import { keyOf as keyFor, launcherBundle as bundleOf, statsOf as statsFor } from '../../../scripts/build-bundles.mjs';

let registry: LocalRegistry;
let image: string;
let work: string;

beforeAll(async () => {
  registry = await startRegistry();
  image = (await pushTestGuestImages(registry)).kernelBootImage;
  work = await mkdtemp(join(tmpdir(), 'vo-bundle-'));
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('launcher bundle', () => {
  it('is built on demand and reused while its sources are unchanged', async () => {
    const warnings: string[] = [];
    const first = await bundleOf({ warn: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    expect(first).toBeDefined();
    expect(await exists(join(first!.dir, 'entry.mjs'))).toBe(true);
    expect(await bundleOf()).toEqual(first);
  });

  it('with a stale manifest, a start waits while another live process holds the build lock, then builds; a stale lock is taken over', async () => {
    const cache = join(REPO, 'node_modules', '.cache', 'virtops');
    const lock = join(cache, 'launcher.lock');
    const script = `import(${JSON.stringify(join(REPO, 'scripts', 'build-bundles.mjs'))}).then(async (m) => { const b = await m.launcherBundle({ warn: (w) => console.error(w) }); console.log(b ? b.dir : 'none'); })`;
    const start = () => {
      const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (c: Buffer) => (out += c));
      p.stderr.on('data', (c: Buffer) => (err += c));
      const done = new Promise<{ out: string; err: string }>((resolve) => p.on('close', () => resolve({ out: out.trim(), err })));
      return { done, exited: () => p.exitCode !== null };
    };
    await rm(join(cache, 'launcher.json'), { force: true });
    // This (live) process holds the lock: the start must wait for it.
    await writeFile(lock, String(process.pid));
    const waiting = start();
    await new Promise((r) => setTimeout(r, 3000));
    expect(waiting.exited(), 'a start did not wait for the build lock').toBe(false);
    await rm(lock);
    const first = await waiting.done;
    expect(first.err).toBe('');
    expect(first.out).toMatch(/launcher-[0-9a-f]{16}$/);
    // A lock left by a process that is gone is taken over at once.
    await rm(join(cache, 'launcher.json'), { force: true });
    await writeFile(lock, '2147483646');
    const second = await start().done;
    expect(second).toEqual(first);
    expect(await exists(lock)).toBe(false);
    expect((await bundleOf())?.dir).toBe(first.out);
  }, 180_000);

  it("is one CommonJS file run from V8's code cache, with the schema's validation code precompiled at build time", async () => {
    const bundle = (await bundleOf())!;
    expect((await readdir(bundle.dir)).filter((f) => !f.endsWith('.v8cache')).sort()).toEqual(['bundle.cjs', 'code-cache.mjs', 'entry.mjs']);
    const text = await readFile(join(bundle.dir, 'bundle.cjs'), 'utf8');
    // generate.ts's table of validators by definition, as it reads after whitespace
    // minification; neither ajv's compiler (core.js) nor the OpenAPI document
    // (structural-schema.ts's import) is in the bundle.
    expect(text).toMatch(/\bprecompiled\s*=\s*\{\s*"v1\.VirtualMachineInstance"\s*:/);
    expect(text.includes('"node_modules/ajv/dist/core.js"') || text.includes('kubevirt_openapi_v1')).toBe(false);
    // import() has no loader in code V8 took from its cache (scripts/code-cache.mjs): the one
    // left is native.ts's fallback for the unbundled launcher.
    expect(text.match(/(?<![\w$.])import\(/g)).toHaveLength(1);
    expect(text).toMatch(/fromRunner\s*\?\s*fromRunner\("@unraid\/libvirt"/);
  });

  it('keys the bundle by the content of its sources', async () => {
    const repo = join(work, 'keyed');
    await mkdir(join(repo, 'launcher'), { recursive: true });
    await writeFile(join(repo, 'launcher', 'a.ts'), 'export const a = 1;\n');
    const before = keyFor(['launcher/a.ts'], repo);
    await writeFile(join(repo, 'launcher', 'a.ts'), 'export const a = 2;\n');
    expect(keyFor(['launcher/a.ts'], repo)).not.toBe(before);
    await writeFile(join(repo, 'launcher', 'a.ts'), 'export const a = 1;\n');
    expect(keyFor(['launcher/a.ts'], repo)).toBe(before);
    await rm(join(repo, 'launcher', 'a.ts'));
    expect(keyFor(['launcher/a.ts'], repo)).not.toBe(before);
  });

  it("compares the sources' stats before hashing them: a rewrite with the same size is noticed, a touch rebuilds nothing", async () => {
    const repo = join(work, 'stats');
    await mkdir(join(repo, 'launcher'), { recursive: true });
    await writeFile(join(repo, 'launcher', 'a.ts'), 'export const a = 1;\n');
    const stats = statsFor(['launcher/a.ts'], repo);
    expect(statsFor(['launcher/a.ts'], repo)).toBe(stats);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(repo, 'launcher', 'a.ts'), 'export const a = 2;\n');
    expect(statsFor(['launcher/a.ts'], repo)).not.toBe(stats);

    // The real bundle: a source touched (same contents) keeps the bundle and records the new stats.
    const bundle = (await bundleOf())!;
    const manifestFile = join(REPO, 'node_modules', '.cache', 'virtops', 'launcher.json');
    const inputs = (JSON.parse(await readFile(manifestFile, 'utf8')) as { inputs: string[] }).inputs;
    const now = new Date();
    await utimes(join(REPO, 'launcher', 'main.ts'), now, now);
    expect(await bundleOf()).toEqual(bundle);
    expect((JSON.parse(await readFile(manifestFile, 'utf8')) as { stats: string }).stats).toBe(statsFor(inputs));
  });
});

/** `node cli/bin.js launcher-monitor ...` as the node agent runs it. */
async function startViaBin(): Promise<MonitorHandle & { stderr: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-bundle-launcher-'));
  const name = `bt-${randomBytes(3).toString('hex')}`;
  const uid = `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`;
  const shareDir = join(dir, 'share');
  const socket = join(shareDir, 'sockets', 'launcher-sock');
  const args = [
    join(REPO, 'cli/bin.js'), 'launcher-monitor', '--qemu-timeout', '60s', '--name', name, '--uid', uid, '--namespace', 'default',
    '--kubevirt-share-dir', shareDir, '--ephemeral-disk-dir', join(dir, 'ephemeral'), '--container-disk-dir', join(dir, 'container-disks'),
    '--grace-period-seconds', '1', '--emulation', 'tcg', '--libvirt-uri', 'qemu:///system', '--image-store', join(work, 'images'),
    '--insecure-registry', registry.host,
  ];
  const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  proc.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc, dir, name, uid, namespace: 'default', socket, shareDir, ephemeralDir: join(dir, 'ephemeral'), domain: `default_${name}`,
    serialLog: '', logs: [], exited, stderr, args,
    call: (method, path, body) => callLauncher(socket, method, path, body),
  };
}

describe('node cli/bin.js launcher-monitor (bundle path)', () => {
  const started: MonitorHandle[] = [];
  afterAll(async () => {
    for (const m of started) await forceCleanup(m);
  });

  it('runs the launcher from the bundle in the launcher-monitor process (one per VM), starts a real domain and leaves nothing behind on SIGTERM', async () => {
    const bundle = (await bundleOf())!;
    const m = await startViaBin();
    started.push(m);
    await waitFor('launcher socket', async () => (await m.call('GET', '/healthz')).status === 200, 60_000);
    // The node agent finds its process by these argv markers; it runs the bundle, no loader,
    // and spawns no second Node process for the launcher.
    const monitorArgv = (await readFile(`/proc/${m.proc.pid}/cmdline`, 'utf8')).split('\0');
    expect(monitorArgv).toEqual(expect.arrayContaining(['launcher-monitor', '--uid', m.uid]));
    const launcherPid = m.proc.pid!;
    expect(monitorArgv.join(' ')).not.toMatch(/tsx/);
    expect((await processesMentioning(m.uid)).filter((p) => p !== launcherPid)).toEqual([]);

    // The bundled validator (precompiled) reports what api/validate.ts reports.
    const valid = testGuestVmi(m, image, 'bundle', { imagePullPolicy: 'IfNotPresent' });
    const invalid = (spec: Record<string, unknown>) => ({ ...valid, spec: { ...valid.spec, ...spec } });
    const cases = [
      invalid({ domain: { devices: {}, cpu: { cores: 'two' } } }),
      invalid({ domain: { devices: { disks: [{ name: 'a', disk: { bus: 'virtio' }, bogus: 1 }] }, memory: { guest: '12Zi' } } }),
      invalid({ domain: { devices: {} }, volumes: [{ name: 'v', containerDisk: { image: 3 } }] }),
      invalid({ domain: { devices: {} }, bogusField: true }),
    ];
    for (const obj of cases) {
      const issues = validateManifest(obj);
      expect(issues.length).toBeGreaterThan(0);
      const rejected = await m.call<{ fieldErrors: { path: string; message: string }[] }>('PUT', '/v1/vmi', obj);
      expect(rejected.status).toBe(400);
      expect(rejected.body.fieldErrors).toEqual(issues.map((i) => ({ path: pointerToPath(i.path), message: i.message + (i.fix ? ` (fix: ${i.fix})` : '') })));
    }
    expect(await domainListed(m.domain)).toBe(false);

    const res = await m.call('PUT', '/v1/vmi', valid);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ result: 'created', state: 'Running' });
    expect(await domstate(m.domain)).toBe('running');
    // Lifecycle events come from polling through the binding: no `virsh event` child.
    expect((await readFile(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8')).trim()).toBe('');
    // The poller (every second) notices a domain stopped behind the launcher's back well
    // before the 5 s level-triggered refresh would.
    await virsh('destroy', m.domain);
    await waitFor('phase after external destroy', async () => (await m.call<{ phase: string }>('GET', '/v1/info')).body.phase !== 'Running', 3_000, 100);

    m.proc.kill('SIGTERM');
    expect((await m.exited).code, m.stderr.join('')).toBe(0);
    expect(await domainListed(m.domain)).toBe(false);
    expect(await exists(m.socket)).toBe(false);
    expect(await processesMentioning(m.uid)).toEqual([]);
  });

  it('SIGKILL of the bundled launcher-monitor: --cleanup-only from the bundle removes the domain, volumes and socket and exits 0', async () => {
    const m = await startViaBin();
    started.push(m);
    await waitFor('launcher socket', async () => (await m.call('GET', '/healthz')).status === 200, 60_000);
    const res = await m.call('PUT', '/v1/vmi', testGuestVmi(m, image, 'bundle-crash', { imagePullPolicy: 'IfNotPresent' }));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await killThenCleanUp(m);
    expect(await domainListed(m.domain)).toBe(false);
    expect(await ephemeralFiles(m)).toEqual([]);
    expect(await exists(m.socket)).toBe(false);
    expect(await processesMentioning(m.uid)).toEqual([]);
  });
});
