/**
 * The one manifest validator: used by synth (before writing dist/), by the git source
 * (before applying a revision) and by the launcher (before converting a VMI).
 *
 * kubevirt.io/v1 VirtualMachine and VirtualMachineInstance, and instancetype.kubevirt.io/v1beta1
 * instancetypes and preferences (namespaced and cluster), are checked against KubeVirt's own
 * OpenAPI (the vendored api/kubevirt-openapi.v1.json, made structural and closed by
 * api/structural-schema.ts), so unknown or misspelled fields are rejected by path, plus the
 * cross-field rules KubeVirt's admission webhook enforces. pool.kubevirt.io/v1beta1
 * VirtualMachinePool likewise (schema, then api/pool.ts's rules and its template's VM rules).
 * VirtualMachineInstanceReplicaSet/Preset are refused naming their replacement (pools,
 * instancetypes/preferences). Core objects get shape checks.
 *
 *   const issues = validateManifest(obj);
 *   if (issues.length) throw new Error(formatIssues(issues, 'dist/web.k8s.yaml'));
 */
import type { ErrorObject } from 'ajv';
import { QUANTITY_PATTERN, RUN_STRATEGIES } from './kubevirt.js';
import { INSTANCETYPE_API_VERSION, INSTANCETYPE_GROUP, PREFERRED_CPU_TOPOLOGIES, isClusterScopedKind } from './instancetype.js';
import { validatorFor } from './schema-validators.js';
import { CDI_API_VERSION, planImport, type DataVolume } from './datavolume.js';
import { SNAPSHOT_API_VERSION, SNAPSHOT_KINDS, checkSnapshotRules } from './snapshot.js';
import { POOL_API_VERSION, POOL_GROUP, POOL_KIND, checkPoolRules, poolVm, type VirtualMachinePool } from './pool.js';

const QUANTITY_FIX = 'use a number with an optional suffix, e.g. 2Gi, 512Mi, 1.5, 500m';

export interface ValidationIssue {
  /** JSON pointer into the manifest, e.g. `/spec/template/spec/domain/cpu/cores`. */
  path: string;
  message: string;
  /** What to change, when there is a clear answer. */
  fix?: string;
}

const KUBEVIRT_KINDS: Record<string, string> = {
  VirtualMachine: 'v1.VirtualMachine',
  VirtualMachineInstance: 'v1.VirtualMachineInstance',
};

/** instancetype.kubevirt.io/v1beta1 kinds and their OpenAPI definitions. */
const INSTANCETYPE_KINDS: Record<string, string> = {
  VirtualMachineInstancetype: 'v1beta1.VirtualMachineInstancetype',
  VirtualMachineClusterInstancetype: 'v1beta1.VirtualMachineClusterInstancetype',
  VirtualMachinePreference: 'v1beta1.VirtualMachinePreference',
  VirtualMachineClusterPreference: 'v1beta1.VirtualMachineClusterPreference',
};

/** KubeVirt kinds virtops refuses, with what to use instead. */
export const REPLACED_KINDS: Record<string, string> = {
  VirtualMachineInstanceReplicaSet: `use a ${POOL_KIND} (${POOL_API_VERSION}): replicas of a VirtualMachine template, named <pool>-<n>, scaled from git`,
  VirtualMachineInstancePreset: 'use instancetypes and preferences (instancetype.kubevirt.io/v1beta1 VirtualMachineInstancetype/VirtualMachinePreference) referenced from the VM\'s spec.instancetype/spec.preference',
};

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

