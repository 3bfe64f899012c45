import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TOOLS_KUBE_DIR, defaultBinDir } from './versions.js';

/** The two binaries build.sh produces: `kube` (apiserver, scheduler, controller-manager) and `etcd`. */
export interface Binaries {
  readonly binDir: string;
  readonly kube: string;
  readonly etcd: string;
}

export function binariesIn(binDir: string): Binaries {
  return { binDir, kube: join(binDir, 'kube'), etcd: join(binDir, 'etcd') };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function binariesPresent(binDir: string = defaultBinDir()): boolean {
  const b = binariesIn(binDir);
  return isExecutable(b.kube) && isExecutable(b.etcd);
}

/** True when a `go` toolchain is on PATH (needed only to build, not to run). */
export function goAvailable(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

export class GoMissingError extends Error {
  constructor(binDir: string) {
    super(
      `the local control plane is not built (${binDir} has no kube/etcd) and Go is not installed: ` +
        'install Go >= 1.26 and run `virtops testenv build` (or bash tools/kube/build.sh)',
    );
    this.name = 'GoMissingError';
  }
}

export interface EnsureBinariesOptions {
  /** Where the binaries live; defaults to the versioned cache dir. */
  readonly binDir?: string;
  /** Each progress line of the build (none when the binaries are already there). */
  readonly onProgress?: (line: string) => void;
}

/**
 * Returns the control-plane binaries, building them with tools/kube/build.sh when missing
 * (cold: tens of minutes; build.sh takes a lock, so concurrent callers wait for one build).
 */
export async function ensureBinaries(options: EnsureBinariesOptions = {}): Promise<Binaries> {
  const binDir = options.binDir ?? defaultBinDir();
  if (binariesPresent(binDir)) return binariesIn(binDir);
  if (!goAvailable()) throw new GoMissingError(binDir);
  await runBuildScript(join(TOOLS_KUBE_DIR, 'build.sh'), cacheRootOf(binDir), options.onProgress);
  if (!binariesPresent(binDir)) throw new Error(`tools/kube/build.sh finished but ${binDir} has no kube/etcd`);
  return binariesIn(binDir);
}

/** Runs a build script with VIRTOPS_CACHE set; progress per line; throws with the last lines on failure. */
export async function runBuildScript(script: string, cache: string, onProgress: (line: string) => void = () => {}): Promise<void> {
  const child = spawn('bash', [script], { env: { ...process.env, VIRTOPS_CACHE: cache }, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      onProgress(line);
    });
  }
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${script} failed (exit ${code}); last output:\n${tail.join('\n')}`);
}

/** build.sh derives `<cache>/kube/<versions>` from VIRTOPS_CACHE; invert that for a custom binDir. */
export function cacheRootOf(binDir: string): string {
  const parts = binDir.split('/');
  if (parts.length >= 3 && parts[parts.length - 2] === 'kube') return parts.slice(0, -2).join('/');
  throw new Error(`binDir ${binDir}: to build into it, it must look like <cache>/kube/<k8s>-<etcd> (or pass a binDir that already holds kube and etcd)`);
}
