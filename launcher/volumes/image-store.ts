/**
 * The node's image store: OCI images pulled with skopeo, cached by manifest digest and
 * shared by every VM on the node, plus the files (disks, kernels) extracted from them.
 *
 *   <dir>/images/<sha256 hex>/layout/        OCI image layout (skopeo `oci:` transport, tag "image")
 *   <dir>/images/<sha256 hex>/files/<path>   files extracted from the image, read-only
 *   <dir>/refs/<sha256 of the reference>     the digest an image reference last resolved to
 *   <dir>/tmp/                               in-flight pulls and extractions (renamed into place)
 *   <dir>/locks/<key>.lock                   who is pulling an image or extracting a file now
 *
 * One launcher on the node pulls an image (or extracts a file from it) while the others that
 * need it wait for it and then find it in the store: a fleet started from one image used to
 * download and unpack it once per VM starting at the same time. Every write still lands in
 * tmp/ and is renamed into place, so if two ever do the same work (a lock taken over from a
 * holder that stalled) the loser's copy is discarded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandError, ImagePullError, VolumeError } from './errors.js';
import { run, runBytes } from './exec.js';
import { isTransientTransferError, lookupInLayer, normalizeMember, pinnedReference, registryHost, skopeoMessage, type ImageRef } from './image-ref.js';

export interface ImageStoreOptions {
  dir: string;
  /** Registry hosts (`host:port`) reached over plain HTTP / without TLS verification. */
  insecureRegistries?: readonly string[];
  /** Told of each registry transfer that broke and is tried again (for the log). */
  onTransferRetry?: (retry: TransferRetry) => void;
}

export interface TransferRetry {
  image: string;
  /** `inspect` (the manifest) or `copy` (the layers). */
  step: 'inspect' | 'copy';
  /** The try that failed (1-based), of TRANSFER_ATTEMPTS. */
  attempt: number;
  attempts: number;
  /** skopeo's message. */
  error: string;
}

export interface PullOptions {
  /** A containers-auth.json / docker config.json for the registry (from imagePullSecret). */
  authFile?: string;
  /** The VMI volume the pull is for, named in errors. */
  volume?: string;
}

export interface PulledImage {
  image: string;
  /** `sha256:<hex>` of the manifest as the registry served it. */
  digest: string;
  layoutDir: string;
  /** False when the store already held this digest (nothing was downloaded). */
  downloaded: boolean;
}

export interface ExtractedFile {
  path: string;
}

interface OciDescriptor {
  mediaType?: string;
  digest: string;
  platform?: { architecture?: string; os?: string };
}

interface OciDocument {
  mediaType?: string;
  manifests?: OciDescriptor[];
  layers?: OciDescriptor[];
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * A lock is a directory whose mtime its holder refreshes (proper-lockfile); one not refreshed
 * for this long is stale (its holder died, or stalled), and the next waiter takes it over.
 */
const LOCK_STALE_MS = 30_000;
/** How often a waiter looks again, at most (it starts at 50 ms and backs off). */
const LOCK_POLL_MAX_MS = 1_000;
/**
 * A registry transfer that broke (see isTransientTransferError) is tried this many times in
 * all, waiting TRANSFER_RETRY_MS × attempt between tries: one dropped connection should not
 * fail a VM's start and send it into the agent's back-off.
 */
const TRANSFER_ATTEMPTS = 3;
const TRANSFER_RETRY_MS = 500;

async function withTransferRetries<T>(attempt: () => Promise<T>, onRetry: (attempt: number, error: string) => void): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (n >= TRANSFER_ATTEMPTS || !(err instanceof CommandError) || !isTransientTransferError(err.stderr)) throw err;
      onRetry(n, skopeoMessage(err.stderr));
      await sleep(TRANSFER_RETRY_MS * n);
    }
  }
}

export class ImageStore {
  readonly dir: string;
  private readonly insecure: ReadonlySet<string>;
  private readonly onTransferRetry: (retry: TransferRetry) => void;

  constructor(opts: ImageStoreOptions) {
    this.dir = opts.dir;
    this.insecure = new Set(opts.insecureRegistries ?? []);
    this.onTransferRetry = opts.onTransferRetry ?? (() => {});
  }

  private pulled(image: string, digest: string, downloaded: boolean): PulledImage {
    return { image, digest, layoutDir: join(this.imageDir(digest), 'layout'), downloaded };
  }

  private imageDir(digest: string): string {
    return join(this.dir, 'images', digest.replace(/^sha256:/, ''));
  }

