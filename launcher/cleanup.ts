/**
 * Stopping a domain and removing every trace of a VMI: used by the launcher on SIGTERM and
 * by the monitor after the launcher died. Each step is idempotent and tolerates "already
 * gone", so running it twice (or after a partial run) is safe.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { LibvirtDriver, DomainState } from './libvirt/driver.js';
import { DomainNotFoundError } from './libvirt/errors.js';
import type { VolumeBackend } from './backend.js';
import type { LauncherConfig } from './flags.js';
import { launcherPaths } from './flags.js';
import { readState, removeState } from './state-file.js';

const INACTIVE: ReadonlySet<DomainState | 'Absent'> = new Set(['Absent', 'Shutoff', 'Crashed']);

export async function domainState(driver: LibvirtDriver, name: string): Promise<DomainState | 'Absent'> {
  try {
    return await driver.getState(name);
  } catch (err) {
    if (err instanceof DomainNotFoundError) return 'Absent';
    throw err;
  }
}

export function isActive(state: DomainState | 'Absent'): boolean {
  return !INACTIVE.has(state);
}

/** Polls until `pred(state)` or the deadline; returns the last state seen. */
export async function waitForState(
  driver: LibvirtDriver,
  name: string,
  pred: (s: DomainState | 'Absent') => boolean,
  timeoutMs: number,
  onTick?: (elapsedMs: number) => Promise<void> | void,
): Promise<DomainState | 'Absent'> {
  const start = Date.now();
  for (;;) {
    const s = await domainState(driver, name);
    if (pred(s) || Date.now() - start >= timeoutMs) return s;
    await onTick?.(Date.now() - start);
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, timeoutMs - (Date.now() - start)))));
  }
}

export type StopOutcome = 'not-running' | 'shutdown' | 'destroyed';

/** After a shutdown the guest agent took, how long before ACPI presses join in (a guest that took it but hangs). */
export const AGENT_SHUTDOWN_ALONE_MS = 15_000;

/**
 * The guest agent's shutdown first when `viaAgent` is given (the caller passes it only while
 * the agent answers; it resolves false when the agent did not take it), else (and, after
 * AGENT_SHUTDOWN_ALONE_MS, also) ACPI shutdown, repeated every few seconds (a guest still
 * booting ignores the first press), then destroy once the grace period is over.
 */
export async function gracefulStop(driver: LibvirtDriver, name: string, graceSeconds: number, log?: Logger, viaAgent?: () => Promise<boolean>): Promise<StopOutcome> {
  if (!isActive(await domainState(driver, name))) return 'not-running';
  const state = await domainState(driver, name);
  if (state === 'Paused') await driver.resume(name).catch(() => undefined); // a paused guest cannot see ACPI
  if (graceSeconds > 0) {
    const agentTook = state !== 'Paused' && viaAgent ? await viaAgent().catch(() => false) : false;
    if (!agentTook) await driver.shutdown(name).catch((err: unknown) => log?.warn({ err }, 'ACPI shutdown request failed'));
    // After the agent took it, the first ACPI press waits AGENT_SHUTDOWN_ALONE_MS.
    let lastPress = agentTook ? Date.now() + AGENT_SHUTDOWN_ALONE_MS - 5000 : Date.now();
    const final = await waitForState(driver, name, (s) => !isActive(s), graceSeconds * 1000, async () => {
      if (Date.now() - lastPress >= 5000) {
        lastPress = Date.now();
        await driver.shutdown(name).catch(() => undefined);
      }
    });
    if (!isActive(final)) return 'shutdown';
    log?.warn({ graceSeconds }, 'guest did not power off within the grace period; destroying');
  }
  await destroyIfActive(driver, name);
  return 'destroyed';
}

export async function destroyIfActive(driver: LibvirtDriver, name: string): Promise<void> {
  try {
    await driver.destroy(name);
  } catch (err) {
    if (err instanceof DomainNotFoundError) return;
    if (!isActive(await domainState(driver, name))) return; // stopped meanwhile
    throw err;
  }
}

export async function undefineIfDefined(driver: LibvirtDriver, name: string): Promise<void> {
  try {
    await driver.undefine(name);
  } catch (err) {
    if (!(err instanceof DomainNotFoundError)) throw err;
  }
}

/**
 * The guest's grace period when cleaning up after a dead launcher: the VMI's own, as in any
 * stop, which the launcher recorded in its state file; the --grace-period-seconds flag (the
 * launcher's own deadline, VMI grace + 15 s) only when nothing usable was recorded.
 */
export function cleanupGraceSeconds(recorded: unknown, flagSeconds: number): number {
  return typeof recorded === 'number' && Number.isFinite(recorded) && recorded >= 0 ? Math.min(recorded, flagSeconds) : flagSeconds;
}

/**
 * Everything after the launcher is gone: stop the domain within the grace period,
 * undefine it, release the volumes named in the state file, remove socket and state.
 * Returns the errors it met (empty = clean), carrying on past each one.
 */
export async function cleanupAfterLauncher(opts: {
  config: LauncherConfig;
  driver: LibvirtDriver;
  volumes: VolumeBackend;
  log: Logger;
}): Promise<Error[]> {
  const { config, driver, volumes, log } = opts;
  const paths = launcherPaths(config);
  const errors: Error[] = [];
  const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      log.error({ err, step: what }, `cleanup: ${what} failed`);
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  };
  const state = await readState(paths.stateFile, (movedTo, why) => log.warn({ movedTo, why }, 'cleanup: the launcher state file was corrupt; moved aside, cleaning up by the domain name'));
  const grace = cleanupGraceSeconds(state?.guestGraceSeconds, config.gracePeriodSeconds);
  await step('stop domain', async () => {
    const outcome = await gracefulStop(driver, paths.domainName, grace, log);
    log.info({ domain: paths.domainName, outcome, graceSeconds: grace }, 'cleanup: domain stopped');
  });
  await step('undefine domain', () => undefineIfDefined(driver, paths.domainName));
  if (state?.volumes !== undefined) await step('release volumes', () => volumes.release(state.volumes, config));
  await step('remove socket', () => rm(paths.socket, { force: true }));
  if (errors.length === 0) await step('remove state', () => removeState(paths.stateFile));
  return errors;
}
