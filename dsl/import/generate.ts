/**
 * `virtops import`: KubeVirt manifests (YAML) → DSL TypeScript. Pure: text in, text and
 * warnings out.
 *
 * A VirtualMachinePool (pool.kubevirt.io/v1beta1) becomes a DSL VirtualMachinePool whose
 * template is imported exactly like a VM (same steps on spec.virtualMachineTemplate); a
 * VirtualMachineInstanceReplicaSet or VirtualMachineInstancePreset is refused naming what
 * replaces it (a pool; instancetypes and preferences).
 *
 * For each VirtualMachine (or VirtualMachineInstance):
 *  1. prepare (drop cluster-written fields, wrap a VMI) and normalize (normalize.ts);
 *  2. map what the DSL models to factories and props (map.ts);
 *  3. run that plan through the real DSL and diff its manifest against the input: every
 *     difference becomes a JSON patch on `vm.apiObject` in the generated code (the DSL's
 *     escape hatch), with a warning, so no field is silently dropped;
 *  4. check that plan + patches synthesize the input (after normalization), then print.
 */
import { isDeepStrictEqual } from 'node:util';
import { App, Chart, JsonPatch } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import * as dsl from '../index.js';
import { call, evaluate, json, lit, namesUsed, newExpr, obj, print, ref, type Environment, type Expr } from './code.js';
import { diffJson, pointerToFieldPath, valueAt, type PatchOp } from './diff.js';
import { planVirtualMachine, type VmPlan } from './map.js';
import { normalizeVirtualMachine, orderNamedLists, prepareVirtualMachine } from './normalize.js';
import { REPLACED_KINDS } from '../../api/validate.js';
import { POOL_GROUP, POOL_KIND } from '../../api/pool.js';

/** Where the generated code imports the DSL from when not told otherwise. */
export const DEFAULT_DSL_MODULE = 'virtops/dsl';

export interface ImportOptions {
  /** Name of the input, for messages and the header comment. @default 'input' */
  readonly fileName?: string;
  /** Class name of the generated chart; only with a single VM. @default - PascalCase of the VM name */
  readonly className?: string;
  /** Module specifier the generated code imports the DSL from. @default DEFAULT_DSL_MODULE */
  readonly dslModule?: string;
}

export interface ImportedVirtualMachine {
  readonly name: string;
  readonly namespace: string;
  readonly className: string;
  /** The input after preparation and normalization: what the generated code synthesizes (normalized). */
  readonly expected: Record<string, unknown>;
  readonly patches: readonly PatchOp[];
}

export interface ImportResult {
  /** The generated TypeScript module. */
  readonly code: string;
  /** One line each: fields carried as patches, fields dropped, documents skipped, decisions taken. */
  readonly warnings: readonly string[];
  readonly virtualMachines: readonly ImportedVirtualMachine[];
}

/** Bad input (malformed YAML, nothing to import, bad options); the message says where and how to fix it. */
export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

const ENV: Environment = { ...(dsl as unknown as Record<string, unknown>), JsonPatch };
const DSL_EXPORTS = new Set(Object.keys(dsl));

