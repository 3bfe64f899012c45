/**
 * Turning an input manifest into the VirtualMachine the importer reproduces, and the
 * normal form used to compare "input" with "what the generated code synthesizes".
 *
 * Two steps, both pure:
 *  1. `prepareVirtualMachine`: drops what a cluster writes (status, uid, resourceVersion,
 *     managedFields, ...): it is not desired state and must not be committed. A
 *     VirtualMachineInstance is wrapped into a VirtualMachine (see `wrapInstance`).
 *     Every dropped field is reported.
 *  2. `normalizeVirtualMachine`: spells out the KubeVirt defaults that the DSL writes
 *     explicitly, so `{}` and `{ enabled: true }` compare equal. The list below is the
 *     complete set of differences the round trip tolerates (besides key order).
 */
import type * as api from '../../api/kubevirt.js';

type Json = unknown;
type JsonObject = Record<string, Json>;

const isObject = (v: Json): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Metadata a cluster sets; never desired state. */
const SERVER_METADATA = [
  'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds',
  'managedFields', 'selfLink',
] as const;
/** Annotations written by tools and controllers, not by people. */
const SERVER_ANNOTATIONS = [
  'kubectl.kubernetes.io/last-applied-configuration',
  'kubevirt.io/latest-observed-api-version',
  'kubevirt.io/storage-observed-api-version',
];

export interface Prepared {
  readonly vm: api.VirtualMachine;
  /** One line per field dropped or decision taken, for stderr. */
  readonly notes: string[];
}

/**
 * A VirtualMachineInstance as the VirtualMachine that runs it.
 *
 * Decision: runStrategy `Once`. A bare VMI is started once and never restarted by KubeVirt:
 * when the guest stops it stays Succeeded/Failed. `Once` is the run strategy with exactly
 * that lifecycle (`Always` would add restarts the VMI never had). The VMI's labels and
 * annotations go to the template, so the VMI the VM creates carries them as before
 * (Services and selectors keep matching); the VM itself gets name and namespace.
 */
export function wrapInstance(vmi: JsonObject): JsonObject {
  const meta = isObject(vmi.metadata) ? vmi.metadata : {};
  const templateMeta: JsonObject = {};
  if (meta.labels !== undefined) templateMeta.labels = meta.labels;
  if (meta.annotations !== undefined) templateMeta.annotations = meta.annotations;
  const vmMeta: JsonObject = { name: meta.name };
  if (meta.namespace !== undefined) vmMeta.namespace = meta.namespace;
  return {
    apiVersion: vmi.apiVersion,
    kind: 'VirtualMachine',
    metadata: vmMeta,
    spec: {
      runStrategy: 'Once',
      template: { ...(Object.keys(templateMeta).length > 0 ? { metadata: templateMeta } : {}), spec: vmi.spec ?? {} },
    },
  };
}

/** Strips cluster-written fields (reported in `notes`) and wraps a VMI. Does not modify `doc`. */
export function prepareVirtualMachine(doc: JsonObject): Prepared {
  const notes: string[] = [];
  let input = structuredClone(doc);
  if (input.kind === 'VirtualMachineInstance') {
    notes.push('kind VirtualMachineInstance: imported as a VirtualMachine with runStrategy Once (a VMI runs once and is never restarted); its labels/annotations moved to spec.template.metadata');
    input = wrapInstance(stripServerFields(input, notes));
  } else {
    input = stripServerFields(input, notes);
  }
  return { vm: input as unknown as api.VirtualMachine, notes };
}

function stripServerFields(doc: JsonObject, notes: string[]): JsonObject {
  if (doc.status !== undefined) {
    delete doc.status;
    notes.push('status: dropped (runtime state reported by the cluster, not desired state)');
  }
  const meta = isObject(doc.metadata) ? doc.metadata : undefined;
  if (!meta) return doc;
  for (const key of SERVER_METADATA) {
    if (meta[key] !== undefined) {
      delete meta[key];
      notes.push(`metadata.${key}: dropped (set by the cluster)`);
    }
  }
  if (isObject(meta.annotations)) {
    for (const key of SERVER_ANNOTATIONS) {
      if (meta.annotations[key] !== undefined) {
        delete meta.annotations[key];
        notes.push(`metadata.annotations["${key}"]: dropped (written by kubectl/KubeVirt)`);
      }
    }
    if (Object.keys(meta.annotations).length === 0) delete meta.annotations;
  }
  if (Array.isArray(meta.finalizers)) {
    const kept = meta.finalizers.filter((f) => !(typeof f === 'string' && f.startsWith('kubevirt.io/')));
    if (kept.length !== meta.finalizers.length) notes.push('metadata.finalizers: KubeVirt\'s own finalizers dropped (the controller adds them)');
    if (kept.length > 0) meta.finalizers = kept;
    else delete meta.finalizers;
  }
  return doc;
}

