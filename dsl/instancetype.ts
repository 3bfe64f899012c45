/**
 * Instancetypes and preferences (`instancetype.kubevirt.io/v1beta1`) as constructs, each
 * usable as a VM's `instancetype` / `preference` prop:
 *
 *   const big = new VirtualMachineInstancetype(chart, 'big', { cpu: { guest: 4 }, memory: { guest: Size.gibibytes(8) } });
 *   new VirtualMachine(chart, 'db', { instancetype: big, preference: commonPreferences.fedora });
 *   new VirtualMachine(chart, 'web', { instancetype: VirtualMachineClusterInstancetype.ref('u1.medium') });
 *   new CommonInstancetypes(app, 'common-instancetypes');   // last: writes the catalogue entries VMs use
 *
 * Validation (at synth, like VirtualMachine's) runs the shared manifest validator: KubeVirt's
 * OpenAPI for these kinds plus the webhook's rules.
 */
import { ApiObject, Chart, Lazy, type ChartProps } from 'cdk8s';
import { Construct, type IConstruct } from 'constructs';
import {
  CLUSTER_INSTANCETYPE_KIND, CLUSTER_PREFERENCE_KIND, INSTANCETYPE_API_VERSION, INSTANCETYPE_KIND, PREFERENCE_KIND,
  type InstancetypeObject, type VirtualMachineInstancetypeSpec, type VirtualMachinePreferenceSpec,
} from '../api/instancetype.js';
import { expandVm, resolverFor } from '../api/expand.js';
import { validateManifest } from '../api/validate.js';
import {
  allCommonInstancetypes, commonPreferences, findCommonInstancetype, findCommonPreference,
  type CatalogueInstancetype, type CataloguePreference,
} from './common-instancetypes.js';
import type { Size } from './size.js';
import { formatIssue, schemaIssues } from './validate.js';
import { InstancetypeKind, PreferenceKind, VirtualMachine } from './virtual-machine.js';

export interface InstancetypeCpuProps {
  /** vCPUs the guest sees; laid out as sockets unless the VM's preference prefers otherwise. */
  readonly guest: number;
  /** @default - not set (the cluster's default CPU model) */
  readonly model?: string;
  /** @default - not set */
  readonly dedicatedCpuPlacement?: boolean;
  /** @default - not set */
  readonly isolateEmulatorThread?: boolean;
  /** @default - not set */
  readonly maxSockets?: number;
  /** Pass the host NUMA topology of the dedicated CPUs through to the guest. @default false */
  readonly numaGuestMappingPassthrough?: boolean;
  /** @default - not set */
  readonly realtime?: { readonly mask?: string };
}

export interface InstancetypeMemoryProps {
  readonly guest: Size;
  /** @default - not set */
  readonly maxGuest?: Size;
  /** Back guest memory with hugepages of this size, e.g. '2Mi' or '1Gi'. @default - not set */
  readonly hugepagesPageSize?: string;
  /** Request this percent less memory from the node than the guest sees (0-100). @default - not set */
  readonly overcommitPercent?: number;
}

