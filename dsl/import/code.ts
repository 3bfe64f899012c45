/**
 * A tiny expression language for the code `virtops import` generates.
 *
 * The importer builds every value it hands to the DSL as an `Expr`, then uses the same
 * tree twice: `evaluate` runs it against the real DSL (to see what it synthesizes, so the
 * difference to the input can be carried as JSON patches) and `print` writes it as
 * TypeScript. One tree for both means the printed code does what was evaluated.
 */

export type Expr =
  | { readonly k: 'lit'; readonly v: string | number | boolean | null }
  | { readonly k: 'obj'; readonly entries: readonly ObjEntry[] }
  | { readonly k: 'arr'; readonly items: readonly Expr[] }
  /** `Name` or `Name.MEMBER` (an enum member, a class). */
  | { readonly k: 'ref'; readonly name: string; readonly member?: string }
  /** `Name.method(args)`: a static factory. */
  | { readonly k: 'call'; readonly name: string; readonly method: string; readonly args: readonly Expr[] }
  | { readonly k: 'new'; readonly name: string; readonly args: readonly Expr[] };

export interface ObjEntry {
  readonly key: string;
  readonly value: Expr;
  /** Printed after the entry on the same line (`// ...`). */
  readonly trailingComment?: string;
}

export const lit = (v: string | number | boolean | null): Expr => ({ k: 'lit', v });
export const ref = (name: string, member?: string): Expr => ({ k: 'ref', name, member });
export const call = (name: string, method: string, ...args: Expr[]): Expr => ({ k: 'call', name, method, args });
export const newExpr = (name: string, ...args: Expr[]): Expr => ({ k: 'new', name, args });
export const arr = (items: readonly Expr[]): Expr => ({ k: 'arr', items });

/** An object literal from entries; entries whose value is undefined are left out. */
export function obj(entries: ReadonlyArray<readonly [string, Expr | undefined] | ObjEntry>): Expr {
  const out: ObjEntry[] = [];
  for (const e of entries) {
    if (Array.isArray(e)) {
      const [key, value] = e as readonly [string, Expr | undefined];
      if (value !== undefined) out.push({ key, value });
    } else {
      out.push(e as ObjEntry);
    }
  }
  return { k: 'obj', entries: out };
}

export function isEmptyObj(e: Expr): boolean {
  return e.k === 'obj' && e.entries.length === 0;
}

/** A JSON value as a literal expression (objects keep their key order). */
export function json(value: unknown): Expr {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return lit(value);
  if (Array.isArray(value)) return arr(value.map(json));
  if (typeof value === 'object') {
    return obj(Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).map(([key, v]) => [key, json(v)] as const));
  }
  throw new Error(`cannot write ${typeof value} as a literal`);
}

/** Every top-level name an expression refers to (for the import list). */
export function namesUsed(e: Expr, into: Set<string> = new Set()): Set<string> {
  switch (e.k) {
    case 'lit':
      break;
    case 'obj':
      for (const entry of e.entries) namesUsed(entry.value, into);
      break;
    case 'arr':
      for (const item of e.items) namesUsed(item, into);
      break;
    case 'ref':
      into.add(e.name);
      break;
    case 'call':
    case 'new':
      into.add(e.name);
      for (const a of e.args) namesUsed(a, into);
      break;
  }
  return into;
}

// ---- evaluation -------------------------------------------------------------------------

export type Environment = Readonly<Record<string, unknown>>;

/** Runs `e` against `env` (the DSL's exports), producing the real value. */
export function evaluate(e: Expr, env: Environment): unknown {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'obj':
      return Object.fromEntries(e.entries.map((entry) => [entry.key, evaluate(entry.value, env)]));
    case 'arr':
      return e.items.map((item) => evaluate(item, env));
    case 'ref': {
      const target = lookup(env, e.name);
      return e.member === undefined ? target : (target as Record<string, unknown>)[e.member];
    }
    case 'call': {
      const target = lookup(env, e.name) as Record<string, unknown>;
      const fn = target[e.method];
      if (typeof fn !== 'function') throw new Error(`${e.name}.${e.method} is not a function`);
      return (fn as (...a: unknown[]) => unknown).apply(target, e.args.map((a) => evaluate(a, env)));
    }
    case 'new': {
      const ctor = lookup(env, e.name) as new (...a: unknown[]) => unknown;
      return new ctor(...e.args.map((a) => evaluate(a, env)));
    }
  }
}

