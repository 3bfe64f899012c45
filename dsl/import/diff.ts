/**
 * The JSON patch (RFC 6902) that turns one JSON document into another. The importer uses
 * it for whatever the DSL's props cannot express: the patch from "what the DSL renders"
 * to "what the input says" is carried in the generated code, so nothing is dropped.
 */
import { isDeepStrictEqual } from 'node:util';

export type PatchOp =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

type Json = unknown;

const isPlainObject = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** RFC 6901 escaping of one path segment. */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** `/spec/template/spec/volumes/1/name` → `spec.template.spec.volumes[1].name` (for messages). */
export function pointerToFieldPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Operations that, applied in order to `from`, give `to`. Objects are compared key by key
 * (key order is not a difference); arrays of named items (disks, volumes, ...) are aligned
 * by name so one missing item is one `add`, not a rewrite of the whole list.
 */
export function diffJson(from: Json, to: Json, path = ''): PatchOp[] {
  if (isDeepStrictEqual(from, to)) return [];
  if (isPlainObject(from) && isPlainObject(to)) {
    const ops: PatchOp[] = [];
    for (const key of Object.keys(from)) {
      if (!(key in to)) ops.push({ op: 'remove', path: `${path}/${pointerSegment(key)}` });
    }
    for (const [key, value] of Object.entries(to)) {
      const here = `${path}/${pointerSegment(key)}`;
      if (!(key in from)) ops.push({ op: 'add', path: here, value });
      else ops.push(...diffJson(from[key], value, here));
    }
    return ops;
  }
  if (Array.isArray(from) && Array.isArray(to)) {
    const named = diffNamedArrays(from, to, path);
    if (named) return named;
    if (from.length === to.length) return from.flatMap((item, i) => diffJson(item, to[i], `${path}/${i}`));
  }
  return [{ op: 'replace', path, value: to }];
}

function itemNames(items: Json[]): string[] | undefined {
  const names = items.map((i) => (isPlainObject(i) && typeof i.name === 'string' ? i.name : undefined));
  if (names.some((n) => n === undefined) || new Set(names).size !== names.length) return undefined;
  return names as string[];
}

/**
 * When both arrays hold uniquely named items and `from`'s names appear in `to` in the same
 * order: recurse into matching items, `add` the ones `from` lacks, `remove` the ones `to`
 * lacks. Undefined when that alignment does not exist.
 */
function diffNamedArrays(from: Json[], to: Json[], path: string): PatchOp[] | undefined {
  const fromNames = itemNames(from);
  const toNames = itemNames(to);
  if (!fromNames || !toNames) return undefined;
  const kept = fromNames.filter((n) => toNames.includes(n));
  const toKept = toNames.filter((n) => fromNames.includes(n));
  if (!isDeepStrictEqual(kept, toKept)) return undefined;

  const ops: PatchOp[] = [];
  // Remove first, from the end, so the remaining indexes stay valid.
  for (let i = from.length - 1; i >= 0; i--) {
    if (!toNames.includes(fromNames[i]!)) ops.push({ op: 'remove', path: `${path}/${i}` });
  }
  const current = fromNames.filter((n) => toNames.includes(n));
  to.forEach((item, i) => {
    const name = toNames[i]!;
    if (current[i] === name) {
      ops.push(...diffJson(from[fromNames.indexOf(name)], item, `${path}/${i}`));
    } else {
      ops.push({ op: 'add', path: `${path}/${i}`, value: item });
      current.splice(i, 0, name);
    }
  });
  return ops;
}

/** Applies `ops` to a copy of `doc` (used to check the importer's own output). */
export function applyPatch(doc: Json, ops: readonly PatchOp[]): Json {
  let root = structuredClone(doc);
  for (const op of ops) {
    const segs = op.path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (segs.length === 0) {
      if (op.op === 'remove') throw new Error('cannot remove the root');
      root = structuredClone(op.value);
      continue;
    }
    let parent: Json = root;
    for (const seg of segs.slice(0, -1)) parent = (parent as Record<string, Json>)[seg];
    const last = segs[segs.length - 1]!;
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (op.op === 'add') parent.splice(index, 0, structuredClone(op.value));
      else if (op.op === 'remove') parent.splice(index, 1);
      else parent[index] = structuredClone(op.value);
    } else if (isPlainObject(parent)) {
      if (op.op === 'remove') delete parent[last];
      else parent[last] = structuredClone(op.value);
    } else {
      throw new Error(`patch path ${op.path} does not exist`);
    }
  }
  return root;
}

/** The value at `pointer` in `doc`, or undefined. */
export function valueAt(doc: Json, pointer: string): Json {
  let node = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = node[Number(seg)];
    else if (isPlainObject(node)) node = node[seg];
    else return undefined;
  }
  return node;
}
