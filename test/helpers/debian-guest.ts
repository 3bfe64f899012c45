import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { pushOciLayout, type LocalRegistry } from './registry.js';

/** The Debian 12 guest built by scripts/guest-image/build.sh (its info.json). */
export interface DebianGuest {
  key: string;
  kernelVersion: string;
  /** The qcow2 on this host. */
  disk: string;
  /** Where the disk sits inside the containerDisk image (`/disk/debian-12.qcow2`). */
  diskPath: string;
  /** OCI layout, tag `latest`: the KubeVirt containerDisk. */
  ociDisk: string;
  qcow2Bytes: number;
  virtualBytes: number;
  containerDiskBytes: number;
}

const SCRIPT = fileURLToPath(new URL('../../scripts/guest-image/build.sh', import.meta.url));

let cached: Promise<DebianGuest> | undefined;

/**
 * Builds the Debian guest image if the cache lacks it (minutes, cold) and returns its
 * paths; a cache hit costs a hash of the build script.
 */
export function ensureDebianGuest(): Promise<DebianGuest> {
  cached ??= (async () => {
    const { stdout } = await execa('bash', [SCRIPT], { stderr: 'inherit' });
    const dir = stdout.trim().split('\n').at(-1)!;
    return JSON.parse(await readFile(`${dir}/info.json`, 'utf8')) as DebianGuest;
  })();
  return cached;
}

/** Pushes the Debian containerDisk as `<registry>/virtops/debian-12:latest`; returns that reference. */
export async function pushDebianGuestImage(registry: LocalRegistry): Promise<string> {
  const guest = await ensureDebianGuest();
  return pushOciLayout(registry, guest.ociDisk, 'virtops/debian-12');
}
