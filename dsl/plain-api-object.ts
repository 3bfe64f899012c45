/**
 * An ApiObject whose JSON is cdk8s' own, produced without cdk8s' generic resolver walk where
 * that walk cannot change anything.
 *
 * Why: cdk8s' ApiObject.toJson runs every value of the object through the app's resolvers,
 * allocating a resolution context and a key path per value and walking up to the App for
 * each. For a 1,000-VM app (the VMs and their launcher Pods) that walk and the sanitizing
 * copy after it cost ~0.15 s of CPU on every synth and every `synth --watch` edit.
 *
 * Why it is the same JSON: with cdk8s' built-in resolvers only (no `resolvers` passed to the
 * App), a plain value resolves to itself. The Lazy resolver acts on `Lazy` instances only, the
 * implicit-token resolver on values with a `resolve()` method, and the number/string union
 * resolver on non-plain objects with a `value`. So plain objects, arrays and primitives are
 * copied here, with null and undefined dropped and keys sorted as cdk8s' sanitizer does; a
 * `Lazy` is produced and its value treated the same way; anything else (a class instance, a
 * token) goes through cdk8s' own resolve and sanitize. With custom resolvers, or if cdk8s'
 * internals are not what this was written against (2.70.x), it is cdk8s' toJson as is.
 * test/unit/dsl/plain-api-object.test.ts compares both over every object kind the DSL renders.
 */
import { ApiObject, App, ImplicitTokenResolver, JsonPatch, Lazy, LazyResolver, NumberStringUnionResolver, resolve, type IResolver } from 'cdk8s';
// Not in cdk8s' index; cdk8s' ApiObject.toJson sanitizes with it.
import { sanitizeValue } from 'cdk8s/lib/_util.js';

/** What this module reads of an ApiObject beyond its public API (cdk8s 2.70). */
interface ApiObjectInternals {
  props: Record<string, unknown>;
  patches: JsonPatch[];
}

const BUILTIN_RESOLVERS = [LazyResolver, ImplicitTokenResolver, NumberStringUnionResolver] as const;

function builtinResolversOnly(resolvers: readonly IResolver[]): boolean {
  return resolvers.length === BUILTIN_RESOLVERS.length && resolvers.every((r, i) => r.constructor === BUILTIN_RESOLVERS[i]);
}

/** cdk8s' sanitizeValue options: the object's body sorts keys unless CDK8S_DISABLE_SORT; metadata always sorts and drops empties. */
interface Sanitize {
  readonly sortKeys: boolean;
  readonly filterEmpty?: boolean;
}

/**
 * `sanitizeValue(resolve([], value, obj), options)` for an app with the built-in resolvers
 * only, without a resolution context per plain value.
 */
function resolvePlain(value: unknown, options: Sanitize, obj: ApiObject): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object') return typeof value === 'function' ? viaCdk8s(value, options, obj) : value;
  if (value instanceof Lazy) return resolvePlain(value.produce(), options, obj);
  const v = value as { resolve?: unknown; value?: unknown; constructor?: unknown };
  if (typeof v.resolve === 'function') return viaCdk8s(value, options, obj);
  if (Array.isArray(value)) {
    if (v.value !== undefined) return viaCdk8s(value, options, obj);
    if (options.filterEmpty && value.length === 0) return undefined;
    return value.map((x) => resolvePlain(x, options, obj));
  }
  if (v.constructor !== Object) return viaCdk8s(value, options, obj);
  const record = value as Record<string, unknown>;
  const keys = options.sortKeys ? sortedKeys(record) : Object.keys(record);
  const out: Record<string, unknown> = {};
  let empty = true;
  for (const k of keys) {
    const r = resolvePlain(record[k], options, obj);
    if (r !== null && r !== undefined) {
      out[k] = r;
      empty = false;
    }
  }
  return options.filterEmpty && empty ? undefined : out;
}

/**
 * `Object.keys(record).sort()`. Most objects of a manifest have a handful of keys, and for
 * those an insertion sort in JavaScript is ~3x faster than the built-in sort's default
 * comparison (~15-20 ms of a 1,000-VM synth). Same order: both compare UTF-16 code units.
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > k; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = k;
  }
  return keys;
}

function viaCdk8s(value: unknown, options: Sanitize, obj: ApiObject): unknown {
  return sanitizeValue(resolve([], value, obj), { sortKeys: options.sortKeys, filterEmptyArrays: options.filterEmpty, filterEmptyObjects: options.filterEmpty });
}

/** What cdk8s' ApiObjectMetadataDefinition.toJson (2.70) reads. */
interface MetadataInternals {
  name?: string;
  namespace?: string;
  labels: Record<string, unknown>;
  annotations: Record<string, unknown>;
  finalizers: unknown[];
  ownerReferences: unknown[];
  _additionalAttributes: Record<string, unknown>;
}

/** cdk8s' `obj.metadata.toJson()`: its fields resolved, empty ones dropped, keys sorted. */
function metadataJson(obj: ApiObject): unknown {
  const m = obj.metadata as unknown as Partial<MetadataInternals>;
  if (typeof m._additionalAttributes !== 'object' || typeof m.labels !== 'object' || typeof m.annotations !== 'object'
    || !Array.isArray(m.finalizers) || !Array.isArray(m.ownerReferences)) {
    return obj.metadata.toJson();
  }
  const fields = { ...m._additionalAttributes, name: m.name, namespace: m.namespace, annotations: m.annotations, finalizers: m.finalizers, ownerReferences: m.ownerReferences, labels: m.labels };
  return resolvePlain(fields, METADATA, obj);
}
const METADATA: Sanitize = { sortKeys: true, filterEmpty: true };

/**
 * cdk8s' ApiObject.toJson (2.70) for `obj`, or undefined when the fast path does not apply
 * (the caller then uses cdk8s' own).
 */
export function plainApiObjectJson(obj: ApiObject): Record<string, unknown> | undefined {
  const internals = obj as unknown as Partial<ApiObjectInternals>;
  if (typeof internals.props !== 'object' || !Array.isArray(internals.patches)) return undefined;
  if (!builtinResolversOnly(App.of(obj).resolvers)) return undefined;
  try {
    const data = { ...internals.props, metadata: metadataJson(obj) };
    const patched = JsonPatch.apply(resolvePlain(data, { sortKeys: !process.env.CDK8S_DISABLE_SORT }, obj), ...internals.patches) as Record<string, unknown>;
    // apiVersion, kind and metadata first, as cdk8s orders them.
    const result: Record<string, unknown> = {};
    for (const k of ['apiVersion', 'kind', 'metadata', ...Object.keys(patched)]) if (k in patched) result[k] = patched[k];
    return result;
  } catch (e) {
    throw new Error(`Failed serializing construct at path '${obj.node.path}' with name '${obj.name}': ${e}`);
  }
}

/** An ApiObject rendered by `plainApiObjectJson` (same JSON as cdk8s', faster). */
export class PlainApiObject extends ApiObject {
  public override toJson(): any {
    return plainApiObjectJson(this) ?? super.toJson();
  }
}
