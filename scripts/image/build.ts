/**
 * `npm run image`: the virtops OCI image, built here from Debian packages, no base image
 * pulled from anywhere (see scripts/image/README.md). Run through scripts/image/build.sh,
 * which holds the cache lock.
 *
 *   1. root filesystem: mmdebstrap (Debian packages, variant essential, trimmed), an
 *      uncompressed tar cached as ~/.cache/virtops/image/rootfs-<key>.tar;
 *   2. app: this machine's Node binary (/usr/local/bin/node), the tracked sources and the
 *      production node_modules under /opt/virtops, the bundles built inside the rootfs (so
 *      their recorded paths are /opt/virtops/...), `virtops` on PATH; then checks run
 *      inside the rootfs with bwrap (the native libvirt addon loads and talks to libvirt,
 *      `virtops --help`, the launcher bundle, virsh, QEMU);
 *   3. OCI layout: umoci, two layers (rootfs, app), fixed timestamps so the manifest digest
 *      depends on content only; cached as ~/.cache/virtops/image/oci-<key>/ with tags
 *      `<version>-<digest>` and `<version>`;
 *   4. optional copy to --out and push with skopeo to --registry.
 * Logs go to stderr; stdout: a JSON line with --json, then the image reference (last line).
 */
import { createHash } from 'node:crypto';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  APP_PATHS, DEFAULT_ROOTFS, POD_USER, IMAGE_CHECKS, NODE_MODULES_PRUNE_FIND, USAGE, cacheKey, imageRef, imageTag, mib, mmdebstrapArgs,
  parseImageArgs, rootfsKey, topModuleDirs, type ImageOptions, type RootfsRecipe,
} from './plan.js';
import { virtopsVersion } from '../../synth/image.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const CACHE = join(process.env.VIRTOPS_CACHE ?? join(homedir(), '.cache', 'virtops'), 'image');
const HOOK = join(REPO, 'scripts', 'image', 'rootfs-hook.sh');
const APP_DIR = '/opt/virtops';
const IMAGE_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Image timestamps: SOURCE_DATE_EPOCH or the epoch, so equal content gives an equal digest. */
const EPOCH = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
const CREATED = new Date(EPOCH * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const INFO_FILE = 'virtops-image.json';

export interface ImageInfo {
  readonly version: string;
  readonly tag: string;
  readonly digest: string;
  readonly key: string;
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
  /** Seconds the build of this image took (0 parts cached: rootfs included). */
  readonly buildSeconds: number;
  readonly rootfsCached: boolean;
  readonly node: string;
  readonly packages: readonly string[];
}

const log = (msg: string): void => void process.stderr.write(`[image] ${msg}\n`);

function run(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const err = `${String(r.stderr ?? '').trim()}\n${String(r.stdout ?? '').trim()}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.slice(0, 6).join(' ')}${args.length > 6 ? ' ...' : ''} exited with ${r.status ?? r.signal}:\n${err}`);
  }
  return String(r.stdout ?? '');
}

function preflight(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('npm run image needs root (mmdebstrap --mode=root, bwrap over the rootfs, files owned by root in the image): run it as root');
  }
  const missing = ['mmdebstrap', 'umoci', 'skopeo', 'bwrap', 'tar', 'git'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) throw new Error(`missing tools: ${missing.join(', ')}; install them with: bash scripts/setup-host.sh`);
}

function recipe(): RootfsRecipe {
  return {
    ...DEFAULT_ROOTFS,
    ...(process.env.VIRTOPS_IMAGE_MIRROR ? { mirror: process.env.VIRTOPS_IMAGE_MIRROR } : {}),
    ...(process.env.VIRTOPS_IMAGE_SECURITY_MIRROR ? { securityMirror: process.env.VIRTOPS_IMAGE_SECURITY_MIRROR } : {}),
  };
}

/**
 * Drops cache entries of other keys (each is hundreds of MiB), keeping the `keep` newest by
 * mtime (a cache hit touches its entry): a test building from a snapshot of the checkout
 * and a user building from the checkout itself do not evict each other's image.
 */
