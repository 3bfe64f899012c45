/**
 * How the converter reports trouble. Invalid or unsupported input that would change what
 * the guest sees throws a ConversionError naming the field and the fix; input that is
 * harmless to ignore becomes a warning, so nothing is dropped silently.
 */

export class ConversionError extends Error {
  override readonly name = 'ConversionError';
  constructor(
    /** Field path in the VMI, e.g. `spec.domain.devices.disks[1].disk.bus`. */
    readonly path: string,
    /** What is wrong. */
    readonly problem: string,
    /** What to change so conversion succeeds. */
    readonly fix: string,
  ) {
    super(`${path}: ${problem}. Fix: ${fix}`);
  }
}

/** Collects warnings while one VMI is converted; each names the field it is about. */
export class Diagnostics {
  readonly warnings: string[] = [];
  warn(path: string, message: string): void {
    this.warnings.push(`${path}: ${message}`);
  }
}

/** Fails with a ConversionError unless `ok`. Keeps each check in a concern on one line. */
export function check(ok: boolean, path: string, problem: string, fix: string): asserts ok {
  if (!ok) throw new ConversionError(path, problem, fix);
}

/**
 * Warns about keys of `obj` the converter does not handle. The VMI may come from a
 * hand-written manifest carrying KubeVirt fields beyond virtops' subset; those are
 * reported instead of disappearing.
 */
export function warnUnknownKeys(
  diag: Diagnostics,
  obj: object | undefined,
  path: string,
  known: readonly string[],
): void {
  if (!obj) return;
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) diag.warn(`${path}.${key}`, 'not supported by virtops; ignored');
  }
}

/** True unless a KubeVirt feature toggle is explicitly disabled (FeatureState.enabled defaults to true). */
export function enabled(state: { enabled?: boolean } | undefined): boolean {
  return state !== undefined && state.enabled !== false;
}
