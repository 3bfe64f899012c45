/**
 * Converts KubeVirt's swagger 2.0 definitions (vendored in api/kubevirt-openapi.v1.json) into
 * self-contained *structural* schemas, the form Kubernetes requires for CRDs and the form
 * api/schema-validators.ts compiles with ajv, so the API server and virtops check the same shape.
 *
 * - `$ref`s are inlined; a definition that refers back to itself is cut with
 *   `x-kubernetes-preserve-unknown-fields: true` (none of the VM/VMI definitions recurse today).
 * - Quantities and IntOrString become `x-kubernetes-int-or-string: true` with the canonical
 *   `anyOf: [{type: integer}, {type: string}]`. Quantities also get the Kubernetes quantity
 *   `pattern`, *next to* the `anyOf` (as controller-gen emits it): kube-apiserver accepts only
 *   bare `type`s inside those two branches and rejects the CRD (422) otherwise. `pattern`
 *   constrains strings only, so integers still pass, in the API server and in ajv alike.
 * - ObjectMeta: the root `metadata` is `type: object` (the API server owns its schema); nested
 *   metadata (VM template, DataVolume templates) keeps unknown fields.
 * - Keywords a structural schema cannot carry, or that would make the API server reject the
 *   CRD (`$ref` siblings, `default`, list/map topology markers, patch hints) are dropped.
 * - `strict` (the validator's mode) adds `additionalProperties: false` to every object that
 *   declares properties and to empty structs, so unknown fields are rejected by path. Free-form
 *   maps (`additionalProperties: {...}`), ObjectMeta and FieldsV1 stay open.
 */
import openapi from './kubevirt-openapi.v1.json' with { type: 'json' };
import { QUANTITY_PATTERN } from './kubevirt.js';

export type JsonSchema = { [key: string]: unknown };

interface SwaggerNode {
  $ref?: string;
  type?: string | string[];
  format?: string;
  description?: string;
  properties?: Record<string, SwaggerNode>;
  additionalProperties?: SwaggerNode | boolean;
  items?: SwaggerNode;
  required?: string[];
  enum?: unknown[];
  nullable?: boolean;
}

const DEFINITIONS = (openapi as unknown as { definitions: Record<string, SwaggerNode> }).definitions;

const OBJECT_META = 'k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta';
const QUANTITY = 'k8s.io.apimachinery.pkg.api.resource.Quantity';
const INT_OR_STRING = 'k8s.io.apimachinery.pkg.util.intstr.IntOrString';
/** Definitions that are free-form JSON by design. */
const FREE_FORM = new Set(['k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1', 'k8s.io.apimachinery.pkg.runtime.RawExtension']);

export interface StructuralOptions {
  /** Reject unknown fields (validator mode). @default false */
  readonly strict?: boolean;
  /** Keep `description`s (large; CRDs omit them). @default false */
  readonly descriptions?: boolean;
}

export function definitionNames(): string[] {
  return Object.keys(DEFINITIONS);
}

/** The structural schema of one definition, e.g. `v1.VirtualMachine`. */
export function structuralSchema(definition: string, opts: StructuralOptions = {}): JsonSchema {
  if (!DEFINITIONS[definition]) throw new Error(`unknown OpenAPI definition '${definition}'`);
  return convertRef(definition, { opts, stack: [] });
}

/**
 * The same conversion, but definitions stay separate and are referenced with `$ref`
 * (`#/definitions/<name>`): for ajv, which then compiles each definition once instead of
 * once per place it is used. Not for CRDs (structural schemas forbid `$ref`).
 */
export function referencedSchema(definition: string, opts: StructuralOptions = {}): JsonSchema {
  if (!DEFINITIONS[definition]) throw new Error(`unknown OpenAPI definition '${definition}'`);
  const definitions: Record<string, JsonSchema> = {};
  const pending = [definition];
  const refs = { seen: new Set<string>([definition]), pending };
  while (pending.length) {
    const name = pending.pop()!;
    definitions[name] = convertRef(name, { opts, stack: [], refs }, true);
  }
  return { $ref: `#/definitions/${definition}`, definitions };
}

interface Ctx {
  opts: StructuralOptions;
  stack: string[];
  /** When set, plain definitions become `$ref`s collected here instead of being inlined. */
  refs?: { seen: Set<string>; pending: string[] };
}

const refName = (ref: string): string => ref.replace('#/definitions/', '');

function convertRef(name: string, ctx: Ctx, expand = false): JsonSchema {
  if (name === QUANTITY) return { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }], pattern: QUANTITY_PATTERN };
  if (name === INT_OR_STRING) return { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
  if (FREE_FORM.has(name)) return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  if (name === OBJECT_META && !ctx.opts.strict) {
    return ctx.stack.length === 1 ? { type: 'object' } : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  }
  if (ctx.refs && !expand) {
    if (!ctx.refs.seen.has(name)) {
      ctx.refs.seen.add(name);
      ctx.refs.pending.push(name);
    }
    return { $ref: `#/definitions/${name}` };
  }
  if (ctx.stack.includes(name)) return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const def = DEFINITIONS[name];
  if (!def) throw new Error(`OpenAPI definition '${name}' is referenced but not vendored; re-run scripts/vendor-openapi.ts`);
  // ObjectMeta is checked for types but never closed: the API server owns its fields.
  const opts = name === OBJECT_META ? { ...ctx.opts, strict: false } : ctx.opts;
  return convertNode(def, { ...ctx, opts, stack: [...ctx.stack, name] });
}

function convertNode(node: SwaggerNode, ctx: Ctx): JsonSchema {
  if (node.$ref) {
    const inlined = convertRef(refName(node.$ref), ctx);
    // Siblings of a $ref (description, default) are not allowed in structural schemas; a
    // description may be moved onto the inlined node.
    return ctx.opts.descriptions && node.description ? { ...inlined, description: node.description } : inlined;
  }
  const out: JsonSchema = {};
  if (ctx.opts.descriptions && node.description) out.description = node.description;
  if (Array.isArray(node.type)) {
    // Only Quantity uses a type list in KubeVirt's spec; treat any other the same way.
    Object.assign(out, { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] });
    return out;
  }
  if (node.type) out.type = node.type;
  if (node.format && node.type !== 'object') out.format = node.format;
  if (node.enum) out.enum = node.enum;
  if (node.nullable) out.nullable = true;
  if (node.type === 'array' && node.items) out.items = convertNode(node.items, ctx);
  if (node.properties) {
    out.properties = Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, convertNode(v, ctx)]));
    if (node.required?.length) out.required = [...node.required];
    if (ctx.opts.strict) out.additionalProperties = false;
  } else if (node.additionalProperties !== undefined && node.additionalProperties !== false) {
    if (node.additionalProperties === true) out['x-kubernetes-preserve-unknown-fields'] = true;
    else out.additionalProperties = convertNode(node.additionalProperties, ctx);
  } else if (node.type === 'object' && ctx.opts.strict) {
    // An empty Go struct (bridge: {}, masquerade: {}): nothing may be set inside it.
    out.additionalProperties = false;
  }
  if (!out.type && !out['x-kubernetes-int-or-string'] && !out['x-kubernetes-preserve-unknown-fields']) {
    // Untyped node: structural schemas require a type, so keep its content as-is.
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return out;
}
