/**
 * Kubernetes resource quantities (`4Gi`, `512M`, `1.5`, `500m`, `1e3`) parsed to numbers
 * and formatted back. Only what rendering needs: bytes for memory, millicores for CPU.
 */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E))?$/;

/** Parses a quantity into its plain numeric value (`1Gi` → 1073741824, `500m` → 0.5). */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = QUANTITY.exec(q.trim());
  if (!m) throw new Error(`invalid quantity '${q}': expected a number with an optional suffix such as 512Mi, 4Gi, 2 or 500m`);
  const value = Number(m[1]);
  if (m[2]) return value * BINARY[m[2]]!;
  if (m[3]) return value * 10 ** Number(m[3].slice(1));
  return value * DECIMAL[m[4] ?? '']!;
}

/** Bytes as the largest exact binary unit (`Mi`/`Gi`), else plain bytes: stable, readable diffs. */
export function formatBytes(bytes: number): string {
  const b = Math.ceil(bytes);
  for (const [suffix, size] of [['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]] as const) {
    if (b % size === 0 && b >= size) return `${b / size}${suffix}`;
  }
  return String(b);
}

export const MiB = 2 ** 20;
