/**
 * A fast YAML emitter for plain JSON documents whose output is byte for byte what
 * `manifestStringify(doc)` returns (cdk8s' `Yaml.stringify`, the yaml package with
 * `{ keepUndefined: true, lineWidth: 0, version: '1.1' }`, plus quotes for the strings other
 * readers would misread: api/yaml-compat.ts), or `undefined` when it cannot be sure, and the
 * caller then uses manifestStringify for that whole document.
 *
 * Why: serialization is ~half of a synth; the yaml package builds a node tree per document
 * and decides the style of every scalar anew, while k8s documents repeat the same keys and
 * values endlessly.
 *
 * How it stays exact:
 * - It lays out only block maps and sequences, the one layout the yaml package uses for
 *   them here (indent 2, sequences indented under their key, a map or sequence inside a
 *   sequence item starting on its `- ` line, `{}` / `[]` for empties). Every nesting level
 *   indents by 2 columns, map or sequence alike.
 * - It never decides how a string, number or boolean is written (null is `null`). It asks
 *   `stringify` (manifestStringify), on a one-entry wrapper in the same context (a map key; after
 *   `key`; a sequence item) at the same nesting depth, and cuts the wrapper off (a
 *   document's new one-line scalars are probed together, one wrapper per context). Answers
 *   are memoized per (context, scalar); a string whose rendering can depend on its
 *   indentation (a line break or a document marker: block scalars are indented;
 *   `---`/`...`/`%` at a line start are handled by indent) is memoized per depth as well.
 * - Anything else gives up: a value that is not a string, finite number, boolean, null,
 *   array or plain object (prototype Object.prototype or null); -0; an object or array met
 *   twice (the yaml package would emit an anchor and alias); a key or value whose probe does
 *   not have the expected shape (a key longer than 1,024 characters becomes an explicit
 *   `? key`).
 * test/unit/synth/fast-yaml.test.ts checks the result against manifestStringify over
 * arbitrary JSON, k8s-like documents with awkward strings, and every document of dist/.
 */
import YAML from 'yaml';
import { unambiguous } from '../api/yaml-compat.js';

type Stringify = (doc: unknown) => string;
type Scalar = string | number | boolean;

/** Thrown inside the walk to give up on a document (rare: no allocation per call). */
const GIVE_UP: unique symbol = Symbol('give up');
/** Marks a scalar whose rendering the emitter does not reproduce in that context. */
const UNSUPPORTED = '\u0000unsupported';
/** Strings whose rendering the yaml package derives from the indentation (see header). */
const DEPTH_DEPENDENT = /\n|\r|^(%|---|\.\.\.)/m;

export interface FastYaml {
  /** The YAML of `doc`, or undefined when the caller must use the full stringify. */
  (doc: unknown): string | undefined;
  /** Documents emitted / given up since creation (for tests and the benchmark). */
  readonly stats: { emitted: number; gaveUp: number };
}

/**
 * An emitter that delegates every scalar to `stringify` (a one-document stringify: manifestStringify).
 * Its memo is dropped once it holds `maxMemo` entries, so a long-lived watch worker stays bounded.
 */
