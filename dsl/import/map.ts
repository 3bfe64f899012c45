/**
 * VirtualMachine manifest → DSL expressions (`VmPlan`). Pure.
 *
 * Each field is mapped only when its value is one the DSL renders back exactly (the right
 * type, a known enum member); anything else is left alone here and reaches the output as
 * a JSON patch (see generate.ts), so the mapper may be partial without losing data.
 */
import type * as api from '../../api/kubevirt.js';
import { findPlaintextSecrets } from '../cloud-init.js';
import { DiskBus, DiskCache, DiskErrorPolicy, DiskIO, DiskType } from '../disk.js';
import { InterfaceBinding, InterfaceModel, Protocol } from '../network.js';
import { Cpu, Size } from '../size.js';
import { EvictionStrategy, InstancetypeKind, PreferenceKind, RunStrategy } from '../virtual-machine.js';
import { HostDiskType, ImagePullPolicy } from '../volume.js';
import { networkDataExpr, userDataExpr } from './cloud-init.js';
import { arr, call, isEmptyObj, json, lit, obj, ref, type Expr, type ObjEntry } from './code.js';

type JsonObject = Record<string, unknown>;

export interface DeviceCall {
  readonly name: string;
  /** The Volume / Network expression. */
  readonly source: Expr;
  /** The options argument; undefined when all options are defaults. */
  readonly options?: Expr;
}

export interface VmPlan {
  /** metadata.name */
  readonly vmName: string;
  /** The chart's namespace; undefined when the input has none (then `default`, N3). */
  readonly namespace?: string;
  readonly props: Expr;
  readonly interfaces: readonly DeviceCall[];
  readonly disks: readonly DeviceCall[];
  /** Human-readable notes about decisions (plaintext passwords kept, ...). */
  readonly notes: readonly string[];
}

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const asObject = (v: unknown): JsonObject => (isObject(v) ? v : {});
const str = (v: unknown): Expr | undefined => (typeof v === 'string' ? lit(v) : undefined);
const num = (v: unknown): Expr | undefined => (typeof v === 'number' && Number.isFinite(v) ? lit(v) : undefined);
const bool = (v: unknown): Expr | undefined => (typeof v === 'boolean' ? lit(v) : undefined);
const stringMap = (v: unknown): Expr | undefined =>
  isObject(v) && Object.keys(v).length > 0 && Object.values(v).every((x) => typeof x === 'string') ? json(v) : undefined;

/** `EnumName.MEMBER` for a value of a string enum, or undefined when `value` is not a member. */
function enumRef(enumObject: Record<string, string>, enumName: string, value: unknown): Expr | undefined {
  const member = Object.entries(enumObject).find(([, v]) => v === value)?.[0];
  return member === undefined ? undefined : ref(enumName, member);
}

/** An object expression, or undefined when it would be empty (all defaults). */
function optionalObj(entries: ReadonlyArray<readonly [string, Expr | undefined] | ObjEntry>): Expr | undefined {
  const e = obj(entries);
  return isEmptyObj(e) ? undefined : e;
}

const SIZE_FACTORIES: ReadonlyArray<readonly [string, string]> = [
  ['Ti', 'tebibytes'], ['Gi', 'gibibytes'], ['Mi', 'mebibytes'], ['Ki', 'kibibytes'],
];

/**
 * `Size.gibibytes(4)` when that renders the quantity as written (`4Gi`), `Size.parse('4G')`
 * for any other whole-byte quantity, undefined for what Size cannot hold.
 */
export function sizeExpr(quantity: unknown): Expr | undefined {
  if (typeof quantity !== 'string') return undefined;
  const m = /^(\d+)(Ti|Gi|Mi|Ki)?$/.exec(quantity);
  if (m) {
    const amount = Number(m[1]);
    const method = m[2] === undefined ? 'bytes' : SIZE_FACTORIES.find(([suffix]) => suffix === m[2])![1];
    const rendered = (Size as unknown as Record<string, (n: number) => Size>)[method]!(amount).toQuantity();
    if (rendered === quantity) return call('Size', method, lit(amount));
  }
  try {
    Size.parse(quantity);
    return call('Size', 'parse', lit(quantity));
  } catch {
    return undefined;
  }
}

