/**
 * The figures a fault-injection run reports (BENCHMARKS.md, RELIABILITY): seed, faults
 * injected by kind, invariant violations, time to converge after each kind of fault.
 * Printed as one JSON line and written to test/faults/.results/<name>.json (gitignored).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '.results');

export interface Violation {
  step: number;
  fault: string;
  invariant: string;
  detail: string;
}

export interface FaultSummary {
  name: string;
  seed: number;
  machine: string;
  date: string;
  faultsInjected: number;
  byKind: Record<string, number>;
  violations: number;
  violationDetails: Violation[];
  /** Milliseconds from the fault to converged (invariants hold), per kind. */
  convergeMs: Record<string, { n: number; p50: number; max: number }>;
  /** Faults after which the system did not converge within the bound. */
  notConverged: number;
  durationS: number;
  extra?: Record<string, unknown>;
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export class FaultFigures {
  private readonly started = Date.now();
  private readonly converge = new Map<string, number[]>();
  private readonly kinds = new Map<string, number>();
  readonly violations: Violation[] = [];
  private notConverged = 0;
  extra: Record<string, unknown> = {};

  constructor(
    readonly name: string,
    readonly seed: number,
  ) {}

  /** A fault was injected. */
  injected(kind: string): void {
    this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
  }

  /** The system converged `ms` after a fault of this kind. */
  converged(kind: string, ms: number): void {
    const list = this.converge.get(kind) ?? [];
    list.push(ms);
    this.converge.set(kind, list);
  }

  /** It did not converge within the bound (also recorded as a violation by the caller if it wants). */
  timedOut(): void {
    this.notConverged++;
  }

  violation(v: Violation): void {
    this.violations.push(v);
  }

  summary(machine = `${process.platform} ${process.arch}`): FaultSummary {
    const convergeMs: FaultSummary['convergeMs'] = {};
    for (const [k, list] of [...this.converge].sort(([a], [b]) => a.localeCompare(b))) convergeMs[k] = { n: list.length, p50: percentile(list, 50), max: Math.max(...list) };
    return {
      name: this.name,
      seed: this.seed,
      machine,
      date: new Date().toISOString(),
      faultsInjected: [...this.kinds.values()].reduce((a, b) => a + b, 0),
      byKind: Object.fromEntries([...this.kinds].sort(([a], [b]) => a.localeCompare(b))),
      violations: this.violations.length,
      violationDetails: this.violations,
      convergeMs,
      notConverged: this.notConverged,
      durationS: Math.round((Date.now() - this.started) / 1000),
      ...(Object.keys(this.extra).length ? { extra: this.extra } : {}),
    };
  }

  /** Prints the summary as one JSON line and writes it to test/faults/.results/<name>.json. */
  async write(machine?: string): Promise<FaultSummary> {
    const s = this.summary(machine);
    console.log(`FAULT-FIGURES ${JSON.stringify(s)}`);
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, `${this.name}.json`), JSON.stringify(s, null, 2) + '\n');
    return s;
  }
}

/** A one-line description of this machine for the figures (cores, memory, kernel). */
export async function machineLine(): Promise<string> {
  const os = await import('node:os');
  return `${os.cpus().length} cores ${os.cpus()[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`.replace(/\s+/g, ' ');
}