function pruneCache(prefix: string, keepNewest: number): void {
  const entries = readdirSync(CACHE)
    .filter((n) => n.startsWith(prefix) && !n.includes('.tmp-'))
    .map((n) => ({ n, t: statSync(join(CACHE, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of entries.slice(keepNewest)) rmSync(join(CACHE, n), { recursive: true, force: true });
}

function touch(path: string): void {
  const now = new Date();
  utimesSync(path, now, now);
}

function ensureRootfs(r: RootfsRecipe, rebuild: boolean): { tar: string; key: string; cached: boolean } {
  const version = run('mmdebstrap', ['--version']).trim();
  const key = rootfsKey(r, version, readFileSync(HOOK, 'utf8'));
  const tar = join(CACHE, `rootfs-${key}.tar`);
  if (existsSync(tar) && !rebuild) {
    touch(tar);
    log(`root filesystem cached: ${tar}`);
    return { tar, key, cached: true };
  }
  const tmp = `${tar}.tmp-${process.pid}`;
  log(`building the root filesystem with mmdebstrap from ${r.mirror} (${r.suite}; a few minutes)`);
  const t0 = performance.now();
  try {
    run('mmdebstrap', mmdebstrapArgs(r, tmp, HOOK), { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, tar);
  } finally {
    rmSync(tmp, { force: true });
  }
  log(`root filesystem built in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${mib(statSync(tar).size)}`);
  pruneCache('rootfs-', 1);
  return { tar, key, cached: false };
}

/** Files under APP_PATHS that git tracks or would track (not ignored), with the working tree's content, as a `docker build` of the checkout would. */
/** One source file as read once: what is hashed into the key is what goes into the image. */
interface AppFile { readonly path: string; readonly content: Buffer; readonly mode: number; readonly link?: string }

function appFiles(): AppFile[] {
  return run('git', ['-C', REPO, 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...APP_PATHS])
    .split('\0')
    .filter((f) => f && existsSync(join(REPO, f)))
    .map((path) => {
      const st = lstatSync(join(REPO, path));
      return st.isSymbolicLink()
        ? { path, content: Buffer.from(readlinkSync(join(REPO, path))), mode: 0o777, link: readlinkSync(join(REPO, path)) }
        : { path, content: readFileSync(join(REPO, path)), mode: st.mode & 0o111 ? 0o755 : 0o644 };
    });
}

function prodModules(): string[] {
  const r = spawnSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: REPO, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const dirs = topModuleDirs(REPO, r.stdout ?? '');
  if (!dirs.length) throw new Error(`npm ls --omit=dev found no production modules in ${REPO}/node_modules: run npm ci first`);
  return dirs;
}

function hashFile(h: ReturnType<typeof createHash>, path: string): void {
  h.update(path).update('\0').update(readFileSync(path)).update('\0');
}

/** The image cache key: rootfs, Node binary, app sources, production modules (by lockfile and list), native addon, this builder. */
function imageKey(rootfs: string, files: readonly AppFile[], modules: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`image-v1\0${rootfs}\0${process.version}\0${CREATED}\0`);
  hashFile(h, process.execPath);
  for (const f of files) h.update(`${f.path}\0${f.mode}\0`).update(f.content).update('\0');
  h.update(modules.join('\n'));
  const addon = join(REPO, 'node_modules', '@unraid', 'libvirt', 'build', 'Release', 'libvirt.node');
  if (existsSync(addon)) hashFile(h, addon);
  for (const f of ['build.ts', 'plan.ts', 'container-disk.c']) hashFile(h, join(REPO, 'scripts', 'image', f));
  // container-disk is compiled here: the compiler is an input too.
  h.update(run('gcc', ['-dumpfullversion']));
  return cacheKey([h.digest('hex')]);
}

/** Runs `argv` inside `root` (bwrap: the rootfs as /, own proc/dev/tmp, no network, cleared env). */
function inRoot(root: string, argv: readonly string[]): string {
  return run('bwrap', [
    '--bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp',
    '--unshare-pid', '--unshare-net', '--unshare-ipc', '--die-with-parent', '--clearenv',
    '--setenv', 'PATH', IMAGE_PATH_ENV.slice(5), '--setenv', 'HOME', '/root', '--chdir', APP_DIR,
    '--', ...argv,
  ]);
}

function copyTree(src: string, dst: string): void {
  mkdirSync(dirname(dst), { recursive: true });
  run('cp', ['-a', src, dst]);
}

/** /opt/virtops, node and `virtops` written into the extracted rootfs `root`. */
function stageApp(root: string, files: readonly AppFile[], modules: readonly string[]): void {
  const app = join(root, APP_DIR.slice(1));
  for (const f of files) {
    const dst = join(app, f.path);
    mkdirSync(dirname(dst), { recursive: true });
    if (f.link !== undefined) symlinkSync(f.link, dst);
    else writeFileSync(dst, f.content, { mode: f.mode });
  }
  for (const m of modules) copyTree(join(REPO, m), join(app, m));
  const nm = join(app, 'node_modules');
  run('find', [nm, ...NODE_MODULES_PRUNE_FIND, '-delete']);
  // The native addon: only the module itself (node-gyp leaves objects and makefiles).
  const build = join(nm, '@unraid', 'libvirt', 'build');
  if (existsSync(build)) {
    const addon = readFileSync(join(build, 'Release', 'libvirt.node'));
    rmSync(build, { recursive: true, force: true });
    mkdirSync(join(build, 'Release'), { recursive: true });
    writeFileSync(join(build, 'Release', 'libvirt.node'), addon, { mode: 0o755 });
  }
  // esbuild's copy of its binary for the `esbuild` command (11 MiB); its API, which tsx and
  // the bundle script use, runs @esbuild/linux-x64's.
  rmSync(join(nm, 'esbuild', 'bin', 'esbuild'), { force: true });
  const bin = join(root, 'usr', 'local', 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(process.execPath, join(bin, 'node'));
  chmodSync(join(bin, 'node'), 0o755);
  // Debug sections and local symbols only (-12 MiB for Node 20); the dynamic symbols native
  // addons link against stay (the libvirt check below loads one).
  if (spawnSync('sh', ['-c', 'command -v strip']).status === 0) run('strip', ['--strip-unneeded', join(bin, 'node')]);
  symlinkSync(`${APP_DIR}/cli/bin.js`, join(bin, 'virtops'));
}

/**
 * What the launcher Pod's containers need besides the app: /usr/bin/container-disk (static,
 * as the containerDisk images it runs in have no libc; scripts/image/container-disk.c) and
 * the user 107 the Pod runs as (libvirt's session daemon looks its name up), as KubeVirt's
 * virt-launcher image has it.
 */
function stagePodFiles(root: string): void {
  run('gcc', ['-static', '-Os', '-s', '-o', join(root, 'usr', 'bin', 'container-disk'), join(REPO, 'scripts', 'image', 'container-disk.c')]);
  const add = (file: string, line: string) => {
    const path = join(root, 'etc', file);
    const text = readFileSync(path, 'utf8');
    if (!text.split('\n').some((l) => l.startsWith(line.split(':')[0] + ':'))) writeFileSync(path, `${text.replace(/\n?$/, '\n')}${line}\n`);
  };
  add('group', `${POD_USER.name}:x:${POD_USER.gid}:`);
  add('passwd', `${POD_USER.name}:x:${POD_USER.uid}:${POD_USER.gid}:virtops launcher:/var/run/kubevirt-private:/usr/sbin/nologin`);
}

function checkRoot(root: string): void {
  for (const c of IMAGE_CHECKS) {
    let out: string;
    try {
      out = inRoot(root, c.argv);
    } catch (err) {
      throw new Error(`image check failed: ${c.name}: ${(err as Error).message}`);
    }
    if (!c.expect.test(out)) throw new Error(`image check failed: ${c.name}: output does not match ${c.expect}:\n${out.slice(0, 2000)}`);
  }
  log(`checks passed inside the rootfs (${IMAGE_CHECKS.length})`);
}

interface OciManifest { config: { size: number }; layers: { size: number; digest: string }[] }

function manifestDigest(layout: string, ref: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (!m) throw new Error(`${layout}: no manifest tagged ${ref}`);
  return m.digest;
}

function blob(layout: string, digest: string): Buffer {
  return readFileSync(join(layout, 'blobs', ...digest.split(':')));
}

function buildImage(rootfs: { tar: string; key: string; cached: boolean }, key: string, files: readonly AppFile[], modules: readonly string[]): ImageInfo {
  const t0 = performance.now();
  const work = mkdtempSync(join(CACHE, 'work-'));
  const layout = join(CACHE, `oci-${key}`);
  const tmpLayout = `${layout}.tmp-${process.pid}`;
  try {
    const root = join(work, 'rootfs');
    mkdirSync(root);
    run('tar', ['-xf', rootfs.tar, '-C', root, '--numeric-owner']);
    log('staging /opt/virtops (sources, production node_modules), node, virtops');
    stageApp(root, files, modules);
    stagePodFiles(root);
    for (const b of ['launcher', 'reconciler']) inRoot(root, ['node', `${APP_DIR}/scripts/build-bundles.mjs`, b]);
    checkRoot(root);
    const appTar = join(work, 'app.tar');
    run('tar', ['-C', root, '--sort=name', `--mtime=@${EPOCH}`, '--owner=0', '--group=0', '--numeric-owner',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '--format=posix',
      '-cf', appTar, `.${APP_DIR}`, './usr/local/bin/node', './usr/local/bin/virtops', './usr/bin/container-disk', './etc/passwd', './etc/group']);
    log('packing with umoci');
    const tmpRef = `${tmpLayout}:build`;
    run('umoci', ['init', '--layout', tmpLayout]);
    run('umoci', ['new', '--image', tmpRef]);
    run('umoci', ['raw', 'add-layer', '--image', tmpRef, '--history.created', CREATED, '--history.created_by', `mmdebstrap ${recipe().suite}: ${recipe().packages.join(' ')}`, rootfs.tar]);
    run('umoci', ['raw', 'add-layer', '--image', tmpRef, '--history.created', CREATED, '--history.created_by', `virtops ${virtopsVersion()}: node ${process.version}, ${APP_DIR}`, appTar]);
    run('umoci', ['config', '--image', tmpRef, '--no-history', '--created', CREATED, '--author', 'virtops scripts/image',
      '--config.entrypoint', '/usr/local/bin/virtops', '--config.cmd=--help', '--config.env', IMAGE_PATH_ENV,
      '--config.workingdir', APP_DIR, '--config.label', 'org.opencontainers.image.title=virtops',
      '--config.label', `org.opencontainers.image.version=${virtopsVersion()}`]);
    const digest = manifestDigest(tmpLayout, 'build');
    const tag = imageTag(virtopsVersion(), digest);
    run('umoci', ['tag', '--image', tmpRef, tag]);
    run('umoci', ['tag', '--image', tmpRef, virtopsVersion()]);
    run('umoci', ['rm', '--image', tmpRef]);
    run('umoci', ['gc', '--layout', tmpLayout]);
    const manifestBlob = blob(tmpLayout, digest);
    const manifest = JSON.parse(manifestBlob.toString('utf8')) as OciManifest;
    const info: ImageInfo = {
      version: virtopsVersion(),
      tag,
      digest,
      key,
      compressedBytes: manifestBlob.length + manifest.config.size + manifest.layers.reduce((s, l) => s + l.size, 0),
      uncompressedBytes: statSync(rootfs.tar).size + statSync(appTar).size,
      buildSeconds: Math.round((performance.now() - t0) / 100) / 10,
      rootfsCached: rootfs.cached,
      node: process.version,
      packages: recipe().packages,
    };
    writeFileSync(join(tmpLayout, INFO_FILE), `${JSON.stringify(info, null, 1)}\n`);
    rmSync(layout, { recursive: true, force: true });
    renameSync(tmpLayout, layout);
    pruneCache('oci-', 3);
    return info;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(tmpLayout, { recursive: true, force: true });
  }
}

function copyImage(layout: string, tag: string, dest: string, destTags: readonly string[], tlsVerify: boolean): void {
  for (const t of destTags) {
    run('skopeo', ['copy', '--quiet', ...(tlsVerify ? [] : ['--dest-tls-verify=false']), `oci:${layout}:${tag}`, `${dest}:${t}`]);
  }
}

export function main(opts: ImageOptions): { info: ImageInfo; ref: string; cached: boolean } {
  preflight();
  mkdirSync(CACHE, { recursive: true });
  const t0 = performance.now();
  const r = recipe();
  const rootfs = ensureRootfs(r, opts.rebuild);
  const files = appFiles();
  const modules = prodModules();
  const key = imageKey(rootfs.key, files, modules);
  const layout = join(CACHE, `oci-${key}`);
  let info: ImageInfo;
  let cached = false;
  if (existsSync(join(layout, INFO_FILE)) && !opts.rebuild) {
    info = JSON.parse(readFileSync(join(layout, INFO_FILE), 'utf8')) as ImageInfo;
    cached = true;
    touch(layout);
    log(`image cached: ${layout} (${info.tag})`);
  } else {
    info = buildImage(rootfs, key, files, modules);
    log(`image built: ${info.tag}, ${mib(info.compressedBytes)} compressed, ${mib(info.uncompressedBytes)} uncompressed`);
  }
  const ref = imageRef(opts.registry, info.tag);
  if (opts.out) {
    mkdirSync(opts.out, { recursive: true });
    copyImage(layout, info.tag, `oci:${opts.out}`, [info.tag, info.version], true);
    log(`OCI layout written to ${opts.out} (tags ${info.tag}, ${info.version})`);
  }
  if (opts.push && opts.registry) {
    copyImage(layout, info.tag, `docker://${opts.registry}/virtops`, [info.tag, info.version], false);
    log(`pushed ${ref} and ${imageRef(opts.registry, info.version)}`);
  }
  log(`to name this exact image in dist/: new VirtopsApp({ image: '${ref}' }) in vms/main.ts, then npm run synth`);
  log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s${cached ? ' (cached)' : ''}`);
  return { info, ref, cached };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const opts = parseImageArgs(process.argv.slice(2));
    if (opts.help) {
      process.stdout.write(`${USAGE}\n`);
    } else {
      const { info, ref, cached } = main(opts);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({
          ref, tag: info.tag, digest: info.digest, layout: join(CACHE, `oci-${info.key}`), compressedBytes: info.compressedBytes,
          uncompressedBytes: info.uncompressedBytes, buildSeconds: info.buildSeconds, cached,
        })}\n`);
      }
      process.stdout.write(`${ref}\n`);
    }
  } catch (err) {
    process.stderr.write(`npm run image: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}


