/**
 * Sizes (memory, disk capacity) and CPU amounts, rendered as Kubernetes resource quantities.
 *
 * Factories validate eagerly and throw: a bad literal in a `vms/` file is a programming
 * error best reported at the line that wrote it. Quantities that reach a manifest by other
 * routes (JSON patches) are checked again at synth time by the VM validator.
 */

/** Kubernetes' quantity grammar: a signed decimal number with an optional suffix. */
const QUANTITY = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const PARTS = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const MULTIPLIER: Record<string, number> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/** Largest first, so rendering picks the most readable exact unit. */
const BINARY_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10],
];

/** True when `value` is a syntactically valid Kubernetes quantity (`4Gi`, `500m`, `1e3`, `2`). */
export function isQuantity(value: string): boolean {
  return QUANTITY.test(value);
}

/** The numeric value of a quantity (`1Ki` → 1024, `500m` → 0.5), or undefined when invalid. */
export function quantityValue(value: string): number | undefined {
  const m = PARTS.exec(value);
  if (!m) return undefined;
  const suffix = m[2] ?? '';
  const multiplier = suffix === '' ? 1 : /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : MULTIPLIER[suffix]!;
  return Number(m[1]) * multiplier;
}

/** An amount of bytes: guest memory, memory requests/limits, disk capacity. */
export class Size {
  /** @param amount whole bytes, >= 0 */
  public static bytes(amount: number): Size {
    return Size.fromUnit('bytes', amount, 1);
  }

  public static kibibytes(amount: number): Size {
    return Size.fromUnit('kibibytes', amount, 2 ** 10);
  }

  public static mebibytes(amount: number): Size {
    return Size.fromUnit('mebibytes', amount, 2 ** 20);
  }

  public static gibibytes(amount: number): Size {
    return Size.fromUnit('gibibytes', amount, 2 ** 30);
  }

  public static tebibytes(amount: number): Size {
    return Size.fromUnit('tebibytes', amount, 2 ** 40);
  }

  /**
   * Parses a Kubernetes quantity such as `4Gi`, `512Mi` or `4G` (decimal: 4·10⁹ bytes).
   * The text is kept as written, so `Size.parse('4G').toQuantity()` is `4G`.
   * @throws when the text is not a quantity, is negative, or is not a whole number of bytes
   */
  public static parse(quantity: string): Size {
    const bytes = quantityValue(quantity);
    if (bytes === undefined) {
      throw new Error(
        `Size.parse('${quantity}'): not a Kubernetes quantity. Fix: write a number with an optional unit suffix, e.g. '512Mi', '4Gi' or '4G'`,
      );
    }
    if (bytes < 0) {
      throw new Error(`Size.parse('${quantity}'): a size cannot be negative. Fix: use a positive amount such as '4Gi'`);
    }
    if (!Number.isInteger(bytes)) {
      throw new Error(
        `Size.parse('${quantity}'): ${bytes} is not a whole number of bytes. Fix: use a byte unit such as 'Mi' or 'Gi' (not 'm', which means milli)`,
      );
    }
    return new Size(bytes, quantity);
  }

  private static fromUnit(unit: string, amount: number, multiplier: number): Size {
    const bytes = amount * multiplier;
    if (!Number.isFinite(amount) || amount < 0) {
      throw new Error(`Size.${unit}(${amount}): the amount must be a finite number >= 0. Fix: pass a non-negative number`);
    }
    if (!Number.isInteger(bytes)) {
      throw new Error(`Size.${unit}(${amount}): ${bytes} is not a whole number of bytes. Fix: use a smaller unit with a whole amount`);
    }
    // Past 2^53 a number is not exact and renders in exponent form (1e+21), which is not the
    // quantity meant (and `1e+21Ki`-style text is not a quantity at all).
    if (!Number.isSafeInteger(bytes)) {
      throw new Error(`Size.${unit}(${amount}): ${bytes} bytes is too large to be exact (over 8 PiB). Fix: write the quantity as text, e.g. Size.parse('16Pi')`);
    }
    return new Size(bytes);
  }

  private constructor(
    /** The size in bytes. */
    public readonly bytes: number,
    private readonly text?: string,
  ) {}

  /** The size in bytes. */
  public toBytes(): number {
    return this.bytes;
  }

  /**
   * The Kubernetes quantity: the parsed text as written, otherwise the largest binary unit
   * that represents the size exactly (`Size.mebibytes(2048)` → `2Gi`), else plain bytes.
   */
  public toQuantity(): string {
    if (this.text !== undefined) return this.text;
    for (const [suffix, unit] of BINARY_UNITS) {
      if (this.bytes >= unit && this.bytes % unit === 0) return `${this.bytes / unit}${suffix}`;
    }
    return String(this.bytes);
  }

  public toString(): string {
    return this.toQuantity();
  }
}

/** An amount of CPU for resource requests/limits (`resources.requests.cpu`). */
export class Cpu {
  /** Whole or fractional CPUs: `Cpu.units(2)` → `2`, `Cpu.units(0.5)` → `500m`. */
  public static units(amount: number): Cpu {
    if (!Number.isFinite(amount) || amount <= 0) {
      throw new Error(`Cpu.units(${amount}): the amount must be a finite number > 0. Fix: pass e.g. 1 or 0.5`);
    }
    const millis = amount * 1000;
    if (!Number.isInteger(millis)) {
      throw new Error(`Cpu.units(${amount}): finer than 1 millicore. Fix: round to three decimals`);
    }
    if (!Number.isSafeInteger(millis)) {
      throw new Error(`Cpu.units(${amount}): too large to be exact (it would render as ${amount}). Fix: use an amount below ${Math.floor(Number.MAX_SAFE_INTEGER / 1000)}, or Cpu.parse with the quantity as text`);
    }
    return new Cpu(Number.isInteger(amount) ? String(amount) : `${millis}m`);
  }

  /** Millicores: `Cpu.millis(250)` → `250m`. */
  public static millis(amount: number): Cpu {
    if (!Number.isInteger(amount) || amount <= 0) {
      throw new Error(`Cpu.millis(${amount}): the amount must be a whole number > 0. Fix: pass e.g. 250`);
    }
    if (!Number.isSafeInteger(amount)) {
      throw new Error(`Cpu.millis(${amount}): too large to be exact (it would render as ${amount}m, not a quantity). Fix: use an amount up to ${Number.MAX_SAFE_INTEGER}, or Cpu.parse with the quantity as text`);
    }
    return new Cpu(`${amount}m`);
  }

  /** Parses a CPU quantity such as `2`, `1.5` or `500m`. */
  public static parse(quantity: string): Cpu {
    const value = quantityValue(quantity);
    if (value === undefined || value <= 0) {
      throw new Error(`Cpu.parse('${quantity}'): not a positive Kubernetes quantity. Fix: write e.g. '2', '1.5' or '500m'`);
    }
    return new Cpu(quantity);
  }

  private constructor(private readonly quantity: string) {}

  public toQuantity(): string {
    return this.quantity;
  }

  public toString(): string {
    return this.quantity;
  }
}
