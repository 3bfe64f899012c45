/**
 * Instancetype and preference expansion, as KubeVirt does it (pkg/instancetype: find,
 * apply, preference/apply, conflict, requirements): pure, no I/O. The caller gives a
 * `resolve(kind, name, namespace)` that returns the referenced object or undefined.
 *
 *   const r = expandVm(vm, resolverFor(objects));
 *   if ('errors' in r) throw new Error(formatExpansionErrors(r.errors));
 *   r.vm   // spec.template.spec filled in; spec.instancetype/preference kept
 *
 * What an instancetype sets, the VM may not set (a conflict names the VM field and the
 * instancetype field); what a preference sets is only a default for what the VM leaves unset.
 * The order follows KubeVirt's expand: a disk for every volume without one, the default pod
 * interface, the instancetype (all conflicts at once), then the preference.
 */
import type { VirtualMachine, VirtualMachineInstanceSpec, ObjectMeta } from './kubevirt.js';
import {
  CLUSTER_INSTANCETYPE_KIND, CLUSTER_PREFERENCE_KIND, INSTANCETYPE_API_VERSION, INSTANCETYPE_KIND, PREFERENCE_KIND,
  isInstancetypeObject,
  type AnyInstancetype, type AnyPreference, type InstancetypeKindName, type InstancetypeObject, type InstancetypeObjectKind,
  type PreferenceKindName, type PreferredCPUTopology, type SpreadAcross, type VirtualMachineInstancetypeSpec,
  type VirtualMachinePreferenceSpec,
} from './instancetype.js';

export interface ExpansionError {
  /** Dotted path of the field at fault, e.g. `spec.template.spec.domain.cpu.sockets`. */
  field: string;
  message: string;
  fix: string;
}

/** Returns the object of that kind and name (namespace ignored for cluster kinds), or undefined. */
export type Resolve = (kind: InstancetypeObjectKind, name: string, namespace: string) => InstancetypeObject | undefined;

export interface Expanded {
  /** The VM with its template spec filled from the instancetype and preference; matchers kept. */
  vm: VirtualMachine;
  /** The objects the VM expanded against (undefined when it references none). */
  instancetype?: AnyInstancetype;
  preference?: AnyPreference;
}

export type ExpandResult = Expanded | { errors: ExpansionError[] };

/** True when the VM references an instancetype or a preference. */
export function referencesInstancetype(vm: VirtualMachine): boolean {
  return vm.spec?.instancetype !== undefined || vm.spec?.preference !== undefined;
}

/** Expands `vm` against the objects `resolve` finds. A VM without matchers comes back as is. */
export function expandVm(vm: VirtualMachine, resolve: Resolve): ExpandResult {
  if (!referencesInstancetype(vm)) return { vm };
  const found = findReferenced(vm, resolve);
  if ('errors' in found) return found;
  const applied = applySpecs(vm, found.instancetype?.spec, found.preference?.spec, describeSources(found));
  if ('errors' in applied) return applied;
  return { vm: applied.vm, ...found };
}

/** The objects `vm`'s matchers name, or errors naming the matcher field and the fix. */
export function findReferenced(vm: VirtualMachine, resolve: Resolve): { instancetype?: AnyInstancetype; preference?: AnyPreference } | { errors: ExpansionError[] } {
  const errors: ExpansionError[] = [];
  const namespace = vm.metadata.namespace ?? 'default';
  let instancetype: AnyInstancetype | undefined;
  let preference: AnyPreference | undefined;
  const it = vm.spec.instancetype;
  if (it !== undefined) {
    const kind = matcherKind(it.kind, 'instancetype', errors);
    if (checkMatcher(it, 'instancetype', errors) && kind) {
      const obj = resolve(kind, it.name!, namespace);
      if (obj === undefined || obj.kind !== kind) errors.push(notFound('instancetype', kind, it.name!, namespace));
      else instancetype = obj as AnyInstancetype;
    }
  }
  const pref = vm.spec.preference;
  if (pref !== undefined) {
    const kind = matcherKind(pref.kind, 'preference', errors);
    if (checkMatcher(pref, 'preference', errors) && kind) {
      const obj = resolve(kind, pref.name!, namespace);
      if (obj === undefined || obj.kind !== kind) errors.push(notFound('preference', kind, pref.name!, namespace));
      else preference = obj as AnyPreference;
    }
  }
  if (errors.length) return { errors };
  return { ...(instancetype ? { instancetype } : {}), ...(preference ? { preference } : {}) };
}

/** What the instancetype/preference are called in messages: `VirtualMachineInstancetype clarge`. */
export interface SpecSources {
  instancetype?: string;
  preference?: string;
}