  private refFile(image: string): string {
    return join(this.dir, 'refs', sha256(image));
  }

  private retried(image: string, step: TransferRetry['step']): (attempt: number, error: string) => void {
    return (attempt, error) => this.onTransferRetry({ image, step, attempt, attempts: TRANSFER_ATTEMPTS, error });
  }

  private tlsFlag(image: string, flag: '--tls-verify' | '--src-tls-verify'): string[] {
    return this.insecure.has(registryHost(image)) ? [`${flag}=false`] : [];
  }

  /** The digest `image` resolved to when last pulled, if that image is still in the store. */
  async localDigest(image: string): Promise<string | undefined> {
    const digest = await readFile(this.refFile(image), 'utf8').then((s) => s.trim(), () => undefined);
    if (!digest) return undefined;
    return (await exists(join(this.imageDir(digest), 'layout', 'index.json'))) ? digest : undefined;
  }

  /**
   * Runs `fn` while holding the node-wide lock `key` (one holder across every process using
   * this store; the others wait). Losing the lock while holding it (compromised: not refreshed
   * in time) is tolerated: at worst two do the same work, which the renames above allow.
   */
  private async exclusively<T>(key: string, fn: () => Promise<T>): Promise<T> {
    // Loaded on first use: it registers exit hooks (signal-exit) that a process that never pulls need not carry.
    const { lock } = (await import('proper-lockfile')).default;
    const file = join(this.dir, 'locks', key);
    await mkdir(dirname(file), { recursive: true });
    const release = await lock(file, {
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: { forever: true, minTimeout: 50, maxTimeout: LOCK_POLL_MAX_MS, factor: 1.5 },
      onCompromised: () => undefined,
    });
    try {
      return await fn();
    } finally {
      await release().catch(() => undefined);
    }
  }

  /**
   * Makes `ref.image` present per its pull policy. Throws ImagePullError when it cannot.
   * Concurrent pulls of one reference on the node happen one at a time: the first downloads,
   * the rest find its copy (with `Always`, each still asks the registry for the digest).
   */
  async pull(ref: ImageRef, opts: PullOptions = {}): Promise<PulledImage> {
    const local = await this.localDigest(ref.image);
    if (local && ref.pullPolicy !== 'Always') return this.pulled(ref.image, local, false);
    return this.exclusively(`pull-${sha256(ref.image)}`, () => this.pullLocked(ref, opts));
  }