export function validateManifest(obj: unknown): ValidationIssue[] {
  if (!isObj(obj)) return [{ path: '', message: 'a manifest must be a YAML/JSON object', fix: 'write one Kubernetes object per YAML document' }];
  const issues: ValidationIssue[] = [];
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || apiVersion === '') issues.push({ path: '/apiVersion', message: 'required field is missing', fix: "set apiVersion, e.g. 'kubevirt.io/v1' or 'v1'" });
  if (typeof kind !== 'string' || kind === '') issues.push({ path: '/kind', message: 'required field is missing', fix: "set kind, e.g. 'VirtualMachine'" });
  if (issues.length) return issues;

  if (apiVersion === 'kubevirt.io/v1' && typeof kind === 'string' && KUBEVIRT_KINDS[kind]) {
    const validate = validatorFor(KUBEVIRT_KINDS[kind]);
    if (!validate(obj)) issues.push(...toIssues(validate.errors ?? []));
    // checkMetadata overlaps the schema on labels/annotations: keep one issue per path.
    const seen = new Set(issues.map((i) => i.path));
    issues.push(...checkMetadata(obj, true).filter((i) => !seen.has(i.path)));
    if (issues.length === 0) issues.push(...(kind === 'VirtualMachine' ? checkVmRules(obj) : checkVmiSpecRules(obj.spec as Obj, '/spec')));
    return sortIssues(issues);
  }
  if (apiVersion === INSTANCETYPE_API_VERSION && typeof kind === 'string' && INSTANCETYPE_KINDS[kind]) {
    const validate = validatorFor(INSTANCETYPE_KINDS[kind]);
    if (!validate(obj)) issues.push(...toIssues(validate.errors ?? []));
    const seen = new Set(issues.map((i) => i.path));
    issues.push(...checkMetadata(obj, !isClusterScopedKind(kind)).filter((i) => !seen.has(i.path)));
    if (issues.length === 0) issues.push(...checkInstancetypeRules(obj));
    return sortIssues(issues);
  }
  if (apiVersion === POOL_API_VERSION && kind === POOL_KIND) {
    const validate = validatorFor('v1beta1.VirtualMachinePool');
    if (!validate(obj)) issues.push(...toIssues(validate.errors ?? []));
    const seen = new Set(issues.map((i) => i.path));
    issues.push(...checkMetadata(obj, true).filter((i) => !seen.has(i.path)));
    if (issues.length === 0) issues.push(...checkPoolRules(obj as unknown as VirtualMachinePool), ...checkPoolTemplate(obj as unknown as VirtualMachinePool));
    return sortIssues(issues);
  }
  if (typeof apiVersion === 'string' && apiVersion.startsWith(`${POOL_GROUP}/`)) {
    return [{ path: '/kind', message: `${apiVersion} ${String(kind)} is not supported by virtops`, fix: `use apiVersion '${POOL_API_VERSION}' with kind ${POOL_KIND}` }];
  }
  if (typeof apiVersion === 'string' && apiVersion.startsWith('kubevirt.io/') && typeof kind === 'string' && REPLACED_KINDS[kind]) {
    return [{ path: '/kind', message: `${kind} is not supported by virtops`, fix: REPLACED_KINDS[kind] }];
  }
  if (apiVersion === CDI_API_VERSION && kind === 'DataVolume') {
    // The vendored OpenAPI has the DataVolume's spec (not the object): schema on spec, then CDI's rules.
    const validate = validatorFor('v1beta1.DataVolumeSpec');
    if (!isObj(obj.spec)) issues.push({ path: '/spec', message: 'required field is missing', fix: 'set spec.source and spec.storage' });
    else if (!validate(obj.spec)) issues.push(...toIssues(validate.errors ?? []).map((i) => ({ ...i, path: `/spec${i.path}` })));
    issues.push(...checkMetadata(obj, true));
    if (issues.length === 0) {
      const r = planImport(obj as unknown as DataVolume, String((obj.metadata as Obj).namespace ?? 'default'));
      // Only what CDI itself would refuse; what virtops cannot import is shown by virtops up.
      if ('issues' in r) issues.push(...r.issues.filter((i) => !i.unsupported).map(({ unsupported: _u, ...i }) => i));
    }
    return sortIssues(issues);
  }
  if (apiVersion === SNAPSHOT_API_VERSION && typeof kind === 'string' && SNAPSHOT_KINDS[kind]) {
    const validate = validatorFor(SNAPSHOT_KINDS[kind]);
    if (!validate(obj)) issues.push(...toIssues(validate.errors ?? []));
    const seen = new Set(issues.map((i) => i.path));
    issues.push(...checkMetadata(obj, true).filter((i) => !seen.has(i.path)));
    if (issues.length === 0) issues.push(...checkSnapshotRules(obj));
    return sortIssues(issues);
  }
  if (typeof apiVersion === 'string' && apiVersion.startsWith(`${INSTANCETYPE_GROUP}/`)) {
    return [{ path: '/kind', message: `${apiVersion} ${String(kind)} is not supported by virtops`, fix: `use apiVersion '${INSTANCETYPE_API_VERSION}' with kind ${Object.keys(INSTANCETYPE_KINDS).join(', ')}` }];
  }
  if (typeof apiVersion === 'string' && apiVersion.startsWith('kubevirt.io/')) {
    return [{ path: '/kind', message: `${apiVersion} ${String(kind)} is not supported by virtops`, fix: "use apiVersion 'kubevirt.io/v1' with kind VirtualMachine or VirtualMachineInstance" }];
  }
  issues.push(...checkMetadata(obj, !CLUSTER_SCOPED.has(String(kind))));
  if (apiVersion === 'v1' && kind === 'Pod') issues.push(...checkPodSpec(obj.spec, '/spec'));
  return sortIssues(issues);
}