function describeSources(found: { instancetype?: AnyInstancetype; preference?: AnyPreference }): SpecSources {
  return {
    ...(found.instancetype ? { instancetype: `${found.instancetype.kind} ${found.instancetype.metadata.name ?? ''}` } : {}),
    ...(found.preference ? { preference: `${found.preference.kind} ${found.preference.metadata.name ?? ''}` } : {}),
  };
}

/**
 * Applies an instancetype spec and a preference spec to a copy of `vm` (either may be
 * absent). Used directly when the specs come from a recorded revision instead of objects.
 */
export function applySpecs(
  vm: VirtualMachine,
  instancetypeSpec: VirtualMachineInstancetypeSpec | undefined,
  preferenceSpec: VirtualMachinePreferenceSpec | undefined,
  sources: SpecSources = {},
): { vm: VirtualMachine } | { errors: ExpansionError[] } {
  const itName = sources.instancetype ?? 'the instancetype';
  const spread = checkSpreadTopology(instancetypeSpec, preferenceSpec, itName, sources.preference ?? 'the preference');
  if (spread) return { errors: [spread] };
  const requirementErrors = checkRequirements(instancetypeSpec, preferenceSpec, vm.spec.template.spec, sources);
  if (requirementErrors.length) return { errors: requirementErrors };

  const out = structuredClone(vm);
  const spec = out.spec.template.spec as unknown as Obj;
  out.spec.template.metadata ??= {};
  const meta = out.spec.template.metadata;
  addDefaultVolumeDisks(spec);
  addDefaultPodInterface(spec);
  if (instancetypeSpec) {
    const conflicts = applyInstancetype(instancetypeSpec, preferenceSpec, spec, meta);
    if (conflicts.length) return { errors: conflicts.map((c) => conflictError(c, itName)) };
  }
  if (preferenceSpec) applyPreference(preferenceSpec, spec, meta);
  if (meta.annotations && Object.keys(meta.annotations).length === 0) delete meta.annotations;
  if (Object.keys(meta).length === 0) delete out.spec.template.metadata;
  return { vm: out };
}

/**
 * The annotations KubeVirt puts on a VMI created from a VM with matchers, naming what it was
 * sized by: `kubevirt.io/instancetype-name` or `kubevirt.io/cluster-instancetype-name`, and
 * `kubevirt.io/preference-name` or `kubevirt.io/cluster-preference-name`.
 */
export function instancetypeVmiAnnotations(vm: VirtualMachine): Record<string, string> {
  const out: Record<string, string> = {};
  const it = vm.spec.instancetype;
  if (it?.name) {
    const errors: ExpansionError[] = [];
    out[matcherKind(it.kind, 'instancetype', errors) === INSTANCETYPE_KIND ? 'kubevirt.io/instancetype-name' : 'kubevirt.io/cluster-instancetype-name'] = it.name;
  }
  const pref = vm.spec.preference;
  if (pref?.name) {
    const errors: ExpansionError[] = [];
    out[matcherKind(pref.kind, 'preference', errors) === PREFERENCE_KIND ? 'kubevirt.io/preference-name' : 'kubevirt.io/cluster-preference-name'] = pref.name;
  }
  return out;
}

/** One line per error: `field: message (fix: ...)`. */
export function formatExpansionErrors(errors: readonly ExpansionError[], where?: string): string {
  return errors.map((e) => `${where ? `${where}: ` : ''}${e.field}: ${e.message} (fix: ${e.fix})`).join('\n');
}

/** A resolver over a list of manifests (non-instancetype objects are ignored). */
export function resolverFor(objects: readonly unknown[]): Resolve {
  const byKey = new Map<string, InstancetypeObject>();
  for (const o of objects) {
    if (!isInstancetypeObject(o) || o.apiVersion !== INSTANCETYPE_API_VERSION) continue;
    const name = o.metadata?.name;
    if (typeof name !== 'string') continue;
    byKey.set(objectKey(o.kind, name, o.metadata.namespace ?? 'default'), o);
  }
  return (kind, name, namespace) => byKey.get(objectKey(kind, name, namespace));
}

function objectKey(kind: string, name: string, namespace: string): string {
  return kind === CLUSTER_INSTANCETYPE_KIND || kind === CLUSTER_PREFERENCE_KIND ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}

// ---- matchers ---------------------------------------------------------------------------

type Which = 'instancetype' | 'preference';