/** Parses every YAML document of `text`; malformed YAML throws ImportError with line and column. */
export function parseManifests(text: string, fileName = 'input'): { docs: Record<string, unknown>[]; skipped: string[] } {
  const docs: Record<string, unknown>[] = [];
  const skipped: string[] = [];
  parseAllDocuments(text, { prettyErrors: true }).forEach((doc, index) => {
    const error = doc.errors[0];
    if (error) {
      const pos = error.linePos?.[0];
      const where = pos ? `${fileName}:${pos.line}:${pos.col}` : fileName;
      const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new ImportError(`${where}: malformed YAML: ${what}. Fix: correct the YAML at line ${pos?.line ?? '?'}, column ${pos?.col ?? '?'}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 1000 });
    const items = isObject(value) && value.kind === 'List' && Array.isArray(value.items) ? value.items : [value];
    for (const item of items) {
      if (item === null || item === undefined) continue;
      if (!isObject(item)) {
        skipped.push(`${fileName}: document ${index + 1}: not an object; skipped`);
        continue;
      }
      const kind = item.kind;
      const apiVersion = typeof item.apiVersion === 'string' ? item.apiVersion : '';
      if (typeof kind === 'string' && REPLACED_KINDS[kind] && apiVersion.startsWith('kubevirt.io/')) {
        throw new ImportError(`${fileName}: document ${index + 1}: ${kind} ${nameOf(item)} is not supported by virtops. Fix: ${REPLACED_KINDS[kind]}`);
      }
      if (kind === POOL_KIND && apiVersion.startsWith(`${POOL_GROUP}/`)) {
        docs.push(item);
      } else if ((kind === 'VirtualMachine' || kind === 'VirtualMachineInstance') && apiVersion.startsWith('kubevirt.io/')) {
        if (apiVersion !== 'kubevirt.io/v1') skipped.push(`${fileName}: ${kind} ${nameOf(item)}: apiVersion ${apiVersion} read as kubevirt.io/v1`);
        docs.push({ ...item, apiVersion: 'kubevirt.io/v1' });
      } else {
        skipped.push(`${fileName}: document ${index + 1} (${String(kind ?? 'no kind')} ${nameOf(item)}): not a KubeVirt VirtualMachine/VirtualMachineInstance; skipped`);
      }
    }
  });
  return { docs, skipped };
}

/** Imports every VirtualMachine/VirtualMachineInstance in `text` into one TypeScript module. */
export function importManifests(text: string, options: ImportOptions = {}): ImportResult {
  const fileName = options.fileName ?? 'input';
  const { docs, skipped } = parseManifests(text, fileName);
  if (docs.length === 0) {
    const seen = skipped.length > 0 ? ` (${skipped.length} other document${skipped.length === 1 ? '' : 's'} skipped)` : '';
    throw new ImportError(`${fileName}: no VirtualMachine, VirtualMachineInstance (apiVersion kubevirt.io/v1) or VirtualMachinePool (${POOL_GROUP}/v1beta1) found${seen}. Fix: pass a KubeVirt manifest`);
  }
  if (options.className !== undefined && docs.length > 1) {
    throw new ImportError(`${fileName}: --name was given but the file holds ${docs.length} VMs. Fix: drop --name (classes are named after the VMs) or split the file`);
  }
  if (options.className !== undefined && !/^[A-Za-z_$][\w$]*$/.test(options.className)) {
    throw new ImportError(`--name "${options.className}" is not a TypeScript identifier. Fix: use a name such as MyVm`);
  }
  const warnings = [...skipped];
  const imported: ImportedVirtualMachine[] = [];
  const classes: string[] = [];
  const usedClassNames = new Set<string>();
  const usedIds = new Set<string>();
  const used = new Set<string>();

  for (const doc of docs) {
    const pool = doc.kind === POOL_KIND ? poolFields(doc, fileName) : undefined;
    used.add(pool ? 'VirtualMachinePool' : 'VirtualMachine');
    const prepared = prepareVirtualMachine(pool ? pool.vm : doc);
    const plan = planVirtualMachine(prepared.vm);
    const namespace = plan.namespace ?? 'default';
    const where = pool ? `${fileName}: VirtualMachinePool ${namespace}/${plan.vmName}: spec.virtualMachineTemplate` : `${fileName}: VirtualMachine ${namespace}/${plan.vmName}`;
    warnings.push(...prepared.notes.map((n) => `${where}: ${n}`), ...plan.notes.map((n) => `${where}: ${n}`));
    if (plan.namespace === undefined) warnings.push(`${where}: metadata.namespace: not set; the DSL writes namespace "default"`);

    const expected = normalizeVirtualMachine(prepared.vm);
    // Paths from the normalized comparison; values as the input wrote them (normalization
    // only spells out defaults, so both synthesize the same VM; the check below proves it).
    const asWritten = orderNamedLists(prepared.vm);
    const render = (ps: readonly PatchOp[]) => (pool ? renderPoolTemplate(plan, pool.props, ps) : renderPlan(plan, ps));
    const patches = diffJson(render([]), expected).map((p): PatchOp => {
      if (p.op === 'remove') return p;
      const written = valueAt(asWritten, p.path);
      return written === undefined ? p : { ...p, value: written };
    });
    for (const p of patches) warnings.push(`${where}: ${describePatch(p)}`);
    const final = normalizeVirtualMachine(render(patches));
    if (!isDeepStrictEqual(final, expected)) {
      const left = diffJson(final, expected).map((p) => pointerToFieldPath(p.path)).join(', ');
      throw new Error(`virtops import: internal error: the generated code for ${plan.vmName} would not reproduce the input (${left}). Please report this with the manifest`);
    }

    const chartClass = uniqueName(options.className ?? className(plan.vmName), usedClassNames);
    const chartId = usedIds.has(plan.vmName) ? `${namespace}-${plan.vmName}` : plan.vmName;
    usedIds.add(chartId);
    for (const e of chartExprs(plan, patches)) namesUsed(e, used);
    if (pool) namesUsed(pool.props, used);
    classes.push(pool ? printPoolChart(plan, pool.props, patches, chartClass, chartId, fileName) : printChart(plan, patches, chartClass, chartId, fileName));
    imported.push({ name: plan.vmName, namespace, className: chartClass, expected, patches });
  }

  const code = printModule(classes, imported, used, fileName, options.dslModule ?? DEFAULT_DSL_MODULE);
  return { code, warnings, virtualMachines: imported };
}

// ---- evaluation -------------------------------------------------------------------------

/** The VirtualMachine manifest `plan` + `patches` synthesize, built with the real DSL. */
export function renderPlan(plan: VmPlan, patches: readonly PatchOp[]): Record<string, unknown> {
  const app = new App();
  const chart = new Chart(app, 'import', plan.namespace === undefined ? {} : { namespace: plan.namespace });
  const vm = new dsl.VirtualMachine(chart, 'vm', evaluate(plan.props, ENV) as dsl.VirtualMachineProps);
  for (const i of plan.interfaces) {
    vm.addInterface(i.name, evaluate(i.source, ENV) as dsl.Network, i.options && (evaluate(i.options, ENV) as dsl.InterfaceOptions));
  }
  for (const d of plan.disks) {
    vm.addDisk(d.name, evaluate(d.source, ENV) as dsl.Volume, d.options && (evaluate(d.options, ENV) as dsl.DiskOptions));
  }
  for (const p of patches) vm.apiObject.addJsonPatch(evaluate(patchExpr(p), ENV) as JsonPatch);
  return structuredClone(vm.toManifest()) as unknown as Record<string, unknown>;
}

// ---- VirtualMachinePool ------------------------------------------------------------------

interface PoolFields {
  /** The template as a VirtualMachine named after the pool (what the template VM renders). */
  vm: Record<string, unknown>;
  /** The pool's own props (everything but `template`), as DSL expressions. */
  props: Expr;
}

/** Pool-level fields the DSL construct models; any other is refused naming it (validation would refuse it anyway). */
function poolFields(doc: Record<string, unknown>, fileName: string): PoolFields {
  const meta = isObject(doc.metadata) ? doc.metadata : {};
  const spec = isObject(doc.spec) ? doc.spec : {};
  const name = nameOf(doc);
  const where = `${fileName}: VirtualMachinePool ${name}`;
  const known = new Set(['replicas', 'selector', 'virtualMachineTemplate', 'nameGeneration', 'scaleInStrategy', 'paused']);
  for (const k of Object.keys(spec)) {
    if (!known.has(k)) throw new ImportError(`${where}: spec.${k} is not supported by virtops. Fix: remove it (see api/pool.ts for what a pool does here)`);
  }
  const tmpl = isObject(spec.virtualMachineTemplate) ? spec.virtualMachineTemplate : {};
  const tmeta = isObject(tmpl.metadata) ? tmpl.metadata : {};
  const selector = isObject(spec.selector) ? spec.selector : {};
  if (selector.matchExpressions !== undefined) throw new ImportError(`${where}: spec.selector.matchExpressions is not modelled by the DSL's VirtualMachinePool. Fix: select with matchLabels`);
  const matchLabels = isObject(selector.matchLabels) ? selector.matchLabels : {};
  const defaultSelector = Object.keys(matchLabels).length === 1 && matchLabels['kubevirt.io/vmpool'] === name;
  const nameGen = isObject(spec.nameGeneration) ? spec.nameGeneration : {};
  const scaleIn = isObject(spec.scaleInStrategy) ? spec.scaleInStrategy : {};
  const proactive = isObject(scaleIn.proactive) ? scaleIn.proactive : {};
  const policy = isObject(proactive.selectionPolicy) ? proactive.selectionPolicy : {};
  if (Object.keys(scaleIn).some((k) => k !== 'proactive') || Object.keys(proactive).some((k) => k !== 'selectionPolicy') || Object.keys(policy).some((k) => k !== 'sortPolicy')) {
    throw new ImportError(`${where}: spec.scaleInStrategy: only proactive.selectionPolicy.sortPolicy is supported by virtops. Fix: remove the rest`);
  }
  const orders: Record<string, string> = { Random: 'RANDOM', DescendingOrder: 'DESCENDING', AscendingOrder: 'ASCENDING', Newest: 'NEWEST', Oldest: 'OLDEST' };
  const order = typeof policy.sortPolicy === 'string' ? orders[policy.sortPolicy] : undefined;
  if (policy.sortPolicy !== undefined && !order) throw new ImportError(`${where}: spec.scaleInStrategy.proactive.selectionPolicy.sortPolicy ${JSON.stringify(policy.sortPolicy)} is not one of ${Object.keys(orders).join(', ')}`);
  const entries: [string, Expr | undefined][] = [
    ['name', lit(name)],
    ['labels', isObject(meta.labels) && Object.keys(meta.labels).length ? json(meta.labels) : undefined],
    ['annotations', isObject(meta.annotations) && Object.keys(meta.annotations).length ? json(meta.annotations) : undefined],
    // KubeVirt's default is 1; the DSL's too, but an explicit count reads better.
    ['replicas', lit(typeof spec.replicas === 'number' ? spec.replicas : 1)],
    ['selector', defaultSelector ? undefined : json(matchLabels)],
    ['appendIndexToSecretRefs', typeof nameGen.appendIndexToSecretRefs === 'boolean' ? lit(nameGen.appendIndexToSecretRefs) : undefined],
    ['appendIndexToConfigMapRefs', typeof nameGen.appendIndexToConfigMapRefs === 'boolean' ? lit(nameGen.appendIndexToConfigMapRefs) : undefined],
    ['scaleInOrder', order ? ref('PoolScaleInOrder', order) : undefined],
    ['paused', spec.paused === true ? lit(true) : undefined],
  ];
  const props = obj(entries);
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: {
      name,
      ...(typeof meta.namespace === 'string' ? { namespace: meta.namespace } : {}),
      ...(isObject(tmeta.labels) ? { labels: tmeta.labels } : {}),
      ...(isObject(tmeta.annotations) ? { annotations: tmeta.annotations } : {}),
    },
    spec: isObject(tmpl.spec) ? tmpl.spec : {},
  };
  return { vm, props };
}

/** The VM props of `plan` without name and namespace (the pool gives both). */
function templateProps(plan: VmPlan): Expr {
  const props = plan.props as Extract<Expr, { k: 'obj' }>;
  return { ...props, entries: props.entries.filter((e) => e.key !== 'name' && e.key !== 'namespace') };
}

/** The template VM a pool of `poolProps` + `plan` + `patches` renders, built with the real DSL. */
function renderPoolTemplate(plan: VmPlan, poolProps: Expr, patches: readonly PatchOp[]): Record<string, unknown> {
  const app = new App();
  const chart = new Chart(app, 'import', plan.namespace === undefined ? {} : { namespace: plan.namespace });
  const props = evaluate(poolProps, ENV) as Omit<dsl.VirtualMachinePoolProps, 'template'>;
  const pool = new dsl.VirtualMachinePool(chart, 'pool', { ...props, template: evaluate(templateProps(plan), ENV) as dsl.VirtualMachinePoolProps['template'] });
  for (const i of plan.interfaces) {
    pool.template.addInterface(i.name, evaluate(i.source, ENV) as dsl.Network, i.options && (evaluate(i.options, ENV) as dsl.InterfaceOptions));
  }
  for (const d of plan.disks) {
    pool.template.addDisk(d.name, evaluate(d.source, ENV) as dsl.Volume, d.options && (evaluate(d.options, ENV) as dsl.DiskOptions));
  }
  for (const p of patches) pool.template.apiObject.addJsonPatch(evaluate(patchExpr(p), ENV) as JsonPatch);
  return structuredClone(pool.template.toManifest()) as unknown as Record<string, unknown>;
}

function printPoolChart(plan: VmPlan, poolProps: Expr, patches: readonly PatchOp[], name: string, chartId: string, fileName: string): string {
  const lines: string[] = [];
  const props = poolProps as Extract<Expr, { k: 'obj' }>;
  const all: Expr = { ...props, entries: [...props.entries, { key: 'template', value: templateProps(plan) }] };
  lines.push(`/** VirtualMachinePool ${plan.namespace ?? 'default'}/${plan.vmName}, imported from ${fileName}. */`);
  lines.push(`export class ${name} extends Chart {`);
  lines.push(`${I1}public readonly pool: VirtualMachinePool;`);
  lines.push('');
  lines.push(`${I1}public constructor(scope: Construct, id = ${print(lit(chartId))}) {`);
  lines.push(plan.namespace === undefined ? `${I2}super(scope, id);` : `${I2}super(scope, id, { namespace: ${print(lit(plan.namespace))} });`);
  lines.push(`${I2}this.pool = ${print(newExpr('VirtualMachinePool', ref('this'), lit('pool'), all), I2, I2.length + 'this.pool = '.length)};`);
  for (const i of plan.interfaces) lines.push(statement('this.pool.template.addInterface', [lit(i.name), i.source, ...(i.options ? [i.options] : [])]));
  for (const d of plan.disks) lines.push(statement('this.pool.template.addDisk', [lit(d.name), d.source, ...(d.options ? [d.options] : [])]));
  if (patches.length > 0) {
    lines.push(`${I2}// Not modelled by the DSL's props: carried through unchanged as JSON patches (RFC 6902).`);
    for (const p of patches) lines.push(statement('this.pool.template.apiObject.addJsonPatch', [patchExpr(p)]));
  }
  lines.push(`${I1}}`);
  lines.push('}');
  return lines.join('\n');
}

function patchExpr(p: PatchOp): Expr {
  return p.op === 'remove' ? call('JsonPatch', 'remove', lit(p.path)) : call('JsonPatch', p.op, lit(p.path), json(p.value));
}

function describePatch(p: PatchOp): string {
  const field = pointerToFieldPath(p.path);
  return p.op === 'remove'
    ? `${field}: absent in the input but written by the DSL; removed again with a JSON patch`
    : `${field}: not modelled by the DSL's props; carried through as a JSON patch (vm.apiObject.addJsonPatch)`;
}

// ---- printing ---------------------------------------------------------------------------

/** `kubevirt-smoke-fedora` → `KubevirtSmokeFedora`. */
export function className(vmName: string): string {
  const pascal = vmName.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  return /^[A-Za-z]/.test(pascal) ? pascal : `Vm${pascal}`;
}

function uniqueName(name: string, used: Set<string>): string {
  let candidate = name;
  for (let n = 2; used.has(candidate); n++) candidate = `${name}${n}`;
  used.add(candidate);
  return candidate;
}

const I1 = '  ';
const I2 = '    ';

/** A statement `target(args);` at indentation I2, with the last argument allowed to break. */
function statement(target: string, args: Expr[]): string {
  const expr: Expr = { k: 'call', name: target.slice(0, target.lastIndexOf('.')), method: target.slice(target.lastIndexOf('.') + 1), args };
  return `${I2}${print(expr, I2)};`;
}

function printChart(plan: VmPlan, patches: readonly PatchOp[], name: string, chartId: string, fileName: string): string {
  const lines: string[] = [];
  lines.push(`/** VirtualMachine ${plan.namespace ?? 'default'}/${plan.vmName}, imported from ${fileName}. */`);
  lines.push(`export class ${name} extends Chart {`);
  lines.push(`${I1}public readonly vm: VirtualMachine;`);
  lines.push('');
  lines.push(`${I1}public constructor(scope: Construct, id = ${print(lit(chartId))}) {`);
  lines.push(plan.namespace === undefined ? `${I2}super(scope, id);` : `${I2}super(scope, id, { namespace: ${print(lit(plan.namespace))} });`);
  lines.push(`${I2}this.vm = ${print(newExpr('VirtualMachine', ref('this'), lit('vm'), plan.props), I2, I2.length + 'this.vm = '.length)};`);
  for (const i of plan.interfaces) lines.push(statement('this.vm.addInterface', [lit(i.name), i.source, ...(i.options ? [i.options] : [])]));
  for (const d of plan.disks) lines.push(statement('this.vm.addDisk', [lit(d.name), d.source, ...(d.options ? [d.options] : [])]));
  if (patches.length > 0) {
    lines.push(`${I2}// Not modelled by the DSL's props: carried through unchanged as JSON patches (RFC 6902).`);
    for (const p of patches) lines.push(statement('this.vm.apiObject.addJsonPatch', [patchExpr(p)]));
  }
  lines.push(`${I1}}`);
  lines.push('}');
  return lines.join('\n');
}

function chartExprs(plan: VmPlan, patches: readonly PatchOp[]): Expr[] {
  return [plan.props, ...plan.interfaces.flatMap((i) => [i.source, ...(i.options ? [i.options] : [])]),
    ...plan.disks.flatMap((d) => [d.source, ...(d.options ? [d.options] : [])]), ...patches.map(patchExpr)];
}

function printModule(classes: string[], vms: ImportedVirtualMachine[], used: Set<string>, fileName: string, dslModule: string): string {
  const needsPatch = vms.some((vm) => vm.patches.length > 0);
  const dslNames = [...used].filter((n) => DSL_EXPORTS.has(n)).sort();
  const header = [
    `// Generated by \`virtops import ${fileName}\`. Review it, then add the chart to vms/main.ts:`,
    ...vms.map((vm) => `//   new ${vm.className}(app);`),
    `import { Chart${needsPatch ? ', JsonPatch' : ''} } from 'cdk8s';`,
    `import type { Construct } from 'constructs';`,
    printImport(dslNames, dslModule),
  ];
  return `${header.join('\n')}\n\n${classes.join('\n\n')}\n`;
}

function printImport(names: string[], from: string): string {
  const flat = `import { ${names.join(', ')} } from '${from}';`;
  if (flat.length <= 110) return flat;
  const lines: string[] = [];
  let line = I1;
  for (const n of names) {
    const piece = `${n}, `;
    if (line.length + piece.length > 110 && line.trim() !== '') {
      lines.push(line.trimEnd());
      line = I1;
    }
    line += piece;
  }
  lines.push(line.trimEnd());
  return `import {\n${lines.join('\n')}\n} from '${from}';`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function nameOf(doc: Record<string, unknown>): string {
  const meta = isObject(doc.metadata) ? doc.metadata : {};
  return typeof meta.name === 'string' ? meta.name : '(unnamed)';
}
