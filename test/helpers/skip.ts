/**
 * Why a test file (or test) cannot run here, said out loud: a skip names its reason on
 * stderr, and under CI=true it is a failure instead, so a missing prerequisite never hides a
 * test that CI is meant to run. Returns the reason (skip) or undefined (run).
 */
export function skipReason(what: string, reasons: Record<string, boolean>): string | undefined {
  const why = Object.entries(reasons).filter(([, missing]) => missing).map(([reason]) => reason);
  if (!why.length) return undefined;
  const reason = `${what}: ${why.join('; ')}`;
  if (process.env.CI === 'true') throw new Error(`cannot skip under CI=true: ${reason}`);
  process.stderr.write(`SKIPPED ${reason}\n`);
  return reason;
}

/** Real kubelet nodes change host state (sysctls, iptables, mounts, cgroups): root only. */
export const NOT_ROOT = 'needs root (a real kubelet node changes sysctls, iptables, mounts and cgroups)';