/** KubeVirt takes the kind case-insensitively, singular or plural resource name; empty = cluster kind. */
function matcherKind(kind: string | undefined, which: Which, errors: ExpansionError[]): InstancetypeKindName | PreferenceKindName | undefined {
  const k = (kind ?? '').toLowerCase();
  const [namespaced, cluster] = which === 'instancetype' ? [INSTANCETYPE_KIND, CLUSTER_INSTANCETYPE_KIND] as const : [PREFERENCE_KIND, CLUSTER_PREFERENCE_KIND] as const;
  if (k === namespaced.toLowerCase() || k === `${namespaced.toLowerCase()}s`) return namespaced;
  if (k === '' || k === cluster.toLowerCase() || k === `${cluster.toLowerCase()}s`) return cluster;
  errors.push({ field: `spec.${which}.kind`, message: `unexpected kind "${kind}" in the ${which} matcher`, fix: `use ${namespaced} or ${cluster} (or leave kind out for ${cluster})` });
  return undefined;
}

function checkMatcher(m: { name?: string; inferFromVolume?: string }, which: Which, errors: ExpansionError[]): boolean {
  if (m.inferFromVolume !== undefined && m.inferFromVolume !== '') {
    errors.push({ field: `spec.${which}.inferFromVolume`, message: `inferring the ${which} from a volume's labels is not supported by virtops`, fix: `name the ${which} in spec.${which}.name instead` });
    return false;
  }
  if (typeof m.name !== 'string' || m.name === '') {
    errors.push({ field: `spec.${which}.name`, message: `the ${which} matcher names no ${which}`, fix: `set spec.${which}.name` });
    return false;
  }
  return true;
}

function notFound(which: Which, kind: string, name: string, namespace: string): ExpansionError {
  const cluster = kind === CLUSTER_INSTANCETYPE_KIND || kind === CLUSTER_PREFERENCE_KIND;
  return {
    field: `spec.${which}.name`,
    message: `${kind} "${name}"${cluster ? '' : ` in namespace "${namespace}"`} not found`,
    fix: `add a ${kind} named "${name}"${cluster ? '' : ` to namespace "${namespace}"`} to the manifests${cluster ? ' (the bundled catalogue: dsl/common-instancetypes.ts)' : ''}, or fix spec.${which}.name${cluster ? '' : ` / spec.${which}.kind (no kind means ${kind.replace('VirtualMachine', 'VirtualMachineCluster')})`}`,
  };
}

// ---- instancetype: sets, and refuses what the VM already sets --------------------------------

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

interface Conflict {
  /** Path under spec.template.spec (or `annotations.<key>` for template metadata). */
  vmField: string;
  /** The instancetype field that sets it. */
  itField: string;
}

const BASE = 'spec.template.spec';

function obj(parent: Obj, key: string): Obj {
  if (!isObj(parent[key])) parent[key] = {};
  return parent[key] as Obj;
}

