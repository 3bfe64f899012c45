import { describe, expect, it } from 'vitest';
import { ceilQuantity, compareQuantities, parseQuantity, QuantityError } from '../../../launcher/convert/quantity.js';

describe('quantity', () => {
  it.each([
    ['128Mi', 134217728n],
    ['1.5Gi', 1610612736n],
    ['1Ki', 1024n],
    ['2Ti', 2199023255552n],
    ['1k', 1000n],
    ['2M', 2000000n],
    ['1G', 1000000000n],
    ['1T', 1000000000000n],
    ['1073741824', 1073741824n],
    ['1e3', 1000n],
    ['1E6', 1000000n],
    ['0.5Ki', 512n],
    ['.5Mi', 524288n],
    ['1.5', 2n], // rounds up like Kubernetes
    ['500m', 1n],
    ['1500m', 2n],
    ['2', 2n],
    [1024, 1024n],
  ] as const)('%s → %s', (q, want) => {
    expect(ceilQuantity(q)).toBe(want);
  });

  it('keeps fractions exact', () => {
    expect(parseQuantity('1.5Gi')).toEqual({ num: 1610612736n, den: 1n });
    expect(parseQuantity('250m')).toEqual({ num: 1n, den: 4n });
    expect(parseQuantity('-1Ki')).toEqual({ num: -1024n, den: 1n });
  });

  it.each(['', 'Gi', '1GB', '1 Gi', '1.2.3', 'abc', '1Gib', '0x10'])('rejects %j with the accepted forms', (q) => {
    expect(() => parseQuantity(q)).toThrow(QuantityError);
    expect(() => parseQuantity(q)).toThrow(/expected e\.g\. 512Mi/);
  });

  it('compares across suffixes', () => {
    expect(compareQuantities('1Gi', '1024Mi')).toBe(0);
    expect(compareQuantities('1G', '1Gi')).toBe(-1);
    expect(compareQuantities('2Gi', '2G')).toBe(1);
  });
});