export interface InstancetypeProps {
  /** `metadata.name`. @default - the construct id */
  readonly name?: string;
  /** @default - none */
  readonly labels?: Readonly<Record<string, string>>;
  /** Annotations of the instancetype object itself. @default - none */
  readonly annotations?: Readonly<Record<string, string>>;
  readonly cpu: InstancetypeCpuProps;
  readonly memory: InstancetypeMemoryProps;
  /** @default - not set */
  readonly ioThreadsPolicy?: 'shared' | 'auto' | 'supplementalPool';
  /** @default - not set */
  readonly supplementalPoolThreadCount?: number;
  /** @default - none */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** @default - not set */
  readonly schedulerName?: string;
  /** Annotations every VM of this instancetype gets on its VMI (`spec.annotations`). @default - none */
  readonly vmAnnotations?: Readonly<Record<string, string>>;
  /** GPUs, written as given (KubeVirt's v1.GPU). @default - none */
  readonly gpus?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** Host devices, written as given (KubeVirt's v1.HostDevice). @default - none */
  readonly hostDevices?: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

export interface NamespacedInstancetypeProps extends InstancetypeProps {
  /** @default - the chart's namespace, else 'default' */
  readonly namespace?: string;
}

export interface PreferenceProps {
  /** `metadata.name`. @default - the construct id */
  readonly name?: string;
  /** @default - none */
  readonly labels?: Readonly<Record<string, string>>;
  /** @default - none */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The preferences (KubeVirt's VirtualMachinePreferenceSpec: preferredDiskBus, preferredEfi, ...). */
  readonly spec: VirtualMachinePreferenceSpec;
}

export interface NamespacedPreferenceProps extends PreferenceProps {
  /** @default - the chart's namespace, else 'default' */
  readonly namespace?: string;
}

/** Drops metadata.namespace for cluster-scoped kinds (cdk8s adds the chart's). */
class InstancetypeApiObject extends ApiObject {
  public clusterScoped = false;
  public override toJson(): any {
    const json = super.toJson();
    if (this.clusterScoped && json.metadata) delete json.metadata.namespace;
    return json;
  }
}

const INSTANCETYPE_OBJECT_SYMBOL = Symbol.for('virtops.dsl.InstancetypeObject');

abstract class InstancetypeObjectConstruct extends Construct {
  /** True for the four constructs of this module (works across copies of the module). */
  public static isInstancetypeObject(x: unknown): x is InstancetypeObjectConstruct {
    return x !== null && typeof x === 'object' && INSTANCETYPE_OBJECT_SYMBOL in x;
  }

  public readonly name: string;
  public abstract readonly kind: string;
  /** The low-level object: escape hatch for JSON patches. */
  public readonly apiObject: ApiObject;

  protected constructor(scope: Construct, id: string, kind: string, props: { name?: string; labels?: Readonly<Record<string, string>>; annotations?: Readonly<Record<string, string>> }, namespace: string | undefined, spec: () => unknown) {
    super(scope, id);
    Object.defineProperty(this, INSTANCETYPE_OBJECT_SYMBOL, { value: true });
    this.name = props.name ?? id;
    const obj = new InstancetypeApiObject(this, 'Resource', {
      apiVersion: INSTANCETYPE_API_VERSION,
      kind,
      metadata: {
        name: this.name,
        ...(namespace ? { namespace } : {}),
        ...(props.labels ? { labels: { ...props.labels } } : {}),
        ...(props.annotations ? { annotations: { ...props.annotations } } : {}),
      },
      spec: Lazy.any({ produce: spec }),
    });
    obj.clusterScoped = namespace === undefined;
    this.apiObject = obj;
    this.node.addValidation({
      validate: () => schemaIssues(validateManifest(this.toManifest()), []).map((issue) => formatIssue(this.node.path, issue)),
    });
  }

  /** The object exactly as synthesized (JSON patches applied). */
  public toManifest(): InstancetypeObject {
    return this.apiObject.toJson() as InstancetypeObject;
  }
}

function instancetypeSpec(p: InstancetypeProps): VirtualMachineInstancetypeSpec {
  const spec: VirtualMachineInstancetypeSpec = {
    cpu: {
      guest: p.cpu.guest,
      ...(p.cpu.model !== undefined ? { model: p.cpu.model } : {}),
      ...(p.cpu.dedicatedCpuPlacement !== undefined ? { dedicatedCPUPlacement: p.cpu.dedicatedCpuPlacement } : {}),
      ...(p.cpu.isolateEmulatorThread !== undefined ? { isolateEmulatorThread: p.cpu.isolateEmulatorThread } : {}),
      ...(p.cpu.maxSockets !== undefined ? { maxSockets: p.cpu.maxSockets } : {}),
      ...(p.cpu.numaGuestMappingPassthrough ? { numa: { guestMappingPassthrough: {} } } : {}),
      ...(p.cpu.realtime ? { realtime: { ...p.cpu.realtime } } : {}),
    },
    memory: {
      guest: p.memory.guest.toQuantity(),
      ...(p.memory.maxGuest ? { maxGuest: p.memory.maxGuest.toQuantity() } : {}),
      ...(p.memory.hugepagesPageSize ? { hugepages: { pageSize: p.memory.hugepagesPageSize } } : {}),
      ...(p.memory.overcommitPercent !== undefined ? { overcommitPercent: p.memory.overcommitPercent } : {}),
    },
  };
  if (p.ioThreadsPolicy) spec.ioThreadsPolicy = p.ioThreadsPolicy;
  if (p.supplementalPoolThreadCount !== undefined) spec.ioThreads = { supplementalPoolThreadCount: p.supplementalPoolThreadCount };
  if (p.nodeSelector) spec.nodeSelector = { ...p.nodeSelector };
  if (p.schedulerName) spec.schedulerName = p.schedulerName;
  if (p.vmAnnotations) spec.annotations = { ...p.vmAnnotations };
  if (p.gpus) spec.gpus = p.gpus.map((g) => structuredClone(g) as Record<string, unknown>);
  if (p.hostDevices) spec.hostDevices = p.hostDevices.map((h) => structuredClone(h) as Record<string, unknown>);
  return spec;
}

/** A namespaced instancetype; VMs in its namespace refer to it with `instancetype: it`. */
export class VirtualMachineInstancetype extends InstancetypeObjectConstruct {
  public readonly kind = InstancetypeKind.NAMESPACED as const;
  public readonly namespace: string;
  public constructor(scope: Construct, id: string, props: NamespacedInstancetypeProps) {
    const namespace = props.namespace ?? Chart.of(scope).namespace ?? 'default';
    super(scope, id, INSTANCETYPE_KIND, props, namespace, () => instancetypeSpec(props));
    this.namespace = namespace;
  }
}

/** A cluster-scoped instancetype. */
export class VirtualMachineClusterInstancetype extends InstancetypeObjectConstruct {
  /** A reference by name to a cluster instancetype defined elsewhere (another repo, the cluster). */
  public static ref(name: string): { readonly name: string; readonly kind: InstancetypeKind.CLUSTER } {
    return { name, kind: InstancetypeKind.CLUSTER };
  }

  public readonly kind = InstancetypeKind.CLUSTER as const;
  public constructor(scope: Construct, id: string, props: InstancetypeProps) {
    super(scope, id, CLUSTER_INSTANCETYPE_KIND, props, undefined, () => instancetypeSpec(props));
  }
}

/** A namespaced preference; VMs in its namespace refer to it with `preference: pref`. */
export class VirtualMachinePreference extends InstancetypeObjectConstruct {
  public readonly kind = PreferenceKind.NAMESPACED as const;
  public readonly namespace: string;
  public constructor(scope: Construct, id: string, props: NamespacedPreferenceProps) {
    const namespace = props.namespace ?? Chart.of(scope).namespace ?? 'default';
    super(scope, id, PREFERENCE_KIND, props, namespace, () => structuredClone(props.spec));
    this.namespace = namespace;
  }
}

/** A cluster-scoped preference. */
export class VirtualMachineClusterPreference extends InstancetypeObjectConstruct {
  /** A reference by name to a cluster preference defined elsewhere. */
  public static ref(name: string): { readonly name: string; readonly kind: PreferenceKind.CLUSTER } {
    return { name, kind: PreferenceKind.CLUSTER };
  }

  public readonly kind = PreferenceKind.CLUSTER as const;
  public constructor(scope: Construct, id: string, props: PreferenceProps) {
    super(scope, id, CLUSTER_PREFERENCE_KIND, props, undefined, () => structuredClone(props.spec));
  }
}

export interface CommonInstancetypesProps extends Omit<ChartProps, 'namespace'> {
  /** Also write these catalogue entries, referenced or not. @default - none */
  readonly include?: ReadonlyArray<CatalogueInstancetype | CataloguePreference>;
  /** Write the whole catalogue. @default false (only what VMs refer to, plus `include`) */
  readonly all?: boolean;
}

/**
 * A chart (`dist/<id>.k8s.yaml`) holding the catalogue's cluster instancetypes and
 * preferences that the app's VMs refer to (by a catalogue entry or by a cluster kind and a
 * catalogue name), so git holds what each VM expands against. Create it after the charts of
 * those VMs. A name some construct of the app already defines is left to that construct.
 *
 * At synth it also expands every VM of the app against the app's instancetypes and
 * preferences and the catalogue, so a VM field that conflicts with its instancetype (or a
 * preference requirement the instancetype misses) fails synth, naming both fields. A
 * reference to a name neither defines is left alone: it may exist on the cluster.
 */
export class CommonInstancetypes extends Chart {
  /** The catalogue entries written, instancetypes first, by name. */
  public readonly entries: ReadonlyArray<CatalogueInstancetype | CataloguePreference>;

  public constructor(scope: Construct, id: string, props: CommonInstancetypesProps = {}) {
    super(scope, id, { ...props, namespace: undefined });
    const all = props.all ? [...allCommonInstancetypes(), ...Object.values(commonPreferences)] : [];
    const wanted = new Map<string, CatalogueInstancetype | CataloguePreference>();
    const add = (e: CatalogueInstancetype | CataloguePreference | undefined): void => {
      if (e) wanted.set(`${e.manifest.kind}/${e.name}`, e);
    };
    [...all, ...(props.include ?? [])].forEach(add);
    const defined = new Set<string>();
    for (const c of this.node.root.node.findAll()) {
      if (InstancetypeObjectConstruct.isInstancetypeObject(c) && !this.node.findAll().includes(c as IConstruct)) defined.add(`${c.kind}/${c.name}`);
      if (!VirtualMachine.isVirtualMachine(c)) continue;
      const spec = c.toManifest().spec;
      if (spec.instancetype?.name && (spec.instancetype.kind ?? CLUSTER_INSTANCETYPE_KIND) === CLUSTER_INSTANCETYPE_KIND) add(findCommonInstancetype(spec.instancetype.name));
      if (spec.preference?.name && (spec.preference.kind ?? CLUSTER_PREFERENCE_KIND) === CLUSTER_PREFERENCE_KIND) add(findCommonPreference(spec.preference.name));
    }
    const entries = [...wanted.entries()]
      .filter(([key]) => !defined.has(key))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, e]) => e);
    for (const e of entries) new ApiObject(this, `${e.manifest.kind}-${e.name}`, structuredClone(e.manifest) as never);
    this.entries = entries;
    this.node.addValidation({ validate: () => this.expansionProblems() });
  }

  private expansionProblems(): string[] {
    const all = this.node.root.node.findAll();
    const objects: unknown[] = [...allCommonInstancetypes(), ...Object.values(commonPreferences)].map((e) => e.manifest);
    for (const c of all) if (InstancetypeObjectConstruct.isInstancetypeObject(c)) objects.push(c.toManifest());
    const resolve = resolverFor(objects);
    const problems: string[] = [];
    for (const c of all) {
      if (!VirtualMachine.isVirtualMachine(c)) continue;
      const r = expandVm(c.toManifest(), resolve);
      if (!('errors' in r)) continue;
      for (const e of r.errors) {
        if (e.message.endsWith('not found')) continue; // may be on the cluster
        problems.push(formatIssue(c.node.path, { field: e.field, problem: e.message, fix: e.fix }));
      }
    }
    return problems;
  }
}