/** `Cpu.units(2)`, `Cpu.millis(500)` or `Cpu.parse('1.5')`, each only when it renders `quantity` as written. */
export function cpuExpr(quantity: unknown): Expr | undefined {
  if (typeof quantity !== 'string') return undefined;
  const candidates: Expr[] = [];
  if (/^\d+$/.test(quantity)) candidates.push(call('Cpu', 'units', lit(Number(quantity))));
  const milli = /^(\d+)m$/.exec(quantity);
  if (milli) candidates.push(call('Cpu', 'millis', lit(Number(milli[1]))));
  candidates.push(call('Cpu', 'parse', lit(quantity)));
  return candidates.find((c) => {
    try {
      const cpu = c.k === 'call' ? (Cpu as unknown as Record<string, (x: unknown) => Cpu>)[c.method]!((c.args[0] as { v: unknown }).v) : undefined;
      return cpu?.toQuantity() === quantity;
    } catch {
      return false;
    }
  });
}

/** The plan for one prepared VirtualMachine (see normalize.ts: server fields already gone). */
export function planVirtualMachine(vm: api.VirtualMachine): VmPlan {
  const doc = vm as unknown as JsonObject;
  const meta = asObject(doc.metadata);
  const spec = asObject(doc.spec);
  const template = asObject(spec.template);
  const tmeta = asObject(template.metadata);
  const tspec = asObject(template.spec);
  const domain = asObject(tspec.domain);
  const devices = asObject(domain.devices);
  const notes: string[] = [];

  const interfaceList = Array.isArray(devices.interfaces) ? devices.interfaces : [];
  const networkList = Array.isArray(tspec.networks) ? tspec.networks : [];
  const interfaces = planInterfaces(interfaceList, networkList);
  const disks = planDisks(Array.isArray(devices.disks) ? devices.disks : [], Array.isArray(tspec.volumes) ? tspec.volumes : [], notes);

  const resources = asObject(domain.resources);
  const requests = asObject(resources.requests);
  const limits = asObject(resources.limits);
  const cpu = asObject(domain.cpu);

  const runStrategy = spec.runStrategy === undefined && spec.running === undefined
    ? ref('RunStrategy', 'HALTED') // N2: KubeVirt reads "neither" as Halted; the DSL's default would be Always
    : enumRef(RunStrategy, 'RunStrategy', spec.runStrategy);

  const props = obj([
    ['name', str(meta.name)],
    ['labels', stringMap(meta.labels)],
    ['annotations', stringMap(meta.annotations)],
    ['templateLabels', stringMap(tmeta.labels)],
    ['templateAnnotations', stringMap(tmeta.annotations)],
    ['runStrategy', runStrategy],
    ['running', bool(spec.running)],
    ['instancetype', matcher(spec.instancetype, InstancetypeKind, 'InstancetypeKind')],
    ['preference', matcher(spec.preference, PreferenceKind, 'PreferenceKind')],
    ['architecture', str(tspec.architecture)],
    ['cpu', optionalObj([
      ['cores', num(cpu.cores)],
      ['sockets', num(cpu.sockets)],
      ['threads', num(cpu.threads)],
      ['model', str(cpu.model)],
      ['dedicatedCpuPlacement', bool(cpu.dedicatedCpuPlacement)],
      ['request', cpuExpr(requests.cpu)],
      ['limit', cpuExpr(limits.cpu)],
    ])],
    ['memory', optionalObj([
      ['guest', sizeExpr(asObject(domain.memory).guest)],
      ['request', sizeExpr(requests.memory)],
      ['limit', sizeExpr(limits.memory)],
    ])],
    ['machineType', asObject(domain.machine).type === '' ? undefined : str(asObject(domain.machine).type)],
    ['firmware', firmware(domain.firmware)],
    ['clock', clock(domain.clock)],
    ['features', features(domain.features)],
    ['rng', isObject(devices.rng) && Object.keys(devices.rng).length === 0 ? lit(true) : undefined],
    ['autoattachSerialConsole', bool(devices.autoattachSerialConsole)],
    ['autoattachGraphicsDevice', bool(devices.autoattachGraphicsDevice)],
    ['autoattachMemBalloon', bool(devices.autoattachMemBalloon)],
    ['logSerialConsole', bool(devices.logSerialConsole)],
    // No NICs in the input: don't let the DSL add its masquerade default. An absent
    // `autoattachPodInterface` (KubeVirt then attaches one with the cluster's binding) is
    // restored by a JSON patch.
    ['defaultPodNetwork', interfaceList.length === 0 && networkList.length === 0 ? lit(false) : undefined],
    ['nodeSelector', stringMap(tspec.nodeSelector)],
    ['tolerations', tolerations(tspec.tolerations)],
    ['affinity', isObject(tspec.affinity) ? json(tspec.affinity) : undefined],
    ['evictionStrategy', enumRef(EvictionStrategy, 'EvictionStrategy', tspec.evictionStrategy)],
    ['terminationGracePeriodSeconds', num(tspec.terminationGracePeriodSeconds)],
    ['hostname', str(tspec.hostname)],
    ['subdomain', str(tspec.subdomain)],
    ['dataVolumeTemplates', Array.isArray(spec.dataVolumeTemplates) && spec.dataVolumeTemplates.every(isObject) && spec.dataVolumeTemplates.length > 0
      ? json(spec.dataVolumeTemplates) : undefined],
  ]);

  return {
    vmName: typeof meta.name === 'string' ? meta.name : 'vm',
    namespace: typeof meta.namespace === 'string' ? meta.namespace : undefined,
    props,
    interfaces,
    disks,
    notes,
  };
}