function applyInstancetype(it: VirtualMachineInstancetypeSpec, pref: VirtualMachinePreferenceSpec | undefined, spec: Obj, meta: ObjectMeta): Conflict[] {
  const conflicts: Conflict[] = [];
  const domain = obj(spec, 'domain');
  const devices = obj(domain, 'devices');
  const c = (vmField: string, itField: string): void => void conflicts.push({ vmField, itField });

  // nodeSelector, schedulerName
  if (it.nodeSelector !== undefined) {
    if (spec.nodeSelector !== undefined) c(`${BASE}.nodeSelector`, 'spec.nodeSelector');
    else spec.nodeSelector = { ...it.nodeSelector };
  }
  if (it.schedulerName) {
    if (spec.schedulerName) c(`${BASE}.schedulerName`, 'spec.schedulerName');
    else spec.schedulerName = it.schedulerName;
  }

  // CPU: every conflict is reported; nothing is applied when there is one.
  const cpu = obj(domain, 'cpu');
  const resources = isObj(domain.resources) ? domain.resources : {};
  const requests = isObj(resources.requests) ? resources.requests : {};
  const limits = isObj(resources.limits) ? resources.limits : {};
  const cpuConflicts: Conflict[] = [];
  const cc = (vmField: string, itField: string): void => void cpuConflicts.push({ vmField, itField });
  if (requests.cpu !== undefined) cc(`${BASE}.domain.resources.requests.cpu`, 'spec.cpu.guest');
  if (limits.cpu !== undefined) cc(`${BASE}.domain.resources.limits.cpu`, 'spec.cpu.guest');
  for (const k of ['sockets', 'cores', 'threads'] as const) if (nonZero(cpu[k])) cc(`${BASE}.domain.cpu.${k}`, 'spec.cpu.guest');
  if (cpu.model && it.cpu.model !== undefined) cc(`${BASE}.domain.cpu.model`, 'spec.cpu.model');
  if (cpu.dedicatedCpuPlacement === true && it.cpu.dedicatedCPUPlacement !== undefined) cc(`${BASE}.domain.cpu.dedicatedCpuPlacement`, 'spec.cpu.dedicatedCPUPlacement');
  if (cpu.isolateEmulatorThread === true && it.cpu.isolateEmulatorThread !== undefined) cc(`${BASE}.domain.cpu.isolateEmulatorThread`, 'spec.cpu.isolateEmulatorThread');
  if (cpu.numa !== undefined && it.cpu.numa !== undefined) cc(`${BASE}.domain.cpu.numa`, 'spec.cpu.numa');
  if (cpu.realtime !== undefined && it.cpu.realtime !== undefined) cc(`${BASE}.domain.cpu.realtime`, 'spec.cpu.realtime');
  if (cpuConflicts.length) conflicts.push(...cpuConflicts);
  else {
    if (it.cpu.model !== undefined) cpu.model = it.cpu.model;
    if (it.cpu.dedicatedCPUPlacement !== undefined) cpu.dedicatedCpuPlacement = it.cpu.dedicatedCPUPlacement;
    if (it.cpu.isolateEmulatorThread !== undefined) cpu.isolateEmulatorThread = it.cpu.isolateEmulatorThread;
    if (it.cpu.numa !== undefined) cpu.numa = structuredClone(it.cpu.numa);
    if (it.cpu.realtime !== undefined) cpu.realtime = structuredClone(it.cpu.realtime);
    if (it.cpu.maxSockets !== undefined) cpu.maxSockets = it.cpu.maxSockets;
    Object.assign(cpu, guestTopology(it.cpu.guest, pref));
  }

  // Memory: the first conflict only, as KubeVirt.
  const memory = obj(domain, 'memory');
  const memoryConflict: Conflict | undefined =
    memory.guest !== undefined ? { vmField: `${BASE}.domain.memory.guest`, itField: 'spec.memory.guest' }
    : memory.hugepages !== undefined && it.memory.hugepages !== undefined ? { vmField: `${BASE}.domain.memory.hugepages`, itField: 'spec.memory.hugepages' }
    : memory.maxGuest !== undefined && it.memory.maxGuest !== undefined ? { vmField: `${BASE}.domain.memory.maxGuest`, itField: 'spec.memory.maxGuest' }
    : requests.memory !== undefined ? { vmField: `${BASE}.domain.resources.requests.memory`, itField: 'spec.memory.guest' }
    : limits.memory !== undefined ? { vmField: `${BASE}.domain.resources.limits.memory`, itField: 'spec.memory.guest' }
    : undefined;
  if (memoryConflict) conflicts.push(memoryConflict);
  else {
    memory.guest = String(it.memory.guest);
    if (it.memory.overcommitPercent && it.memory.overcommitPercent > 0) {
      const res = obj(domain, 'resources');
      obj(res, 'requests').memory = overcommittedRequest(String(it.memory.guest), it.memory.overcommitPercent);
    }
    if (it.memory.hugepages !== undefined) memory.hugepages = structuredClone(it.memory.hugepages);
    if (it.memory.maxGuest !== undefined) memory.maxGuest = String(it.memory.maxGuest);
  }

  if (it.ioThreads?.supplementalPoolThreadCount !== undefined) {
    const io = isObj(domain.ioThreads) ? domain.ioThreads : undefined;
    if (io?.supplementalPoolThreadCount !== undefined) c(`${BASE}.domain.ioThreads.supplementalPoolThreadCount`, 'spec.ioThreads.supplementalPoolThreadCount');
    else obj(domain, 'ioThreads').supplementalPoolThreadCount = it.ioThreads.supplementalPoolThreadCount;
  }
  if (it.ioThreadsPolicy !== undefined) {
    if (domain.ioThreadsPolicy !== undefined) c(`${BASE}.domain.ioThreadsPolicy`, 'spec.ioThreadsPolicy');
    else domain.ioThreadsPolicy = it.ioThreadsPolicy;
  }
  if (it.launchSecurity !== undefined) {
    if (domain.launchSecurity !== undefined) c(`${BASE}.domain.launchSecurity`, 'spec.launchSecurity');
    else domain.launchSecurity = structuredClone(it.launchSecurity);
  }
  for (const list of ['gpus', 'hostDevices'] as const) {
    const wanted = it[list];
    if (!wanted || wanted.length === 0) continue;
    if (Array.isArray(devices[list]) && (devices[list] as unknown[]).length > 0) c(`${BASE}.domain.devices.${list}`, `spec.${list}`);
    else devices[list] = structuredClone(wanted);
  }
  // Annotations: a different value on the template is a conflict; the same value is fine.
  const annotations = (meta.annotations ??= {});
  for (const [key, value] of Object.entries(it.annotations ?? {})) {
    if (key in annotations) {
      if (annotations[key] !== value) c(`spec.template.metadata.annotations.${key}`, `spec.annotations.${key}`);
      continue;
    }
    annotations[key] = value;
  }
  return conflicts;
}