export function createFastYaml(stringify: Stringify, maxMemo = 200_000): FastYaml {
  // Per context: scalar -> rendering; strings in DEPTH_DEPENDENT are keyed `${depth}\n${s}`
  // (no other key holds a line break, so the two kinds cannot collide).
  const keys = new Map<Scalar, string>();
  const values = new Map<Scalar, string>();
  const items = new Map<Scalar, string>();
  const indents: string[] = [''];
  const indent = (depth: number): string => {
    while (indents.length <= depth) indents.push(indents[indents.length - 1] + '  ');
    return indents[depth];
  };
  const prefixes: string[] = [''];
  /** The YAML of `depth` nested `a:` keys: where a depth-`depth` container starts. */
  const prefix = (depth: number): string => {
    while (prefixes.length <= depth) prefixes.push(prefixes[prefixes.length - 1] + indent(prefixes.length - 1) + 'a:\n');
    return prefixes[depth];
  };
  const wrap = (x: unknown, depth: number): unknown => {
    for (let i = 0; i < depth; i++) x = { a: x };
    return x;
  };

  /** The text between `head` and `tail` of stringify(wrapped) at `depth`, or UNSUPPORTED. */
  const cut = (wrapped: unknown, depth: number, head: string, tail: string, singleLine: boolean): string => {
    const out = stringify(wrap(wrapped, depth));
    const start = prefix(depth) + indent(depth) + head;
    if (!out.startsWith(start) || !out.endsWith(tail) || out.length < start.length + tail.length) return UNSUPPORTED;
    const piece = out.slice(start.length, out.length - tail.length);
    return singleLine && piece.includes('\n') ? UNSUPPORTED : piece;
  };
  const probeKey = (k: string, depth: number): string => cut({ [k]: 0 }, depth, '', ': 0\n', true);
  const probeValue = (v: Scalar, depth: number): string => cut({ a: v }, depth, 'a', '\n', false); // ':' and the space or line break after it included
  const probeItem = (v: Scalar, depth: number): string => cut([v], depth, '- ', '\n', false);

  /**
   * Several one-line scalars of one context probed with one stringify: a map of them as keys,
   * a map `a0: v0, a1: v1, ...`, or a sequence, one line each (checked: else nothing is memoized
   * and each is probed alone). Each probe costs a whole yaml Document: ~25% of a cold
   * 1,000-VM synth's emitting time is saved.
   */
  const probeBatch = (memo: Map<Scalar, string>, batch: Scalar[]): void => {
    let lines: string[];
    let pieces: string[] = [];
    if (memo === keys) {
      const obj = Object.fromEntries(batch.map((k) => [k, 0])); // own keys even for '__proto__'
      const names = Object.keys(obj); // the yaml package's order (integer-like keys first)
      lines = stringify(obj).split('\n');
      if (lines.length !== names.length + 1) return;
      for (let i = 0; i < names.length; i++) {
        if (!lines[i].endsWith(': 0')) return;
        pieces.push(lines[i].slice(0, -3));
      }
      batch = names;
    } else if (memo === values) {
      lines = stringify(Object.fromEntries(batch.map((v, i) => [`a${i}`, v]))).split('\n');
      if (lines.length !== batch.length + 1) return;
      pieces = batch.map((_, i) => (lines[i].startsWith(`a${i}:`) ? lines[i].slice(`a${i}`.length) : UNSUPPORTED));
    } else {
      lines = stringify(batch).split('\n');
      if (lines.length !== batch.length + 1) return;
      pieces = batch.map((_, i) => (lines[i].startsWith('- ') ? lines[i].slice(2) : UNSUPPORTED));
    }
    if (lines[lines.length - 1] !== '' || pieces.includes(UNSUPPORTED)) return;
    if (memo.size + batch.length > maxMemo) memo.clear();
    batch.forEach((v, i) => memo.set(v, pieces[i]));
  };

  /** Misses of a first walk of a document, per context, for probeBatch; undefined: probe at once. */
  let pending: Map<Map<Scalar, string>, Set<Scalar>> | undefined;

  const scalar = (memo: Map<Scalar, string>, v: Scalar, depth: number, probe: (v: Scalar, depth: number) => string): string => {
    const dependent = typeof v === 'string' && DEPTH_DEPENDENT.test(v);
    const memoKey = dependent ? `${depth}\n${v}` : v;
    let text = memo.get(memoKey);
    if (text === undefined) {
      if (pending && !dependent) {
        let set = pending.get(memo);
        if (!set) pending.set(memo, (set = new Set()));
        set.add(v);
        return '';
      }
      if (memo.size >= maxMemo) memo.clear();
      text = probe(v, depth);
      memo.set(memoKey, text);
    }
    if (text === UNSUPPORTED) throw GIVE_UP;
    return text;
  };

  let seen = new Set<object>();

  /** A scalar value checked to be one the emitter handles; null is returned as null. */
  const checkScalar = (v: unknown): Scalar | null => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number' && Number.isFinite(v) && !Object.is(v, -0)) return v;
    throw GIVE_UP;
  };
  /** 'map', 'seq' or undefined for a scalar; gives up on anything not plain JSON or met twice. */
  const kind = (v: unknown): 'map' | 'seq' | undefined => {
    if (v === null || typeof v !== 'object') return undefined;
    if (seen.has(v)) throw GIVE_UP;
    seen.add(v);
    const proto = Object.getPrototypeOf(v);
    if (proto === Array.prototype && Array.isArray(v)) return 'seq';
    if (proto === Object.prototype || proto === null) return 'map'; // the yaml package maps both by Object.keys
    throw GIVE_UP;
  };

  /** A non-empty map at `depth`, without its first line's indentation. */
  const map = (obj: Record<string, unknown>, names: string[], depth: number): string => {
    let text = '';
    const sep = '\n' + indent(depth);
    for (let i = 0; i < names.length; i++) {
      const v = obj[names[i]];
      if (i > 0) text += sep;
      text += scalar(keys, names[i], depth, probeKey as (v: Scalar, d: number) => string);
      const k = kind(v);
      if (k === undefined) {
        const s = checkScalar(v);
        text += s === null ? ': null' : scalar(values, s, depth, probeValue);
        continue;
      }
      text += ':' + collection(v as object, k, depth + 1, ' ', '\n' + indent(depth + 1));
    }
    return text;
  };

  /** A non-empty sequence at `depth`, without its first line's indentation. */
  const seq = (arr: unknown[], depth: number): string => {
    let text = '';
    const sep = '\n' + indent(depth);
    for (let i = 0; i < arr.length; i++) {
      if (!(i in arr)) throw GIVE_UP; // a hole
      const v = arr[i];
      if (i > 0) text += sep;
      const k = kind(v);
      if (k === undefined) {
        const s = checkScalar(v);
        text += s === null ? '- null' : '- ' + scalar(items, s, depth, probeItem);
        continue;
      }
      text += '-' + collection(v as object, k, depth + 1, ' ', ' ');
    }
    return text;
  };

  /** `{}`/`[]` after `emptyLead`, else the collection at `depth` after `lead`. */
  const collection = (v: object, k: 'map' | 'seq', depth: number, emptyLead: string, lead: string): string => {
    if (k === 'seq') {
      const arr = v as unknown[];
      return arr.length === 0 ? emptyLead + '[]' : lead + seq(arr, depth);
    }
    const names = Object.keys(v);
    return names.length === 0 ? emptyLead + '{}' : lead + map(v as Record<string, unknown>, names, depth);
  };

  const stats = { emitted: 0, gaveUp: 0 };
  const fast = ((doc: unknown): string | undefined => {
    seen = new Set();
    try {
      const k = kind(doc);
      if (k === undefined) throw GIVE_UP; // a top-level scalar: not a manifest
      // First walk: one-line scalars not yet memoized are collected, not probed; when there
      // were any, they are probed in batches and the document is walked again.
      pending = new Map();
      let text = collection(doc as object, k, 0, '', '') + '\n';
      const misses = pending;
      pending = undefined;
      if (misses.size > 0) {
        for (const [memo, batch] of misses) probeBatch(memo, [...batch]);
        seen = new Set([doc as object]);
        text = collection(doc as object, k, 0, '', '') + '\n';
      }
      stats.emitted++;
      return text;
    } catch (err) {
      if (err !== GIVE_UP) throw err;
      stats.gaveUp++;
      return undefined;
    } finally {
      seen = new Set();
      pending = undefined;
    }
  }) as FastYaml;
  Object.defineProperty(fast, 'stats', { value: stats });
  return fast;
}

/** cdk8s' options for one document (cdk8s/lib/yaml.js, 2.70), made unambiguous. */
const MANIFEST_YAML = unambiguous({ keepUndefined: true, lineWidth: 0, version: '1.1' });

/** The YAML virtops writes for one manifest: cdk8s' text, quoting what some reader would misread. */
export const manifestStringify: Stringify = (doc) => YAML.stringify(doc, MANIFEST_YAML);

/** The emitter over manifestStringify, shared by every synthesis in this process. */
export const fastYaml: FastYaml = createFastYaml(manifestStringify);