function matcher(v: unknown, kinds: Record<string, string>, enumName: string): Expr | undefined {
  if (!isObject(v) || typeof v.name !== 'string') return undefined;
  return obj([['name', lit(v.name)], ['kind', v.kind === undefined ? undefined : enumRef(kinds, enumName, v.kind)]]);
}

const TOLERATION_KEYS: Record<string, (v: unknown) => boolean> = {
  key: (v) => typeof v === 'string',
  operator: (v) => v === 'Exists' || v === 'Equal',
  value: (v) => typeof v === 'string',
  effect: (v) => v === 'NoSchedule' || v === 'PreferNoSchedule' || v === 'NoExecute',
  tolerationSeconds: (v) => typeof v === 'number',
};

function tolerations(v: unknown): Expr | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const ok = v.every((t) => isObject(t) && Object.entries(t).every(([k, x]) => TOLERATION_KEYS[k]?.(x) === true));
  return ok ? json(v) : undefined;
}

function firmware(v: unknown): Expr | undefined {
  if (!isObject(v)) return undefined;
  const bl = asObject(v.bootloader);
  let bootloader: Expr | undefined;
  if (isObject(bl.bios) && bl.efi === undefined) {
    bootloader = call('Bootloader', 'bios', ...optionalArg([['useSerial', bool(bl.bios.useSerial)]]));
  } else if (isObject(bl.efi) && bl.bios === undefined) {
    bootloader = call('Bootloader', 'efi', ...optionalArg([['secureBoot', bool(bl.efi.secureBoot)], ['persistent', bool(bl.efi.persistent)]]));
  }
  const kb = asObject(v.kernelBoot);
  const container = asObject(kb.container);
  const kernelBoot = typeof container.image === 'string'
    ? obj([
      ['container', obj([
        ['image', lit(container.image)],
        ['kernelPath', str(container.kernelPath)],
        ['initrdPath', str(container.initrdPath)],
        ['imagePullPolicy', enumRef(ImagePullPolicy, 'ImagePullPolicy', container.imagePullPolicy)],
        ['imagePullSecret', str(container.imagePullSecret)],
      ])],
      ['kernelArgs', str(kb.kernelArgs)],
    ])
    : undefined;
  return obj([['bootloader', bootloader], ['uuid', str(v.uuid)], ['serial', str(v.serial)], ['kernelBoot', kernelBoot]]);
}

/** `[{...}]` when the options object has entries, `[]` otherwise (so `f()` stays `f()`). */
function optionalArg(entries: ReadonlyArray<readonly [string, Expr | undefined]>): Expr[] {
  const e = optionalObj(entries);
  return e ? [e] : [];
}

