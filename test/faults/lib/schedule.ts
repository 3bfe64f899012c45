/**
 * A seeded fault schedule, shared by the fault-injection tests of both modes.
 *
 * The randomness is fast-check's (already a devDependency for the fuzz tests): the whole
 * schedule is one `fc.sample` of an arbitrary under the seed, so one seed always yields the
 * same steps, in the same order, with the same picks. Choices that depend on what is running
 * at the time (which VM to kill) take a step's `pick` modulo the number of candidates, so
 * they replay too as long as the system reaches the same states.
 */
import fc from 'fast-check';

/** One step: a few lifecycle operations, then one fault. */
export interface Step<F extends string, O extends string> {
  /** 0-based step number. */
  index: number;
  ops: { op: O; pick: number }[];
  fault: F;
  /** A free random number for the fault's own choices (`pick % candidates.length`). */
  pick: number;
}

export interface ScheduleOptions<F extends string, O extends string> {
  faults: readonly F[];
  ops: readonly O[];
  /** Number of faults (steps). */
  count: number;
  /** Each fault kind appears at least this often (default 1). */
  minPerFault?: number;
  /** Lifecycle operations before each fault, [min, max] (default [0, 2]). */
  opsPerStep?: readonly [number, number];
  /** Relative weights of the fault kinds for the slots beyond the minimum (default equal). */
  weights?: Partial<Record<F, number>>;
}

/** The seed: `$VIRTOPS_FAULT_SEED` when set (replay), else a random one; printed either way. */
export function faultSeed(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = console.log): number {
  const raw = env.VIRTOPS_FAULT_SEED;
  let seed: number;
  if (raw !== undefined && raw !== '') {
    seed = Number(raw);
    if (!Number.isSafeInteger(seed)) throw new Error(`VIRTOPS_FAULT_SEED=${JSON.stringify(raw)} is not an integer; set it to the seed a failed run printed, or unset it for a random one`);
  } else {
    seed = Math.floor(Math.random() * 2 ** 31);
  }
  log(`fault schedule seed: ${seed} (replay: VIRTOPS_FAULT_SEED=${seed})`);
  return seed;
}

/** How to replay a run, for failure messages. */
export function replayHint(seed: number, testFile: string): string {
  return `replay with: VIRTOPS_FAULT_SEED=${seed} npx vitest run ${testFile}`;
}

/** The schedule for `seed`: a pure function of its arguments. */
export function buildSchedule<F extends string, O extends string>(seed: number, opts: ScheduleOptions<F, O>): Step<F, O>[] {
  const min = opts.minPerFault ?? 1;
  const [opsMin, opsMax] = opts.opsPerStep ?? [0, 2];
  if (opts.faults.length === 0) throw new Error('buildSchedule: faults is empty; name at least one fault kind');
  if (opts.ops.length === 0 && opsMax > 0) throw new Error('buildSchedule: ops is empty but opsPerStep allows operations; pass ops or opsPerStep [0, 0]');
  const fixed = opts.faults.flatMap((f) => Array.from({ length: min }, () => f));
  if (fixed.length > opts.count) throw new Error(`buildSchedule: count ${opts.count} is below faults.length × minPerFault = ${fixed.length}; raise count or lower minPerFault`);
  const weighted = fc.oneof(...opts.faults.map((f) => ({ arbitrary: fc.constant(f), weight: opts.weights?.[f] ?? 1 })).filter((w) => w.weight > 0));
  const arb = fc
    .array(weighted, { minLength: opts.count - fixed.length, maxLength: opts.count - fixed.length })
    .chain((extra) => fc.shuffledSubarray([...fixed, ...extra], { minLength: opts.count, maxLength: opts.count }))
    .chain((order) =>
      fc.tuple(
        fc.constant(order),
        fc.array(fc.tuple(fc.array(fc.record({ op: fc.constantFrom(...(opts.ops.length ? opts.ops : (['noop'] as unknown as O[]))), pick: fc.nat() }), { minLength: opsMin, maxLength: opsMax }), fc.nat()), { minLength: opts.count, maxLength: opts.count }),
      ),
    );
  const [order, rest] = fc.sample(arb, { seed, numRuns: 1 })[0]!;
  return order.map((fault, index) => ({ index, fault, ops: rest[index]![0], pick: rest[index]![1] }));
}

/** Counts of each fault kind in a schedule. */
export function countByKind<F extends string>(steps: readonly { fault: F }[]): Record<F, number> {
  const out = {} as Record<F, number>;
  for (const s of steps) out[s.fault] = (out[s.fault] ?? 0) + 1;
  return out;
}
