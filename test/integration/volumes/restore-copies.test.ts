/**
 * restoreCopies (reconciler/snapshot-copy.ts, both modes) into a VM that does not exist: a new
 * claim is never made over one that exists, except the half-made claim of the very same
 * restore cut short (an agent or `up` restart between the copy and its status), which the run
 * again takes over instead of refusing it and leaving it behind. Real files, real cp.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreStep } from '../../../api/snapshot.js';
import { claimFile } from '../../../launcher/volumes/import.js';
import { restoreCopies } from '../../../reconciler/snapshot-copy.js';

describe('restoreCopies into new claims', () => {
  let work: string;
  let snapshotDir: string;
  let pvcDir: string;
  const steps: RestoreStep[] = [{ kind: 'claim', volume: 'data', claim: 'restore-1234abcd-data', file: 'data.img' }];
  const run = (restoreUid: string) => restoreCopies({ namespace: 'ns', snapshotDir, snapshotUid: 'snap-uid', steps, targetExists: false, restoreUid, pvcDir, signal: AbortSignal.timeout(30_000) });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'vo-restore-copies-'));
    snapshotDir = join(work, 'snap');
    pvcDir = join(work, 'pvcs');
    await mkdir(snapshotDir, { recursive: true });
    await writeFile(join(snapshotDir, 'data.img'), 'first label');
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('makes the claim, takes over its own half-made claim when run again, and refuses one it did not make', async () => {
    const dest = claimFile(pvcDir, 'ns', 'restore-1234abcd-data');
    expect(await run('restore-a')).toMatchObject({ restores: [{ volumeName: 'data', persistentVolumeClaim: 'restore-1234abcd-data' }] });
    expect(await readFile(dest, 'utf8')).toBe('first label');

    // The same restore again (its status never written): its own claim, copied anew.
    await writeFile(dest, 'half written');
    expect(await run('restore-a')).toMatchObject({ restores: [{ volumeName: 'data' }] });
    expect(await readFile(dest, 'utf8')).toBe('first label');

    // Another restore naming the same claim: refused, the claim untouched.
    await writeFile(dest, 'the user wrote this');
    expect(await run('restore-b')).toEqual({ error: expect.stringContaining('claim ns/restore-1234abcd-data exists already') });
    expect(await readFile(dest, 'utf8')).toBe('the user wrote this');
  });
});