const TIMER_FIELDS: Record<string, Record<string, (v: unknown) => boolean>> = {
  hpet: { tickPolicy: (v) => ['delay', 'catchup', 'merge', 'discard'].includes(v as string) },
  pit: { tickPolicy: (v) => ['delay', 'catchup', 'discard'].includes(v as string) },
  rtc: { tickPolicy: (v) => ['delay', 'catchup'].includes(v as string), track: (v) => v === 'guest' || v === 'wall' },
  kvm: {},
  hyperv: {},
};

function clock(v: unknown): Expr | undefined {
  if (!isObject(v)) return undefined;
  let offset: Expr | undefined;
  if (isObject(v.utc) && v.timezone === undefined) {
    const seconds = v.utc.offsetSeconds;
    offset = call('ClockOffset', 'utc', ...(typeof seconds === 'number' ? [lit(seconds)] : []));
  } else if (typeof v.timezone === 'string' && v.utc === undefined) {
    offset = call('ClockOffset', 'timezone', lit(v.timezone));
  }
  const timerOk = isObject(v.timer) && Object.entries(v.timer).every(([name, state]) => {
    const fields = TIMER_FIELDS[name];
    return fields !== undefined && isObject(state)
      && Object.entries(state).every(([k, x]) => (k === 'present' ? typeof x === 'boolean' : fields[k]?.(x) === true));
  });
  return obj([['offset', offset], ['timers', timerOk ? json(v.timer) : undefined]]);
}

/** A FeatureState as a boolean: `{}` and `{ enabled: true }` are true (N6). */
function featureFlag(v: unknown): Expr | undefined {
  if (!isObject(v)) return undefined;
  if (v.enabled === undefined) return lit(true);
  return bool(v.enabled);
}

const HYPERV_FLAGS = ['relaxed', 'vapic', 'vpindex', 'runtime', 'synic', 'reset', 'frequencies', 'reenlightenment', 'tlbflush', 'ipi'];

function features(v: unknown): Expr | undefined {
  if (!isObject(v)) return undefined;
  let hyperv: Expr | undefined;
  if (isObject(v.hyperv)) {
    const h = v.hyperv;
    const spin = asObject(h.spinlocks);
    hyperv = obj([
      ...HYPERV_FLAGS.map((key) => [key, featureFlag(h[key])] as const),
      ['spinlocks', spin.enabled !== false && typeof spin.spinlocks === 'number' ? lit(spin.spinlocks) : undefined],
    ]);
  }
  const kvm = asObject(v.kvm);
  return obj([
    ['acpi', featureFlag(v.acpi)],
    ['apic', featureFlag(v.apic)],
    ['smm', featureFlag(v.smm)],
    ['pvspinlock', featureFlag(v.pvspinlock)],
    ['kvmHidden', bool(kvm.hidden)],
    ['hyperv', hyperv],
  ]);
}

// ---- networks --------------------------------------------------------------------------

function planInterfaces(ifaces: unknown[], networks: unknown[]): DeviceCall[] {
  const calls: DeviceCall[] = [];
  for (const iface of ifaces) {
    if (!isObject(iface) || typeof iface.name !== 'string') continue;
    const network = networks.find((n) => isObject(n) && n.name === iface.name);
    const source = networkExpr(network);
    if (!source) continue; // left to the JSON patch
    const isPod = isObject(asObject(network).pod);
    const bindings = ['bridge', 'masquerade'].filter((b) => iface[b] !== undefined);
    const bindingValue = bindings.length === 1 ? iface[bindings[0]!] : undefined;
    const binding = isObject(bindingValue) && Object.keys(bindingValue).length === 0
      ? enumRef(InterfaceBinding, 'InterfaceBinding', bindings[0])
      : undefined;
    const defaultBinding = isPod ? 'masquerade' : 'bridge';
    const ports = Array.isArray(iface.ports) && iface.ports.every((p) => isObject(p) && typeof p.port === 'number')
      ? arr((iface.ports as JsonObject[]).map((p) => obj([
        ['port', lit(p.port as number)],
        ['name', str(p.name)],
        ['protocol', enumRef(Protocol, 'Protocol', p.protocol)],
      ])))
      : undefined;
    calls.push({
      name: iface.name,
      source,
      options: optionalObj([
        ['binding', bindings[0] === defaultBinding ? undefined : binding],
        ['model', enumRef(InterfaceModel, 'InterfaceModel', iface.model)],
        ['macAddress', str(iface.macAddress)],
        ['ports', ports],
        ['bootOrder', num(iface.bootOrder)],
        ['pciAddress', str(iface.pciAddress)],
      ]),
    });
  }
  return calls;
}