/**
 * The normal form for comparing two VirtualMachines. Each rule states a KubeVirt default
 * that the DSL writes out explicitly:
 *
 *  N1 `null` values are absent (kubectl dumps `creationTimestamp: null`).
 *  N2 neither `running` nor `runStrategy` means runStrategy `Halted` (KubeVirt's reading);
 *     the DSL would otherwise default to `Always`, so the importer writes `Halted`.
 *  N3 no `metadata.namespace` means `default` (the DSL always writes the namespace).
 *  N4 no (or an empty) `domain.machine.type` means `q35` (the DSL's default, KubeVirt's on x86_64).
 *  N5 a disk with no device type is a `disk`; a `disk` with no bus is `virtio`, a `cdrom`
 *     with no bus is `sata` (KubeVirt's defaults on x86_64, and the DSL's).
 *  N6 a feature state (`features.acpi`, `.apic`, `.smm`, `.pvspinlock`, `.hyperv.*`) with
 *     no `enabled` is enabled (KubeVirt: "defaults to true"); the DSL writes `enabled: true`.
 *  N7 `firmware.bootloader.efi` with no `secureBoot` has Secure Boot on (KubeVirt's default).
 *  N8 empty `labels`/`annotations` and an empty `spec.template.metadata` are absent.
 *  N9 volumes are ordered like their disks, networks like their interfaces: KubeVirt pairs
 *     them by name, their order in the list means nothing.
 */
export function normalizeVirtualMachine(vm: unknown): JsonObject {
  const doc = orderNamedLists(vm);
  const spec = obj(doc, 'spec');
  if (spec.running === undefined && spec.runStrategy === undefined) spec.runStrategy = 'Halted';
  const meta = obj(doc, 'metadata');
  if (meta.namespace === undefined) meta.namespace = 'default';
  dropEmptyMaps(meta);
  const template = obj(spec, 'template');
  if (isObject(template.metadata)) {
    dropEmptyMaps(template.metadata);
    if (Object.keys(template.metadata).length === 0) delete template.metadata;
  }
  const tspec = obj(template, 'spec');
  const domain = obj(tspec, 'domain');
  const machine = obj(domain, 'machine');
  if (machine.type === undefined || machine.type === '') machine.type = 'q35';

  const devices = isObject(domain.devices) ? domain.devices : {};
  const disks = Array.isArray(devices.disks) ? devices.disks : [];
  for (const disk of disks) {
    if (!isObject(disk)) continue;
    if (disk.disk === undefined && disk.cdrom === undefined && disk.lun === undefined) disk.disk = {};
    if (isObject(disk.disk) && disk.disk.bus === undefined) disk.disk.bus = 'virtio';
    if (isObject(disk.cdrom) && disk.cdrom.bus === undefined) disk.cdrom.bus = 'sata';
  }

  if (isObject(domain.features)) {
    for (const key of ['acpi', 'apic', 'smm', 'pvspinlock']) enableByDefault(domain.features[key]);
    if (isObject(domain.features.hyperv)) for (const state of Object.values(domain.features.hyperv)) enableByDefault(state);
  }
  const firmware = isObject(domain.firmware) ? domain.firmware : undefined;
  const bootloader = firmware && isObject(firmware.bootloader) ? firmware.bootloader : undefined;
  if (bootloader && isObject(bootloader.efi) && bootloader.efi.secureBoot === undefined) bootloader.efi.secureBoot = true;

  return doc;
}

/**
 * Only the rules that change no value: N1 (nulls) and N9 (list order). JSON patches take
 * their values from this form, so generated code carries the input as written.
 */
export function orderNamedLists(vm: unknown): JsonObject {
  const doc = dropNulls(structuredClone(vm)) as JsonObject;
  const tspec = asObject(asObject(asObject(doc.spec).template).spec);
  const devices = asObject(asObject(tspec.domain).devices);
  const disks = Array.isArray(devices.disks) ? devices.disks : [];
  if (Array.isArray(tspec.volumes)) tspec.volumes = orderLike(tspec.volumes, disks);
  if (Array.isArray(tspec.networks)) tspec.networks = orderLike(tspec.networks, Array.isArray(devices.interfaces) ? devices.interfaces : []);
  return doc;
}

function asObject(v: Json): JsonObject {
  return isObject(v) ? v : {};
}

/** The child object `key` of `parent`, created when missing (only on the normalized copy). */
function obj(parent: JsonObject, key: string): JsonObject {
  if (!isObject(parent[key])) parent[key] = {};
  return parent[key] as JsonObject;
}

function enableByDefault(state: Json): void {
  if (isObject(state) && state.enabled === undefined) state.enabled = true;
}

function dropEmptyMaps(meta: JsonObject): void {
  for (const key of ['labels', 'annotations']) {
    if (isObject(meta[key]) && Object.keys(meta[key] as JsonObject).length === 0) delete meta[key];
  }
}

function dropNulls(v: Json): Json {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (isObject(v)) {
    for (const [key, value] of Object.entries(v)) {
      if (value === null) delete v[key];
      else v[key] = dropNulls(value);
    }
  }
  return v;
}

/** `items` sorted by the position of the same-named entry in `order`; the rest after, as they were. */
function orderLike(items: Json[], order: Json[]): Json[] {
  const position = new Map<string, number>();
  order.forEach((o, i) => {
    if (isObject(o) && typeof o.name === 'string' && !position.has(o.name)) position.set(o.name, i);
  });
  const rank = (item: Json): number => {
    const name = isObject(item) && typeof item.name === 'string' ? item.name : undefined;
    return name !== undefined && position.has(name) ? position.get(name)! : order.length;
  };
  return items.map((item, i) => ({ item, i })).sort((a, b) => rank(a.item) - rank(b.item) || a.i - b.i).map((x) => x.item);
}