function nonZero(v: unknown): boolean {
  return v !== undefined && v !== null && v !== 0;
}

function conflictError(c: Conflict, instancetype: string): ExpansionError {
  return {
    field: c.vmField,
    message: `VM field(s) ${c.vmField} conflicts with selected instance type (${instancetype} sets ${c.itField})`,
    fix: `remove ${c.vmField} from the VM (${instancetype} decides it through ${c.itField}), or drop spec.instancetype`,
  };
}

/** vCPUs laid out as the preference's preferredCPUTopology says (default: all sockets). */
export function guestTopology(vcpus: number, pref: VirtualMachinePreferenceSpec | undefined): { sockets: number; cores: number; threads: number } {
  const t = { sockets: 1, cores: 1, threads: 1 };
  if (vcpus === 1) return t;
  switch (preferredTopology(pref)) {
    case 'cores': case 'preferCores':
      t.cores = vcpus;
      break;
    case 'threads': case 'preferThreads':
      t.threads = vcpus;
      break;
    case 'spread': case 'preferSpread': {
      const { ratio, across } = spreadOptions(pref);
      if (across === 'SocketsCores') {
        t.cores = ratio;
        t.sockets = Math.trunc(vcpus / ratio);
      } else if (across === 'CoresThreads') {
        t.threads = ratio;
        t.cores = Math.trunc(vcpus / ratio);
      } else {
        t.threads = 2;
        t.cores = ratio;
        t.sockets = Math.trunc(vcpus / 2 / ratio);
      }
      break;
    }
    default: // sockets, any and their deprecated spellings
      t.sockets = vcpus;
  }
  return t;
}

function preferredTopology(pref: VirtualMachinePreferenceSpec | undefined): PreferredCPUTopology {
  return pref?.cpu?.preferredCPUTopology ?? 'sockets';
}

function spreadOptions(pref: VirtualMachinePreferenceSpec | undefined): { ratio: number; across: SpreadAcross } {
  let ratio = pref?.preferSpreadSocketToCoreRatio || 2;
  let across: SpreadAcross = 'SocketsCores';
  if (pref?.cpu?.spreadOptions?.across) across = pref.cpu.spreadOptions.across;
  if (pref?.cpu?.spreadOptions?.ratio !== undefined) ratio = pref.cpu.spreadOptions.ratio;
  return { ratio, across };
}

function checkSpreadTopology(it: VirtualMachineInstancetypeSpec | undefined, pref: VirtualMachinePreferenceSpec | undefined, itName: string, prefName: string): ExpansionError | undefined {
  const topology = preferredTopology(pref);
  if (!it || (topology !== 'spread' && topology !== 'preferSpread')) return undefined;
  const { ratio, across } = spreadOptions(pref);
  const guest = it.cpu.guest;
  const bad = across === 'SocketsCoresThreads' ? guest % 2 > 0 || (guest / 2) % ratio > 0 : guest % ratio > 0;
  if (!bad) return undefined;
  const by = across === 'SocketsCoresThreads' ? `2 threads per core and a ratio of ${ratio}` : across === 'CoresThreads' ? `${ratio} threads per core` : `a socket-to-core ratio of ${ratio}`;
  return {
    field: 'instancetype.spec.cpu.guest',
    message: `${guest} vCPUs provided by ${itName} are not divisible by ${by} (${prefName} spreads across ${across})`,
    fix: `pick an instancetype whose vCPU count is divisible, or change ${prefName}'s cpu.spreadOptions`,
  };
}

// ---- preference requirements -------------------------------------------------------------