  private async pullLocked(ref: ImageRef, opts: PullOptions): Promise<PulledImage> {
    const { image } = ref;
    const local = await this.localDigest(image);
    if (local && ref.pullPolicy !== 'Always') return this.pulled(image, local, false);
    if (ref.pullPolicy === 'Never') {
      throw new ImagePullError('ErrImageNeverPull', image, 'the image is not present on this node and imagePullPolicy is Never', opts.volume);
    }

    const auth = opts.authFile ? ['--authfile', opts.authFile] : [];
    let digest: string;
    try {
      // The raw manifest is small; its hash is the digest the registry addresses it by.
      const manifest = await withTransferRetries(
        () => runBytes('skopeo', ['inspect', '--raw', ...this.tlsFlag(image, '--tls-verify'), ...auth, `docker://${image}`]),
        this.retried(image, 'inspect'),
      );
      digest = `sha256:${sha256(manifest)}`;
    } catch (err) {
      throw pullError(err, image, opts.volume);
    }
    if (await exists(join(this.imageDir(digest), 'layout', 'index.json'))) {
      await this.recordRef(image, digest);
      return this.pulled(image, digest, false);
    }

    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    const tmp = await mkdtemp(join(this.dir, 'tmp', 'pull-'));
    try {
      const layout = join(tmp, 'layout');
      await withTransferRetries(async () => {
        // A broken attempt may have left part of a layout: each starts from nothing.
        await rm(layout, { recursive: true, force: true });
        return run('skopeo', [
          'copy', '--quiet', ...this.tlsFlag(image, '--src-tls-verify'), ...(opts.authFile ? ['--src-authfile', opts.authFile] : []),
          `docker://${pinnedReference(image, digest)}`, `oci:${layout}:image`,
        ]);
      }, this.retried(image, 'copy')).catch((err: unknown) => {
        throw pullError(err, image, opts.volume);
      });
      await mkdir(join(this.dir, 'images'), { recursive: true });
      await rename(tmp, this.imageDir(digest)).catch(async (err: NodeJS.ErrnoException) => {
        // Another launcher finished the same pull first: keep theirs.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    await this.recordRef(image, digest);
    return this.pulled(image, digest, true);
  }

  private async recordRef(image: string, digest: string): Promise<void> {
    const file = this.refFile(image);
    await mkdir(dirname(file), { recursive: true });
    // A temp name of this writer's own: launchers pulling the same image at once each write
    // theirs and rename it into place (one fixed `.partial` name made one rename find its
    // file gone: ENOENT). The last rename wins; all of them hold the same digest.
    const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
    await writeFile(partial, `${digest}\n`);
    await rename(partial, file).catch(async (err: unknown) => {
      await rm(partial, { force: true });
      throw err;
    });
  }

  /**
   * Extracts one file from the image (top layer wins, whiteouts honoured) and returns its
   * path in the store. With `asDirectory`, `path` names a directory holding exactly one
   * file (containerDisk's `/disk/`). Cached: a second call only checks that it is there.
   */
  async extractFile(pulled: PulledImage, path: string, asDirectory = false, volume?: string): Promise<ExtractedFile> {
    const filesDir = join(this.imageDir(pulled.digest), 'files');
    const what = sha256(`${asDirectory ? 'dir' : 'file'}:${path}`);
    const marker = join(filesDir, '.index', what);
    const extracted = async (): Promise<ExtractedFile | undefined> => {
      const known = await readFile(marker, 'utf8').then((s) => s.trim(), () => undefined);
      return known && (await exists(join(filesDir, known))) ? { path: join(filesDir, known) } : undefined;
    };
    // Checked again under the lock: another launcher may have extracted it meanwhile.
    return (await extracted()) ?? this.exclusively(`extract-${pulled.digest.replace(/^sha256:/, '')}-${what}`, async () => (await extracted()) ?? this.extractLocked(pulled, path, asDirectory, volume, filesDir, marker));
  }

  private async extractLocked(pulled: PulledImage, path: string, asDirectory: boolean, volume: string | undefined, filesDir: string, marker: string): Promise<ExtractedFile> {
    const layers = await this.layers(pulled);
    let member: string | undefined;
    let layerBlob: string | undefined;
    for (const blob of [...layers].reverse()) {
      const listing = (await run('tar', ['-tf', blob])).split('\n').filter(Boolean);
      let hit;
      try {
        hit = lookupInLayer(listing, path, asDirectory);
      } catch (err) {
        throw new VolumeError('InvalidVolume', volume, `image "${pulled.image}": ${(err as Error).message}`);
      }
      if ('deleted' in hit) break;
      if ('found' in hit) {
        member = hit.found;
        layerBlob = blob;
        break;
      }
    }
    if (!member || !layerBlob) {
      throw new VolumeError('InvalidVolume', volume, `image "${pulled.image}" has no ${asDirectory ? `file under ${path}/` : `file ${path}`}`);
    }

    const rel = normalizeMember(member);
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    const tmp = await mkdtemp(join(this.dir, 'tmp', 'extract-'));
    try {
      await run('tar', ['-xf', layerBlob, '-C', tmp, member]);
      const dest = join(filesDir, rel);
      await mkdir(dirname(dest), { recursive: true });
      // Shared by every VM on the node: nobody may write to it (overlays take the writes).
      await chmod(join(tmp, rel), 0o444);
      await rename(join(tmp, rel), dest);
      await mkdir(dirname(marker), { recursive: true });
      await writeFile(marker, `${rel}\n`);
      return { path: dest };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Layer blob paths of the pulled image, bottom first. */
  private async layers(pulled: PulledImage): Promise<string[]> {
    const blob = (d: string): string => join(pulled.layoutDir, 'blobs', ...d.split(':'));
    const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;
    const index = await readJson<{ manifests: (OciDescriptor & { annotations?: Record<string, string> })[] }>(join(pulled.layoutDir, 'index.json'));
    let desc: OciDescriptor | undefined = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'image') ?? index.manifests[0];
    for (let depth = 0; desc && depth < 2; depth++) {
      const doc: OciDocument = await readJson<OciDocument>(blob(desc.digest));
      if (doc.layers) return doc.layers.map((l) => blob(l.digest));
      // An image index: take the linux/amd64 image, the only platform virtops runs.
      desc = doc.manifests?.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? doc.manifests?.[0];
    }
    throw new VolumeError('InvalidVolume', undefined, `image "${pulled.image}" (${pulled.digest}) has no layers in its manifest`);
  }
}

function pullError(err: unknown, image: string, volume?: string): Error {
  if (err instanceof CommandError) return new ImagePullError('ErrImagePull', image, skopeoMessage(err.stderr), volume);
  return err as Error;
}