function lookup(env: Environment, name: string): unknown {
  if (!(name in env)) throw new Error(`'${name}' is not exported by the DSL`);
  return env[name];
}

// ---- printing ---------------------------------------------------------------------------

/** Lines longer than this are broken up (objects and arrays go one entry per line). */
export const MAX_WIDTH = 110;
const INDENT = '  ';
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * `e` as TypeScript, starting at column `column` (for the width check) with `indent` as
 * the indentation of the line it starts on. Short values stay on one line.
 */
export function print(e: Expr, indent = '', column = indent.length): string {
  const flat = printFlat(e);
  if (flat !== undefined && column + flat.length <= MAX_WIDTH) return flat;
  const inner = indent + INDENT;
  switch (e.k) {
    case 'obj': {
      if (e.entries.length === 0) return '{}';
      const lines = e.entries.map((entry) => {
        const head = `${inner}${printKey(entry.key)}: `;
        const comment = entry.trailingComment ? ` // ${entry.trailingComment}` : '';
        return `${head}${print(entry.value, inner, head.length)},${comment}`;
      });
      return `{\n${lines.join('\n')}\n${indent}}`;
    }
    case 'arr': {
      if (e.items.length === 0) return '[]';
      return `[\n${e.items.map((item) => `${inner}${print(item, inner)},`).join('\n')}\n${indent}]`;
    }
    case 'call':
    case 'new': {
      const head = e.k === 'call' ? `${e.name}.${e.method}(` : `new ${e.name}(`;
      return `${head}${printArgs(e.args, indent, column + head.length)})`;
    }
    default:
      return flat ?? printString(String((e as { v: unknown }).v));
  }
}

/** Arguments: all on the call's line, the last one allowed to break (the common `f('x', {...})`). */
function printArgs(args: readonly Expr[], indent: string, column: number): string {
  const parts: string[] = [];
  let col = column;
  args.forEach((a, i) => {
    const text = print(a, indent, col);
    parts.push(text);
    const lastLine = text.split('\n').pop()!;
    col = text.includes('\n') ? lastLine.length : col + text.length;
    if (i < args.length - 1) col += 2;
  });
  return parts.join(', ');
}

/** The one-line form, or undefined when the value needs several lines (comments, multi-line strings). */
function printFlat(e: Expr): string | undefined {
  switch (e.k) {
    case 'lit':
      if (typeof e.v === 'string') return e.v.includes('\n') ? undefined : printString(e.v);
      return String(e.v);
    case 'ref':
      return e.member === undefined ? e.name : `${e.name}.${e.member}`;
    case 'obj': {
      if (e.entries.length === 0) return '{}';
      const parts: string[] = [];
      for (const entry of e.entries) {
        if (entry.trailingComment) return undefined;
        const v = printFlat(entry.value);
        if (v === undefined) return undefined;
        parts.push(`${printKey(entry.key)}: ${v}`);
      }
      return `{ ${parts.join(', ')} }`;
    }
    case 'arr': {
      const parts = e.items.map(printFlat);
      return parts.some((p) => p === undefined) ? undefined : `[${parts.join(', ')}]`;
    }
    case 'call':
    case 'new': {
      const parts = e.args.map(printFlat);
      if (parts.some((p) => p === undefined)) return undefined;
      return e.k === 'call' ? `${e.name}.${e.method}(${parts.join(', ')})` : `new ${e.name}(${parts.join(', ')})`;
    }
  }
}

function printKey(key: string): string {
  return IDENTIFIER.test(key) ? key : printString(key);
}

/**
 * A string literal: single quotes, or a template literal for multi-line text (user-data
 * reads as the document it is).
 */
export function printString(s: string): string {
  if (s.includes('\n') && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s)) {
    return '`' + s.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${') + '`';
  }
  const body = JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
  return `'${body}'`;
}