function checkRequirements(it: VirtualMachineInstancetypeSpec | undefined, pref: VirtualMachinePreferenceSpec | undefined, spec: VirtualMachineInstanceSpec, sources: SpecSources): ExpansionError[] {
  const req = pref?.requirements;
  if (!req) return [];
  const prefName = sources.preference ?? 'the preference';
  const errors: ExpansionError[] = [];
  if (req.cpu) {
    const need = req.cpu.guest;
    if (it) {
      if (it.cpu.guest < need) errors.push({ field: 'spec.instancetype', message: `insufficient CPU resources of ${it.cpu.guest} vCPU provided by instance type, ${prefName} requires ${need} vCPU`, fix: `pick an instancetype with at least ${need} vCPUs` });
    } else {
      const cpu = spec.domain?.cpu;
      const topology = preferredTopology(pref);
      const n = (k: 'sockets' | 'cores' | 'threads'): number => cpu?.[k] ?? 0;
      const [have, fields] =
        topology === 'threads' || topology === 'preferThreads' ? [n('threads'), ['threads']]
        : topology === 'cores' || topology === 'preferCores' ? [n('cores'), ['cores']]
        : topology === 'any' || topology === 'preferAny' ? [n('cores') * n('sockets') * n('threads'), ['cores', 'sockets', 'threads']]
        : topology === 'spread' || topology === 'preferSpread' ? spreadCount(pref, n)
        : [n('sockets'), ['sockets']];
      if (cpu === undefined) errors.push({ field: `${BASE}.domain.cpu`, message: `no CPU resources provided by VirtualMachine, ${prefName} requires ${need} vCPU`, fix: `give the VM at least ${need} vCPUs` });
      else if (have < need) errors.push({ field: fields.map((f) => `${BASE}.domain.cpu.${f}`).join(', '), message: `insufficient CPU resources of ${have} vCPU provided by VirtualMachine, ${prefName} requires ${need} vCPU provided as ${fields.join(', ')}`, fix: `raise ${fields.join('/')} to give at least ${need} vCPUs` });
    }
  }
  if (req.memory) {
    const need = String(req.memory.guest);
    const vmGuest = spec.domain?.memory?.guest;
    const provided = vmGuest ?? (it ? String(it.memory.guest) : '0');
    if (quantityBytes(provided) < quantityBytes(need)) {
      errors.push(it && vmGuest === undefined
        ? { field: 'spec.instancetype', message: `insufficient Memory resources of ${provided} provided by instance type, ${prefName} requires ${need}`, fix: `pick an instancetype with at least ${need} of memory` }
        : { field: `${BASE}.domain.memory`, message: `insufficient Memory resources of ${provided} provided by VirtualMachine, ${prefName} requires ${need}`, fix: `give the VM at least ${need} of guest memory` });
    }
  }
  if (req.architecture && spec.architecture !== undefined && spec.architecture !== req.architecture) {
    errors.push({ field: `${BASE}.architecture`, message: `${prefName} requires architecture ${req.architecture}, the VM asks for ${spec.architecture}`, fix: `set architecture ${req.architecture} or use another preference` });
  }
  return errors;
}

function spreadCount(pref: VirtualMachinePreferenceSpec | undefined, n: (k: 'sockets' | 'cores' | 'threads') => number): [number, string[]] {
  const { across } = spreadOptions(pref);
  if (across === 'CoresThreads') return [n('cores') * n('threads'), ['cores', 'threads']];
  if (across === 'SocketsCoresThreads') return [n('sockets') * n('cores') * n('threads'), ['sockets', 'cores', 'threads']];
  return [n('sockets') * n('cores'), ['sockets', 'cores']];
}

// ---- defaults KubeVirt's expand adds first -----------------------------------------------

/** Every volume without a disk (or filesystem) of its name gets a plain disk. */
function addDefaultVolumeDisks(spec: Obj): void {
  const volumes = Array.isArray(spec.volumes) ? (spec.volumes as Obj[]) : [];
  if (volumes.length === 0) return;
  const devices = obj(obj(spec, 'domain'), 'devices');
  const names = new Set<unknown>([
    ...(Array.isArray(devices.disks) ? (devices.disks as Obj[]) : []).map((d) => d.name),
    ...(Array.isArray(devices.filesystems) ? (devices.filesystems as Obj[]) : []).map((f) => f.name),
  ]);
  for (const v of volumes) {
    if (names.has(v.name)) continue;
    devices.disks = [...(Array.isArray(devices.disks) ? (devices.disks as Obj[]) : []), { name: v.name }];
  }
}

/**
 * No interfaces and no networks, and autoattachPodInterface not false: the `default` pod
 * interface, with the binding virtops' converter gives it (masquerade).
 */
function addDefaultPodInterface(spec: Obj): void {
  const devices = obj(obj(spec, 'domain'), 'devices');
  if (devices.autoattachPodInterface === false) return;
  const nets = Array.isArray(spec.networks) ? spec.networks : [];
  const ifaces = Array.isArray(devices.interfaces) ? devices.interfaces : [];
  if (nets.length > 0 || ifaces.length > 0) return;
  devices.interfaces = [{ name: 'default', masquerade: {} }];
  spec.networks = [{ name: 'default', pod: {} }];
}

