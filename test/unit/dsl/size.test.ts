import { describe, expect, it } from 'vitest';
import { Cpu, isQuantity, quantityValue, Size } from '../../../dsl/index.js';

describe('Size factories render the largest exact binary unit', () => {
  it.each([
    [Size.bytes(0), '0', 0],
    [Size.bytes(1000), '1000', 1000],
    [Size.kibibytes(1), '1Ki', 1024],
    [Size.mebibytes(512), '512Mi', 512 * 2 ** 20],
    [Size.mebibytes(2048), '2Gi', 2 * 2 ** 30],
    [Size.gibibytes(4), '4Gi', 4 * 2 ** 30],
    [Size.gibibytes(1.5), '1536Mi', 1.5 * 2 ** 30],
    [Size.tebibytes(1), '1Ti', 2 ** 40],
  ])('%s → %s', (size, quantity, bytes) => {
    expect(size.toQuantity()).toBe(quantity);
    expect(size.toBytes()).toBe(bytes);
    expect(String(size)).toBe(quantity);
  });

  it.each([
    [() => Size.gibibytes(-1), /Size.gibibytes\(-1\).*>= 0.*Fix/],
    [() => Size.mebibytes(Number.NaN), /finite/],
    [() => Size.bytes(1.5), /not a whole number of bytes.*Fix/],
  ])('rejects bad amounts (%#)', (make, message) => {
    expect(make).toThrow(message);
  });
});

describe('Size.parse', () => {
  it.each([
    ['4Gi', 4 * 2 ** 30],
    ['512Mi', 512 * 2 ** 20],
    ['4G', 4e9],
    ['1k', 1000],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['1e3', 1000],
    ['123', 123],
  ])('%s is %d bytes and renders as written', (text, bytes) => {
    const size = Size.parse(text);
    expect(size.toBytes()).toBe(bytes);
    expect(size.toQuantity()).toBe(text);
  });

  it.each([
    ['4GB', /not a Kubernetes quantity.*Fix: .*'4Gi'/],
    ['', /not a Kubernetes quantity/],
    [' 4Gi', /not a Kubernetes quantity/],
    ['-1Gi', /cannot be negative/],
    ['500m', /not a whole number of bytes.*milli/],
    ['four', /not a Kubernetes quantity/],
  ])('rejects %j', (text, message) => {
    expect(() => Size.parse(text)).toThrow(message);
  });
});

describe('Cpu', () => {
  it.each([
    [Cpu.units(2), '2'],
    [Cpu.units(0.5), '500m'],
    [Cpu.millis(250), '250m'],
    [Cpu.parse('1.5'), '1.5'],
  ])('renders %s', (cpu, quantity) => {
    expect(cpu.toQuantity()).toBe(quantity);
  });

  it('rejects non-positive and malformed amounts', () => {
    expect(() => Cpu.units(0)).toThrow(/> 0/);
    expect(() => Cpu.units(0.0001)).toThrow(/millicore/);
    expect(() => Cpu.millis(1.5)).toThrow(/whole number/);
    expect(() => Cpu.parse('two')).toThrow(/Fix/);
  });
});

describe('quantity helpers', () => {
  it.each([
    ['4Gi', true, 4 * 2 ** 30], ['500m', true, 0.5], ['+1', true, 1], ['.5', true, 0.5], ['1E2', true, 100],
    ['4 Gi', false, undefined], ['Gi', false, undefined], ['4gi', false, undefined], ['4iB', false, undefined],
  ])('%j valid=%s value=%s', (text, valid, value) => {
    expect(isQuantity(text)).toBe(valid);
    expect(quantityValue(text)).toBe(value);
  });
});