function networkExpr(network: unknown): Expr | undefined {
  if (!isObject(network)) return undefined;
  if (isObject(network.pod) && network.multus === undefined) {
    return call('Network', 'pod', ...optionalArg([
      ['vmNetworkCIDR', str(network.pod.vmNetworkCIDR)],
      ['vmIPv6NetworkCIDR', str(network.pod.vmIPv6NetworkCIDR)],
    ]));
  }
  if (isObject(network.multus) && typeof network.multus.networkName === 'string' && network.pod === undefined) {
    return call('Network', 'multus', lit(network.multus.networkName), ...optionalArg([['default', bool(network.multus.default)]]));
  }
  return undefined;
}

// ---- disks and volumes -----------------------------------------------------------------

function planDisks(disks: unknown[], volumes: unknown[], notes: string[]): DeviceCall[] {
  const calls: DeviceCall[] = [];
  for (const disk of disks) {
    if (!isObject(disk) || typeof disk.name !== 'string') continue;
    const volume = volumes.find((v) => isObject(v) && v.name === disk.name);
    const source = volumeExpr(volume, disk.name, notes);
    if (!source) continue; // left to the JSON patch
    const types = ['disk', 'cdrom', 'lun'].filter((t) => disk[t] !== undefined);
    const type = types.length === 1 ? types[0]! : 'disk';
    const target = asObject(disk[type]);
    const defaultBus = type === 'cdrom' ? 'sata' : 'virtio';
    calls.push({
      name: disk.name,
      source,
      options: optionalObj([
        ['type', type === 'disk' ? undefined : enumRef(DiskType, 'DiskType', type)],
        ['bus', target.bus === undefined || target.bus === defaultBus ? undefined : enumRef(DiskBus, 'DiskBus', target.bus)],
        ['readOnly', bool(target.readonly)],
        ['bootOrder', num(disk.bootOrder)],
        ['serial', str(disk.serial)],
        ['cache', enumRef(DiskCache, 'DiskCache', disk.cache)],
        ['io', enumRef(DiskIO, 'DiskIO', disk.io)],
        ['dedicatedIOThread', bool(disk.dedicatedIOThread)],
        ['shareable', bool(disk.shareable)],
        ['errorPolicy', enumRef(DiskErrorPolicy, 'DiskErrorPolicy', disk.errorPolicy)],
      ]),
    });
  }
  return calls;
}

const VOLUME_SOURCES = [
  'containerDisk', 'emptyDisk', 'ephemeral', 'cloudInitNoCloud', 'cloudInitConfigDrive', 'persistentVolumeClaim',
  'dataVolume', 'hostDisk', 'secret', 'configMap', 'serviceAccount',
];