// ---- preference: defaults only -----------------------------------------------------------

const INTERFACE_BINDINGS = ['bridge', 'masquerade', 'slirp', 'passt', 'passtBinding', 'sriov', 'macvtap', 'binding'];

function applyPreference(pref: VirtualMachinePreferenceSpec, spec: Obj, meta: ObjectMeta): void {
  const domain = obj(spec, 'domain');
  const devices = obj(domain, 'devices');
  const setDefault = (target: Obj, key: string, value: unknown): void => {
    if (value !== undefined && target[key] === undefined) target[key] = structuredClone(value);
  };

  // CPU features the VM does not list already
  const features = pref.cpu?.preferredCPUFeatures ?? [];
  if (features.length) {
    const cpu = obj(domain, 'cpu');
    const list = Array.isArray(cpu.features) ? (cpu.features as Obj[]) : [];
    const have = new Set(list.map((f) => f.name));
    cpu.features = [...list, ...features.filter((f) => !have.has(f.name)).map((f) => ({ ...f }))];
  }

  const d = pref.devices;
  if (d) {
    setDefault(devices, 'useVirtioTransitional', d.preferredUseVirtioTransitional);
    setDefault(devices, 'blockMultiQueue', d.preferredBlockMultiQueue);
    setDefault(devices, 'networkInterfaceMultiqueue', d.preferredNetworkInterfaceMultiQueue);
    // KubeVirt overwrites disableHotplug (a plain bool in Go); here it is a default like the rest.
    setDefault(devices, 'disableHotplug', d.preferredDisableHotplug);
    if (d.preferredSoundModel && isObj(devices.sound) && !devices.sound.model) devices.sound.model = d.preferredSoundModel;
    setDefault(devices, 'rng', d.preferredRng);
    setDefault(devices, 'tpm', d.preferredTPM);
    if (d.preferredVideoType !== undefined) {
      const video = obj(devices, 'video');
      if (!video.type) video.type = d.preferredVideoType;
    }
    setDefault(devices, 'autoattachGraphicsDevice', d.preferredAutoattachGraphicsDevice);
    setDefault(devices, 'autoattachMemBalloon', d.preferredAutoattachMemBalloon);
    setDefault(devices, 'autoattachPodInterface', d.preferredAutoattachPodInterface);
    setDefault(devices, 'autoattachSerialConsole', d.preferredAutoattachSerialConsole);
    setDefault(devices, 'autoattachInputDevice', d.preferredAutoattachInputDevice);

    for (const disk of Array.isArray(devices.disks) ? (devices.disks as Obj[]) : []) {
      if (disk.disk === undefined && disk.cdrom === undefined && disk.lun === undefined) disk.disk = {};
      if (isObj(disk.disk)) {
        if (d.preferredDiskBus && !disk.disk.bus) disk.disk.bus = d.preferredDiskBus;
        setDefault(disk, 'blockSize', d.preferredDiskBlockSize);
        if (d.preferredDiskCache && !disk.cache) disk.cache = d.preferredDiskCache;
        if (d.preferredDiskIO && !disk.io) disk.io = d.preferredDiskIO;
        if (d.preferredDiskDedicatedIoThread !== undefined && disk.dedicatedIOThread === undefined && disk.disk.bus === 'virtio') {
          disk.dedicatedIOThread = d.preferredDiskDedicatedIoThread;
        }
      } else if (isObj(disk.cdrom)) {
        if (d.preferredCdromBus && !disk.cdrom.bus) disk.cdrom.bus = d.preferredCdromBus;
      } else if (isObj(disk.lun)) {
        if (d.preferredLunBus && !disk.lun.bus) disk.lun.bus = d.preferredLunBus;
      }
    }
    const networks = Array.isArray(spec.networks) ? (spec.networks as Obj[]) : [];
    for (const iface of Array.isArray(devices.interfaces) ? (devices.interfaces as Obj[]) : []) {
      if (d.preferredInterfaceModel && !iface.model) iface.model = d.preferredInterfaceModel;
      const onPod = networks.find((n) => n.name === iface.name)?.pod !== undefined;
      if (d.preferredInterfaceMasquerade !== undefined && onPod && !INTERFACE_BINDINGS.some((b) => iface[b] !== undefined)) {
        iface.masquerade = structuredClone(d.preferredInterfaceMasquerade);
      }
    }
    for (const input of Array.isArray(devices.inputs) ? (devices.inputs as Obj[]) : []) {
      if (d.preferredInputBus && !input.bus) input.bus = d.preferredInputBus;
      if (d.preferredInputType && !input.type) input.type = d.preferredInputType;
    }
    if (d.preferredPanicDeviceModel !== undefined) {
      const panics = Array.isArray(devices.panicDevices) ? (devices.panicDevices as Obj[]) : [];
      if (panics.length === 0) devices.panicDevices = [{ model: d.preferredPanicDeviceModel }];
      else for (const p of panics) if (p.model === undefined) p.model = d.preferredPanicDeviceModel;
    }
  }

  const f = pref.features;
  if (f) {
    const feats = obj(domain, 'features');
    // KubeVirt overwrites acpi (a plain struct in Go, so unset cannot be told apart); here it is a default.
    setDefault(feats, 'acpi', f.preferredAcpi);
    setDefault(feats, 'apic', f.preferredApic);
    if (f.preferredHyperv) {
      const hv = obj(feats, 'hyperv');
      for (const [k, v] of Object.entries(f.preferredHyperv)) setDefault(hv, k, v);
    }
    setDefault(feats, 'kvm', f.preferredKvm);
    setDefault(feats, 'pvspinlock', f.preferredPvspinlock);
    setDefault(feats, 'smm', f.preferredSmm);
  }

  const fw = pref.firmware;
  if (fw) applyFirmwarePreference(fw, domain);

  if (pref.machine?.preferredMachineType) {
    const machine = obj(domain, 'machine');
    if (!machine.type) machine.type = pref.machine.preferredMachineType;
  }

  if (pref.clock) {
    const clock = obj(domain, 'clock');
    if (pref.clock.preferredClockOffset && clock.utc === undefined && clock.timezone === undefined) {
      Object.assign(clock, structuredClone(pref.clock.preferredClockOffset));
    }
    setDefault(clock, 'timer', pref.clock.preferredTimer);
  }

  if (!spec.subdomain && pref.preferredSubdomain !== undefined) spec.subdomain = pref.preferredSubdomain;
  setDefault(spec, 'terminationGracePeriodSeconds', pref.preferredTerminationGracePeriodSeconds);
  if (!spec.architecture && pref.preferredArchitecture) spec.architecture = pref.preferredArchitecture;
  const annotations = (meta.annotations ??= {});
  for (const [k, v] of Object.entries(pref.annotations ?? {})) if (!(k in annotations)) annotations[k] = v;
  setDefault(domain, 'launchSecurity', pref.preferredLaunchSecurity);
}