/** Human-readable, one issue per line: `source: /path: message (fix: ...)`. */
/** Longest path or message quoted in a line: a 1 MB value must not make a 1 MB refusal. */
const MAX_QUOTED = 500;

function bounded(text: string): string {
  return text.length <= MAX_QUOTED ? text : `${text.slice(0, MAX_QUOTED)}… (${text.length - MAX_QUOTED} more characters)`;
}

export function formatIssues(issues: readonly ValidationIssue[], source?: string): string {
  return issues
    .map((i) => `${source ? `${bounded(source)}: ` : ''}${bounded(i.path || '/')}: ${bounded(i.message)}${i.fix ? ` (fix: ${bounded(i.fix)})` : ''}`)
    .join('\n');
}

// ---- ajv errors → issues --------------------------------------------------------------

const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

function toIssues(errors: ErrorObject[]): ValidationIssue[] {
  // int-or-string fields fail both anyOf branches; report the anyOf once instead.
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const out: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfPaths.has(e.instancePath) && e.schemaPath.includes('/anyOf/')) continue;
    const issue = toIssue(e);
    const key = `${issue.path}\0${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(issue);
    }
  }
  return out;
}

function toIssue(e: ErrorObject): ValidationIssue {
  const path = e.instancePath;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String(p.additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: Obj } | undefined)?.properties ?? {});
      const guess = closest(field, known);
      return {
        path: `${path}/${escapePointer(field)}`,
        message: `unknown field '${field}'`,
        fix: guess
          ? `did you mean '${guess}'?`
          : known.length ? `remove it; fields allowed here: ${known.join(', ')}` : 'remove it; this object takes no fields',
      };
    }
    case 'required':
      return { path: `${path}/${escapePointer(String(p.missingProperty))}`, message: 'required field is missing', fix: `set ${String(p.missingProperty)}` };
    case 'type':
      return { path, message: `must be ${article(String(p.type))}, got ${describe(e.data)}`, fix: `write ${article(String(p.type))} here` };
    case 'enum':
      return { path, message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(e.data)}` };
    case 'anyOf':
      return typeof e.data === 'string'
        ? { path, message: `'${e.data}' is not a valid quantity`, fix: QUANTITY_FIX }
        : { path, message: `must be an integer or a quantity string, got ${describe(e.data)}`, fix: "write e.g. 2 or '2Gi'" };
    case 'pattern':
      // Quantities carry their pattern next to the int-or-string anyOf (api/structural-schema.ts).
      if (p.pattern === QUANTITY_PATTERN) return { path, message: `'${String(e.data)}' is not a valid quantity`, fix: QUANTITY_FIX };
      return { path, message: `must match ${String(p.pattern)}, got ${JSON.stringify(e.data)}` };
    case 'format':
      return { path, message: `must be a valid ${String(p.format)}, got ${JSON.stringify(e.data)}` };
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** The known name within edit distance 2 (or a case-insensitive match), for "did you mean". */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const c of candidates) {
    if (c.toLowerCase() === word.toLowerCase()) return c;
    const d = editDistance(word, c);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

function sortIssues(issues: ValidationIssue[]): ValidationIssue[] {
  return issues.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// ---- rules beyond the schema ----------------------------------------------------------

const CLUSTER_SCOPED = new Set([
  'Namespace', 'Node', 'PersistentVolume', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition',
  'StorageClass', 'PriorityClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration',
]);

function checkMetadata(obj: Obj, namespaced: boolean): ValidationIssue[] {
  const meta = obj.metadata;
  if (!isObj(meta)) return [{ path: '/metadata', message: 'required field is missing', fix: 'set metadata.name' }];
  const issues: ValidationIssue[] = [];
  const name = meta.name;
  if (typeof name !== 'string' || name === '') {
    issues.push({ path: '/metadata/name', message: 'required field is missing', fix: 'give the object a name (lowercase letters, digits, -)' });
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    issues.push({ path: '/metadata/name', message: `'${name}' is not a valid name`, fix: 'use lowercase letters, digits, - and ., starting and ending with a letter or digit' });
  } else if (obj.apiVersion === 'kubevirt.io/v1' && (name.length > 63 || !DNS1123_LABEL.test(name))) {
    // The VM name becomes the launcher Pod's label value and part of its name.
    issues.push({ path: '/metadata/name', message: `'${name}' is not a valid VM name`, fix: 'use at most 63 lowercase letters, digits and -, starting and ending with a letter or digit' });
  }
  if (meta.namespace !== undefined) {
    if (!namespaced) issues.push({ path: '/metadata/namespace', message: `${String(obj.kind)} is cluster-scoped and takes no namespace`, fix: 'remove metadata.namespace' });
    else if (typeof meta.namespace !== 'string' || !DNS1123_LABEL.test(meta.namespace)) {
      issues.push({ path: '/metadata/namespace', message: `${JSON.stringify(meta.namespace)} is not a valid namespace`, fix: 'use lowercase letters, digits and -' });
    }
  }
  for (const field of ['labels', 'annotations'] as const) {
    const m = meta[field];
    if (m === undefined) continue;
    if (!isObj(m)) {
      issues.push({ path: `/metadata/${field}`, message: 'must be a map of strings', fix: `write ${field} as key: "value" pairs` });
      continue;
    }
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== 'string') issues.push({ path: `/metadata/${field}/${escapePointer(k)}`, message: `must be a string, got ${describe(v)}`, fix: 'quote the value' });
    }
  }
  return issues;
}

