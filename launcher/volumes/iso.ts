import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import type { IsoLayout } from './cloud-init.js';
import { run } from './exec.js';

/**
 * Writes `layout` as an ISO 9660 image (Rock Ridge + Joliet, so names like `meta-data`
 * survive) at `isoPath`. Files are staged in the system temp dir, the image is written
 * next to its final name and renamed, so a crash never leaves a half-written ISO behind
 * under the real name.
 */
export async function writeIso(isoPath: string, layout: IsoLayout): Promise<void> {
  const staging = await mkdtemp(join(tmpdir(), 'virtops-iso-'));
  const partial = `${isoPath}.partial`;
  try {
    for (const [rel, contents] of Object.entries(layout.files)) {
      const clean = normalize(rel);
      if (clean.startsWith('..') || clean.startsWith('/')) throw new Error(`ISO file path "${rel}" leaves the image root`);
      await mkdir(dirname(join(staging, clean)), { recursive: true });
      await writeFile(join(staging, clean), contents);
    }
    await mkdir(dirname(isoPath), { recursive: true });
    // genisoimage, not `xorriso -as mkisofs`: same image, but xorriso idles ~100 ms before
    // exiting, which was most of a VM's volume preparation time (bench/launcher.ts).
    await run('genisoimage', ['-quiet', '-o', partial, '-V', layout.volumeId, '-J', '-r', staging]);
    await rename(partial, isoPath);
  } finally {
    await rm(partial, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