function applyFirmwarePreference(fw: NonNullable<VirtualMachinePreferenceSpec['firmware']>, domain: Obj): void {
  const current = isObj(domain.firmware) && isObj(domain.firmware.bootloader) ? domain.firmware.bootloader : {};
  const has = (k: string): boolean => current[k] !== undefined;
  const bootloader = (): Obj => obj(obj(domain, 'firmware'), 'bootloader');
  if (fw.preferredUseBios === true && !has('bios') && !has('efi')) bootloader().bios = {};
  if (fw.preferredUseBiosSerial !== undefined && isObj(bootloader().bios) && (bootloader().bios as Obj).useSerial === undefined) {
    (bootloader().bios as Obj).useSerial = fw.preferredUseBiosSerial;
  }
  const b = isObj(domain.firmware) && isObj(domain.firmware.bootloader) ? domain.firmware.bootloader : {};
  if (b.efi === undefined && b.bios === undefined && fw.preferredEfi !== undefined) {
    bootloader().efi = structuredClone(fw.preferredEfi);
    return;
  }
  if (fw.preferredUseEfi === true && b.efi === undefined && b.bios === undefined) bootloader().efi = {};
  const efi = isObj(domain.firmware) && isObj(domain.firmware.bootloader) ? domain.firmware.bootloader.efi : undefined;
  if (fw.preferredUseSecureBoot !== undefined && isObj(efi) && efi.secureBoot === undefined) efi.secureBoot = fw.preferredUseSecureBoot;
}

// ---- quantities (api/ depends on no other module, so a small parser of its own) ------------

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

function quantityBytes(q: string): number {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  const s = m[2] ?? '';
  if (BINARY[s]) return v * BINARY[s];
  if (/^[eE]/.test(s)) return v * 10 ** Number(s.slice(1));
  return v * DECIMAL[s]!;
}

/** KubeVirt: guest × (1 − percent/100) in float32, truncated, in the guest quantity's format. */
function overcommittedRequest(guest: string, percent: number): string {
  const f = Math.fround;
  const bytes = Math.trunc(f(f(quantityBytes(guest)) * f(1 - f(f(percent) / 100))));
  if (/i$/.test(guest.trim())) {
    for (const [suffix, size] of [['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]] as const) {
      if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
    }
  }
  return String(bytes);
}
