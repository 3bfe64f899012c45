/**
 * How every benchmark reports (issue 15, part 6): its human-readable figures on stdout, or,
 * with `--json`, exactly one JSON line on stdout (the human text then goes to stderr), so the
 * numbers in BENCHMARKS.md can be regenerated and compared by a script. Each line names the
 * benchmark and carries the machine and the moment, which every recorded figure needs.
 */
import { availableParallelism, loadavg, totalmem } from 'node:os';

/** True when the benchmark was run with `--json`. */
export const JSON_OUTPUT = process.argv.includes('--json');

/** `--json` for benchmarks that parse their flags with node:util's parseArgs (strict). */
export const JSON_FLAG = { json: { type: 'boolean', default: false } } as const;

/** A line of the human report: stdout, or stderr under `--json` (stdout holds only the JSON). */
export function say(line = ''): void {
  (JSON_OUTPUT ? process.stderr : process.stdout).write(`${line}\n`);
}

/** The benchmark's figures as one JSON line on stdout, under `--json` only. */
export function emitJson(bench: string, figures: Record<string, unknown>): void {
  if (!JSON_OUTPUT) return;
  const machine = { cores: availableParallelism(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage1m: Math.round(loadavg()[0]! * 10) / 10 };
  process.stdout.write(`${JSON.stringify({ bench, at: new Date().toISOString(), machine, ...figures })}\n`);
}

/**
 * When up first recorded a VM's event (ms since the epoch), from the VM as its API shows it:
 * e.g. its `StatusChanged … → Running`, the moment its VMI phase became Running, as
 * KubeVirt's perf job reads creation → Running from the VMI's phase transitions.
 */
export function eventMs(v: { events?: { reason: string; message: string; time: string; firstTime?: string }[] }, reason: string, message?: RegExp): number | undefined {
  const e = v.events?.find((x) => x.reason === reason && (!message || message.test(x.message)));
  return e ? Date.parse(e.firstTime ?? e.time) : undefined;
}