function volumeExpr(volume: unknown, name: string, notes: string[]): Expr | undefined {
  if (!isObject(volume)) return undefined;
  const sources = Object.keys(volume).filter((k) => k !== 'name');
  if (sources.length !== 1 || !VOLUME_SOURCES.includes(sources[0]!)) return undefined;
  const kind = sources[0]!;
  const s = asObject(volume[kind]);
  switch (kind) {
    case 'containerDisk':
      if (typeof s.image !== 'string') return undefined;
      return call('Volume', 'fromContainerDisk', lit(s.image), ...optionalArg([
        ['path', str(s.path)],
        ['imagePullPolicy', enumRef(ImagePullPolicy, 'ImagePullPolicy', s.imagePullPolicy)],
        ['imagePullSecret', str(s.imagePullSecret)],
      ]));
    case 'emptyDisk': {
      const capacity = sizeExpr(s.capacity);
      return capacity && call('Volume', 'fromEmptyDisk', capacity);
    }
    case 'ephemeral': {
      const pvc = asObject(s.persistentVolumeClaim);
      if (typeof pvc.claimName !== 'string') return undefined;
      return call('Volume', 'fromEphemeral', lit(pvc.claimName), ...optionalArg([['readOnly', bool(pvc.readOnly)]]));
    }
    case 'persistentVolumeClaim':
      if (typeof s.claimName !== 'string') return undefined;
      return call('Volume', 'fromPersistentVolumeClaim', lit(s.claimName), ...optionalArg([
        ['readOnly', bool(s.readOnly)],
        ['hotpluggable', bool(s.hotpluggable)],
      ]));
    case 'dataVolume':
      if (typeof s.name !== 'string') return undefined;
      return call('Volume', 'fromDataVolume', lit(s.name), ...optionalArg([['hotpluggable', bool(s.hotpluggable)]]));
    case 'hostDisk':
      if (typeof s.path !== 'string') return undefined;
      return call('Volume', 'fromHostDisk', lit(s.path), ...optionalArg([
        ['type', s.type === 'Disk' ? undefined : enumRef(HostDiskType, 'HostDiskType', s.type)],
        ['capacity', sizeExpr(s.capacity)],
        ['shared', bool(s.shared)],
      ]));
    case 'secret':
      if (typeof s.secretName !== 'string') return undefined;
      return call('Volume', 'fromSecret', lit(s.secretName), ...configSourceOptions(s));
    case 'configMap':
      if (typeof s.name !== 'string') return undefined;
      return call('Volume', 'fromConfigMap', lit(s.name), ...configSourceOptions(s));
    case 'serviceAccount':
      if (typeof s.serviceAccountName !== 'string') return undefined;
      return call('Volume', 'fromServiceAccount', lit(s.serviceAccountName));
    default:
      return cloudInitExpr(kind, s, name, notes);
  }
}

function configSourceOptions(s: JsonObject): Expr[] {
  return optionalArg([['optional', bool(s.optional)], ['volumeLabel', str(s.volumeLabel)]]);
}

function cloudInitExpr(kind: string, s: JsonObject, name: string, notes: string[]): Expr | undefined {
  let userData: Expr | undefined;
  let secrets: string[] = [];
  if (typeof s.userData === 'string') {
    userData = userDataExpr(s.userData);
    secrets = findPlaintextSecrets(s.userData);
  } else if (typeof s.userDataBase64 === 'string') {
    userData = call('UserData', 'fromBase64', lit(s.userDataBase64));
    secrets = findPlaintextSecrets(Buffer.from(s.userDataBase64, 'base64').toString('utf8'));
  } else if (isObject(s.secretRef) && typeof s.secretRef.name === 'string') {
    userData = call('UserData', 'fromSecret', obj([['name', lit(s.secretRef.name)]]));
  }
  let networkData: Expr | undefined;
  if (typeof s.networkData === 'string') networkData = networkDataExpr(s.networkData);
  else if (typeof s.networkDataBase64 === 'string') networkData = call('NetworkData', 'fromBase64', lit(s.networkDataBase64));
  else if (isObject(s.networkDataSecretRef) && typeof s.networkDataSecretRef.name === 'string') {
    networkData = call('NetworkData', 'fromSecret', obj([['name', lit(s.networkDataSecretRef.name)]]));
  }
  if (!userData && !networkData) return undefined;
  const entries: Array<readonly [string, Expr | undefined] | ObjEntry> = [['userData', userData], ['networkData', networkData]];
  if (secrets.length > 0) {
    entries.push({ key: 'allowPlaintextSecrets', value: lit(true), trailingComment: 'TODO move to a Secret (secretRef)' });
    notes.push(`volume "${name}": user-data holds a plain-text password (${secrets.join(', ')}); kept with allowPlaintextSecrets: true and a TODO. Move it to a Secret and use UserData.fromSecret({ name }) (secretRef)`);
  }
  const factory = kind === 'cloudInitNoCloud' ? 'fromCloudInitNoCloud' : 'fromCloudInitConfigDrive';
  return call('Volume', factory, obj(entries));
}
