import { describe, expect, it } from 'vitest';
import { arr, call, evaluate, json, lit, namesUsed, newExpr, obj, print, printString, ref } from '../../../dsl/import/code.js';
import * as dsl from '../../../dsl/index.js';

describe('printString', () => {
  it.each([
    ['plain', "'plain'"],
    ["it's", "'it\\'s'"],
    ['say "hi"', `'say "hi"'`],
    ['tab\there', "'tab\\there'"],
    ['line1\nline2', '`line1\nline2`'],
    ['a `tick` and ${x} and \\', '\'a `tick` and ${x} and \\\\\''],
    ['multi\n`tick` ${x} \\n', '`multi\n\\`tick\\` \\${x} \\\\n`'],
    ['cr\r\nline', "'cr\\r\\nline'"],
  ])('%j → %s', (input, expected) => {
    expect(printString(input)).toBe(expected);
    // What is printed evaluates back to the input.
    expect(new Function(`return ${expected};`)()).toBe(input);
  });
});

describe('print', () => {
  it('keeps short values on one line and quotes keys that are not identifiers', () => {
    expect(print(obj([['a', lit(1)], ['b-c', lit('x')], ['d', arr([lit(true), lit(null)])]]))).toBe("{ a: 1, 'b-c': 'x', d: [true, null] }");
    expect(print(call('Size', 'gibibytes', lit(4)))).toBe('Size.gibibytes(4)');
    expect(print(ref('RunStrategy', 'ALWAYS'))).toBe('RunStrategy.ALWAYS');
    expect(print(obj([]))).toBe('{}');
  });

  it('breaks long objects one entry per line with 2-space indentation', () => {
    const long = obj(Array.from({ length: 12 }, (_, i) => [`key${i}`, lit(`value-${i}`)] as const));
    const text = print(long, '  ');
    expect(text.split('\n')[1]).toBe("    key0: 'value-0',");
    expect(text.endsWith('\n  }')).toBe(true);
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(110);
  });

  it('prints trailing comments, which forces the multi-line form', () => {
    const e = obj([{ key: 'allowPlaintextSecrets', value: lit(true), trailingComment: 'TODO move to a Secret (secretRef)' }]);
    expect(print(e)).toBe('{\n  allowPlaintextSecrets: true, // TODO move to a Secret (secretRef)\n}');
  });
});

describe('evaluate', () => {
  it('runs factories, constructors and enum references against the DSL', () => {
    const env = dsl as unknown as Record<string, unknown>;
    expect((evaluate(call('Size', 'gibibytes', lit(4)), env) as dsl.Size).toQuantity()).toBe('4Gi');
    expect(evaluate(ref('RunStrategy', 'HALTED'), env)).toBe('Halted');
    const config = evaluate(newExpr('CloudConfig', obj([['hostname', lit('x')]])), env) as dsl.CloudConfig;
    expect(config.render()).toBe('#cloud-config\nhostname: x\n');
    expect(evaluate(json({ a: [1, { b: 'c' }] }), env)).toEqual({ a: [1, { b: 'c' }] });
    expect(() => evaluate(call('Nope', 'x'), env)).toThrow(/'Nope' is not exported/);
  });

  it('collects the names an expression uses', () => {
    const e = call('Volume', 'fromEmptyDisk', call('Size', 'gibibytes', lit(1)));
    expect([...namesUsed(e)].sort()).toEqual(['Size', 'Volume']);
  });
});
