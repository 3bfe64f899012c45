/**
 * Shared settings of the fuzz suite (issue 9, part 5): one fixed seed per input path and a
 * fixed number of runs, so CI runs the same cases every time. fast-check prints the seed and
 * the counterexample's path on failure; replay one with
 *
 *   FUZZ_SEED=<seed> FUZZ_RUNS=<runs> npx vitest run --project unit test/unit/fuzz/<file>
 *
 * (FUZZ_SEED overrides every property's seed, FUZZ_RUNS scales every run count: e.g.
 * FUZZ_RUNS=10 runs ten times as many cases for a longer local soak).
 */
import fc from 'fast-check';

export interface FuzzPath {
  seed: number;
  numRuns: number;
}

/** Seeds and runs per input path; the figures in BENCHMARKS.md ("RELIABILITY: fuzzing") come from here. */
export const FUZZ = {
  dslProps: { seed: 0x5eed_0001, numRuns: 1000 },
  dslSizes: { seed: 0x5eed_0002, numRuns: 2000 },
  dslCloudInit: { seed: 0x5eed_0003, numRuns: 300 },
  manifestsMutated: { seed: 0x5eed_0011, numRuns: 300 },
  manifestsYamlText: { seed: 0x5eed_0012, numRuns: 400 },
  manifestsBytes: { seed: 0x5eed_0013, numRuns: 300 },
  manifestsAliasBomb: { seed: 0x5eed_0014, numRuns: 30 },
  manifestsHostile: { seed: 0x5eed_0015, numRuns: 40 },
  webhook: { seed: 0x5eed_0021, numRuns: 2000 },
  webhookSigned: { seed: 0x5eed_0022, numRuns: 1000 },
  apiGuard: { seed: 0x5eed_0031, numRuns: 5000 },
  launcherBody: { seed: 0x5eed_0041, numRuns: 1000 },
  launcherVmi: { seed: 0x5eed_0042, numRuns: 1000 },
  stateFiles: { seed: 0x5eed_0051, numRuns: 300 },
} satisfies Record<string, FuzzPath>;

const seedOverride = process.env['FUZZ_SEED'] === undefined ? undefined : Number(process.env['FUZZ_SEED']);
const runScale = process.env['FUZZ_RUNS'] === undefined ? 1 : Number(process.env['FUZZ_RUNS']);

/** fast-check parameters for one input path: its fixed seed and run count (see FUZZ). */
export function params<T>(path: FuzzPath): fc.Parameters<T> {
  return {
    seed: seedOverride ?? path.seed,
    numRuns: Math.max(1, Math.round(path.numRuns * runScale)),
    // The failure message carries the seed, the shrunk counterexample and its replay path.
    endOnFailure: false,
    // Shrinking a failure among multi-megabyte inputs must not hold CI for ever: cap the
    // whole property (runs + shrinking) at 45 s and count running out of time as a failure.
    interruptAfterTimeLimit: 45_000,
    markInterruptAsFailure: true,
  };
}

/** Runs `fn`; returns what it threw (or undefined). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Errors of the "a programming mistake in this code" kinds: never an answer to bad input. */
export function isCrashKind(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError || !(err instanceof Error);
}
