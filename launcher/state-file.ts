/**
 * The launcher's persisted state: just enough for the monitor to clean up after the
 * launcher died (which domain, which volumes). Written atomically before a domain is
 * defined, removed once everything is released.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface LauncherState {
  domainName: string;
  uid: string;
  /** VolumeBackend handle of the materialised volumes, if any. */
  volumes?: unknown;
  launcherPid: number;
  /**
   * The VMI's own grace period (spec.terminationGracePeriodSeconds): what the monitor gives
   * the guest when it cleans up after a dead launcher. --grace-period-seconds is the launcher's
   * deadline (VMI grace + 15 s, api/grace.ts), not the guest's.
   */
  guestGraceSeconds?: number;
}

export async function writeState(file: string, state: LauncherState): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
  await rename(tmp, file);
}

export async function readState(file: string): Promise<LauncherState | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LauncherState;
  } catch {
    return null;
  }
}

export async function removeState(file: string): Promise<void> {
  await rm(file, { force: true });
}
