/**
 * Kubernetes resource quantities (`128Mi`, `1.5Gi`, `500m`, `1e3`, `2`), parsed exactly.
 *
 * Grammar (k8s.io/apimachinery resource.Quantity): an optionally signed decimal number
 * followed by a binary-SI suffix (Ki Mi Gi Ti Pi Ei), a decimal-SI suffix (n u m "" k M G
 * T P E) or a decimal exponent (e3, E-2). Values are kept as a fraction of BigInts so
 * `1.5Gi` is exactly 1610612736 and nothing drifts through floating point.
 */

export interface Fraction {
  num: bigint;
  den: bigint;
}

const BINARY: Record<string, bigint> = {
  Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n,
};
const DECIMAL_EXP: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

/** Parses a quantity into an exact fraction; throws QuantityError with the accepted forms. */
export function parseQuantity(input: string | number): Fraction {
  const text = String(input).trim();
  const m = QUANTITY.exec(text);
  if (!m) {
    throw new QuantityError(
      `"${text}" is not a Kubernetes quantity (expected e.g. 512Mi, 1.5Gi, 2G, 500m or 1073741824)`,
    );
  }
  const [, sign, number, suffix = ''] = m;
  const [whole, frac = ''] = number!.split('.');
  let num = BigInt((whole || '0') + frac) * (sign === '-' ? -1n : 1n);
  let den = 10n ** BigInt(frac.length);
  let exp = 0;
  if (suffix in BINARY) num *= BINARY[suffix]!;
  else if (suffix in DECIMAL_EXP) exp = DECIMAL_EXP[suffix]!;
  else exp = Number(suffix.slice(1));
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den *= 10n ** BigInt(-exp);
  return reduce({ num, den });
}

/** The quantity rounded up to a whole number (bytes, vCPUs): Kubernetes rounds up too. */
export function ceilQuantity(input: string | number): bigint {
  const { num, den } = parseQuantity(input);
  const q = num / den;
  return num % den > 0n ? q + 1n : q;
}

export function compareQuantities(a: string | number, b: string | number): number {
  const x = parseQuantity(a);
  const y = parseQuantity(b);
  const d = x.num * y.den - y.num * x.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function reduce(f: Fraction): Fraction {
  const g = gcd(f.num < 0n ? -f.num : f.num, f.den);
  return g > 1n ? { num: f.num / g, den: f.den / g } : f;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}