function checkVmRules(vm: Obj): ValidationIssue[] {
  const spec = vm.spec as Obj;
  const issues: ValidationIssue[] = [];
  // KubeVirt's OpenAPI has no enum for runStrategy; its webhook checks the value.
  if (spec.runStrategy !== undefined && !(RUN_STRATEGIES as readonly unknown[]).includes(spec.runStrategy)) {
    issues.push({ path: '/spec/runStrategy', message: `must be one of ${RUN_STRATEGIES.join(', ')}, got ${JSON.stringify(spec.runStrategy)}` });
  }
  if (spec.running !== undefined && spec.runStrategy !== undefined) {
    issues.push({ path: '/spec/running', message: 'running and runStrategy are mutually exclusive', fix: 'remove running and keep runStrategy (running: true = Always, false = Halted)' });
  }
  // Each dataVolumeTemplates entry is a DataVolume in the VM's namespace (api/datavolume.ts).
  if (Array.isArray(spec.dataVolumeTemplates)) {
    const ns = String(((vm.metadata ?? {}) as Obj).namespace ?? 'default');
    spec.dataVolumeTemplates.forEach((t: unknown, i: number) => {
      if (!isObj(t)) return;
      const r = planImport({ metadata: (t.metadata ?? { name: '' }) as DataVolume['metadata'], spec: (t.spec ?? {}) as DataVolume['spec'] }, ns, `/spec/dataVolumeTemplates/${i}/spec`);
      if ('issues' in r) issues.push(...r.issues.filter((i) => !i.unsupported).map(({ unsupported: _u, ...i }) => i));
    });
  }
  const template = spec.template as Obj;
  if (template.spec !== undefined) issues.push(...checkVmiSpecRules(template.spec as Obj, '/spec/template/spec'));
  else issues.push({ path: '/spec/template/spec', message: 'required field is missing', fix: 'describe the VM in spec.template.spec (domain, volumes, networks)' });
  return issues;
}

/** Cross-references KubeVirt's admission webhook enforces: disks ↔ volumes, interfaces ↔ networks. */
function checkVmiSpecRules(spec: Obj, at: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const domain = (spec.domain ?? {}) as Obj;
  const devices = (domain.devices ?? {}) as Obj;
  const disks = (devices.disks ?? []) as Obj[];
  const volumes = (spec.volumes ?? []) as Obj[];
  const interfaces = (devices.interfaces ?? []) as Obj[];
  const networks = (spec.networks ?? []) as Obj[];

  const dupes = (list: Obj[], path: string, what: string): Set<string> => {
    const names = new Set<string>();
    list.forEach((item, i) => {
      const n = String(item.name);
      if (names.has(n)) issues.push({ path: `${path}/${i}/name`, message: `duplicate ${what} name '${n}'`, fix: `give each ${what} a unique name` });
      names.add(n);
    });
    return names;
  };
  const volumeNames = dupes(volumes, `${at}/volumes`, 'volume');
  dupes(disks, `${at}/domain/devices/disks`, 'disk');
  const networkNames = dupes(networks, `${at}/networks`, 'network');
  dupes(interfaces, `${at}/domain/devices/interfaces`, 'interface');

  disks.forEach((d, i) => {
    if (!volumeNames.has(String(d.name))) {
      issues.push({ path: `${at}/domain/devices/disks/${i}/name`, message: `disk '${String(d.name)}' has no volume of the same name`, fix: `add a volume named '${String(d.name)}' to spec.volumes or rename the disk` });
    }
  });
  interfaces.forEach((n, i) => {
    if (!networkNames.has(String(n.name))) {
      issues.push({ path: `${at}/domain/devices/interfaces/${i}/name`, message: `interface '${String(n.name)}' has no network of the same name`, fix: `add a network named '${String(n.name)}' to spec.networks or rename the interface` });
    }
  });
  const cpu = (domain.cpu ?? {}) as Obj;
  for (const k of ['cores', 'sockets', 'threads'] as const) {
    if (typeof cpu[k] === 'number' && (cpu[k] as number) < 1) {
      issues.push({ path: `${at}/domain/cpu/${k}`, message: `must be at least 1, got ${String(cpu[k])}`, fix: `set ${k} to 1 or more, or leave it out` });
    }
  }
  return issues;
}

