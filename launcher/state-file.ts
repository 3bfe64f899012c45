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

/**
 * The state, or null when there is none. A file that does not parse or is not a state (a torn
 * disk, a hand edit) is never trusted: it is moved to `<file>.corrupt-<time>` for inspection
 * and read as none, so the monitor cleans up by what it knows itself (the domain name).
 */
export async function readState(file: string, onCorrupt?: (movedTo: string, why: string) => void): Promise<LauncherState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  let why = 'not a launcher state (domainName, uid)';
  try {
    const s = JSON.parse(text) as Partial<LauncherState> | null;
    if (typeof s === 'object' && s !== null && typeof s.domainName === 'string' && typeof s.uid === 'string') return s as LauncherState;
  } catch (err) {
    why = (err as Error).message;
  }
  const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await rename(file, movedTo).catch(() => undefined);
  onCorrupt?.(movedTo, why);
  return null;
}

export async function removeState(file: string): Promise<void> {
  await rm(file, { force: true });
}