/**
 * The template's VM rules (disks ↔ volumes, runStrategy...), checked on the pool's first VM
 * and reported at the template's paths.
 */
function checkPoolTemplate(pool: VirtualMachinePool): ValidationIssue[] {
  const sample = poolVm(pool, 0);
  return checkVmRules(sample as unknown as Obj).map((i) => ({ ...i, path: i.path.replace(/^\/spec/, '/spec/virtualMachineTemplate/spec') }));
}

/** What KubeVirt's instancetype and preference webhooks check beyond the schema. */
function checkInstancetypeRules(obj: Obj): ValidationIssue[] {
  const spec = (obj.spec ?? {}) as Obj;
  const issues: ValidationIssue[] = [];
  if (obj.kind === 'VirtualMachineInstancetype' || obj.kind === 'VirtualMachineClusterInstancetype') {
    const cpu = (spec.cpu ?? {}) as Obj;
    if (typeof cpu.guest === 'number' && cpu.guest < 1) issues.push({ path: '/spec/cpu/guest', message: `must be at least 1, got ${cpu.guest}`, fix: 'give the instancetype 1 or more vCPUs' });
    const memory = (spec.memory ?? {}) as Obj;
    const pct = memory.overcommitPercent;
    if (typeof pct === 'number' && (pct < 0 || pct > 100)) issues.push({ path: '/spec/memory/overcommitPercent', message: `must be between 0 and 100, got ${pct}`, fix: 'write a percentage, e.g. 50' });
    if (pct !== undefined && pct !== 0 && memory.hugepages !== undefined) {
      issues.push({ path: '/spec/memory/overcommitPercent', message: 'memory overcommit cannot be combined with hugepages', fix: 'remove overcommitPercent or memory.hugepages' });
    }
  } else {
    const topology = ((spec.cpu ?? {}) as Obj).preferredCPUTopology;
    if (topology !== undefined && !(PREFERRED_CPU_TOPOLOGIES as readonly unknown[]).includes(topology)) {
      issues.push({ path: '/spec/cpu/preferredCPUTopology', message: `must be one of ${PREFERRED_CPU_TOPOLOGIES.slice(0, 5).join(', ')}, got ${JSON.stringify(topology)}` });
    }
  }
  return issues;
}

function checkPodSpec(spec: unknown, at: string): ValidationIssue[] {
  if (!isObj(spec)) return [{ path: at, message: 'required field is missing', fix: 'a Pod needs spec.containers' }];
  const issues: ValidationIssue[] = [];
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    issues.push({ path: `${at}/containers`, message: 'a Pod needs at least one container', fix: 'add a container with a name and an image' });
  }
  const volumeNames = new Set(Array.isArray(spec.volumes) ? spec.volumes.map((v: unknown) => (isObj(v) ? v.name : undefined)) : []);
  for (const list of ['initContainers', 'containers'] as const) {
    const cs = spec[list];
    if (cs === undefined) continue;
    if (!Array.isArray(cs)) {
      issues.push({ path: `${at}/${list}`, message: 'must be an array' });
      continue;
    }
    cs.forEach((c: unknown, i) => {
      const p = `${at}/${list}/${i}`;
      if (!isObj(c)) return issues.push({ path: p, message: 'must be an object' });
      if (typeof c.name !== 'string' || !DNS1123_LABEL.test(c.name)) issues.push({ path: `${p}/name`, message: `${JSON.stringify(c.name)} is not a valid container name`, fix: 'use lowercase letters, digits and -' });
      if (typeof c.image !== 'string' || c.image === '') issues.push({ path: `${p}/image`, message: 'required field is missing', fix: 'set the container image' });
      const mounts = Array.isArray(c.volumeMounts) ? c.volumeMounts : [];
      mounts.forEach((m: unknown, j) => {
        if (isObj(m) && !volumeNames.has(m.name)) {
          issues.push({ path: `${p}/volumeMounts/${j}/name`, message: `mounts volume '${String(m.name)}', which spec.volumes does not define`, fix: 'add the volume or fix the name' });
        }
      });
      return undefined;
    });
  }
  return issues;
}
