/**
 * `VirtualMachine`: the high-level construct for a `kubevirt.io/v1` VirtualMachine.
 *
 * It wraps a low-level cdk8s `ApiObject` whose spec is produced lazily, so disks and
 * interfaces added after construction are part of the output. Validation runs at synth
 * time over the emitted manifest (see validate.ts).
 *
 * cdk8s renders an object many times per synth: `App.synth()` validates the whole app, and
 * so does each `Chart.toJson()`, so with N charts every VM is validated N+1 times and
 * rendered once more per validation. While `VirtopsApp` synthesizes, it seals each VM
 * (`beginSynthesis`/`endSynthesis`): the manifest is rendered once and validated once.
 * Every mutator drops the memo, so a change made during synthesis (e.g. from another
 * construct's validation) is still picked up.
 */
import { ApiObject, Chart, type JsonPatch, Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import * as api from '../api/kubevirt.js';
import { validateManifest } from '../api/validate.js';
import { type ClockProps, renderClock } from './clock.js';
import { type DiskOptions, renderDisk } from './disk.js';
import { type FeaturesProps, renderFeatures } from './features.js';
import { type FirmwareProps, renderFirmware } from './firmware.js';
import { type InterfaceOptions, Network, renderInterface } from './network.js';
import type { Cpu, Size } from './size.js';
import { formatIssue, schemaIssues, validateVirtualMachineManifest } from './validate.js';
import { PlainApiObject } from './plain-api-object.js';
import type { Volume } from './volume.js';
import type { AccessCredential } from './access-credentials.js';

const VIRTUAL_MACHINE_SYMBOL = Symbol.for('virtops.dsl.VirtualMachine');

/**
 * The VM's ApiObject: renders once while sealed. JSON patches are applied in toJson, so
 * adding one drops the memo. Callers share the memoised object and must not mutate it
 * (cdk8s' YAML writer, the DSL's validation and launcher Pod rendering only read it).
 */
class VirtualMachineApiObject extends PlainApiObject {
  private sealed = false;
  private memo: api.VirtualMachine | undefined;

  public seal(sealed: boolean): void {
    this.sealed = sealed;
    this.memo = undefined;
  }

  public invalidate(): void {
    this.memo = undefined;
  }

  public override addJsonPatch(...ops: JsonPatch[]): void {
    this.memo = undefined;
    super.addJsonPatch(...ops);
  }

  public override toJson(): api.VirtualMachine {
    if (!this.sealed) return super.toJson() as api.VirtualMachine;
    return this.memo ??= super.toJson() as api.VirtualMachine;
  }
}

/** KubeVirt's run strategies; `running: true|false` is the legacy form of Always/Halted. */
export enum RunStrategy {
  ALWAYS = 'Always',
  RERUN_ON_FAILURE = 'RerunOnFailure',
  MANUAL = 'Manual',
  HALTED = 'Halted',
  ONCE = 'Once',
}

export enum EvictionStrategy {
  NONE = 'None',
  LIVE_MIGRATE = 'LiveMigrate',
  LIVE_MIGRATE_IF_POSSIBLE = 'LiveMigrateIfPossible',
  EXTERNAL = 'External',
}

export interface CpuProps {
  /** @default - not set (KubeVirt: 1) */
  readonly cores?: number;
  /** @default - not set (KubeVirt: 1) */
  readonly sockets?: number;
  /** @default - not set (KubeVirt: 1) */
  readonly threads?: number;
  /** CPU model, e.g. `host-model`, `host-passthrough` or a named model. @default - KubeVirt's default */
  readonly model?: string;
  /** Pin vCPUs to dedicated host CPUs. @default false */
  readonly dedicatedCpuPlacement?: boolean;
  /** `resources.requests.cpu`. @default - not set */
  readonly request?: Cpu;
  /** `resources.limits.cpu`. @default - not set */
  readonly limit?: Cpu;
}

export interface MemoryProps {
  /** Memory the guest sees (`domain.memory.guest`). @default - the request */
  readonly guest?: Size;
  /** `resources.requests.memory`: what is scheduled. @default - not set (guest size + overhead) */
  readonly request?: Size;
  /** `resources.limits.memory`. @default - not set */
  readonly limit?: Size;
}

export interface Toleration {
  /** @default - matches all keys (with operator Exists) */
  readonly key?: string;
  /** @default 'Equal' */
  readonly operator?: 'Exists' | 'Equal';
  /** @default - none */
  readonly value?: string;
  /** @default - all effects */
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  /** @default - forever */
  readonly tolerationSeconds?: number;
}

export enum InstancetypeKind {
  CLUSTER = 'VirtualMachineClusterInstancetype',
  NAMESPACED = 'VirtualMachineInstancetype',
}

export enum PreferenceKind {
  CLUSTER = 'VirtualMachineClusterPreference',
  NAMESPACED = 'VirtualMachinePreference',
}

/**
 * A reference to an instancetype: a `VirtualMachineInstancetype` / `VirtualMachineClusterInstancetype`
 * construct, a catalogue entry (`commonInstancetypes.u1.medium`), or
 * `VirtualMachineClusterInstancetype.ref('name')` (dsl/instancetype.ts). Only name and kind are written.
 */
export interface InstancetypeMatcher {
  readonly name: string;
  /** @default InstancetypeKind.CLUSTER (KubeVirt's default, not written) */
  readonly kind?: InstancetypeKind;
}

/**
 * A reference to a preference: a `VirtualMachinePreference` / `VirtualMachineClusterPreference`
 * construct, a catalogue entry (`commonPreferences.fedora`), or `VirtualMachineClusterPreference.ref('name')`.
 */
export interface PreferenceMatcher {
  readonly name: string;
  /** @default PreferenceKind.CLUSTER (KubeVirt's default, not written) */
  readonly kind?: PreferenceKind;
}

export interface VirtualMachineProps {
  /** `metadata.name`, a DNS-1123 name. @default - the construct id */
  readonly name?: string;
  /** @default - the chart's namespace, else 'default' */
  readonly namespace?: string;
  /** VM labels. @default - the chart's labels only */
  readonly labels?: Readonly<Record<string, string>>;
  /** @default - none */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Labels of the VMI template (and so of the VMI and its launcher Pod). @default - none */
  readonly templateLabels?: Readonly<Record<string, string>>;
  /** @default - none */
  readonly templateAnnotations?: Readonly<Record<string, string>>;

  /** @default RunStrategy.ALWAYS, unless `running` is given */
  readonly runStrategy?: RunStrategy;
  /** Legacy form of runStrategy (true = Always, false = Halted); never set both. @default - not set */
  readonly running?: boolean;

  /** @default - not set (KubeVirt: 1 socket, 1 core, 1 thread) */
  readonly cpu?: CpuProps;
  /** Required unless an instancetype is referenced. @default - not set */
  readonly memory?: MemoryProps;
  /** QEMU machine type. @default 'q35' */
  readonly machineType?: string;
  /** @default - not set (BIOS) */
  readonly firmware?: FirmwareProps;
  /** @default - not set (UTC, hypervisor timers) */
  readonly clock?: ClockProps;
  /** @default - not set (KubeVirt's defaults) */
  readonly features?: FeaturesProps;

  /** Attach a virtio RNG device. @default false */
  readonly rng?: boolean;
  /** @default - not set (KubeVirt: true) */
  readonly autoattachSerialConsole?: boolean;
  /** @default - not set (KubeVirt: true) */
  readonly autoattachGraphicsDevice?: boolean;
  /** @default - not set (KubeVirt: true) */
  readonly autoattachMemBalloon?: boolean;
  /** @default - not set */
  readonly logSerialConsole?: boolean;
  /**
   * When no interface is added, give the VM a `default` interface (masquerade) on the pod
   * network. With false and no interfaces, the VM has no NIC (`autoattachPodInterface: false`).
   * @default true
   */
  readonly defaultPodNetwork?: boolean;

  /** @default - none */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** @default - none */
  readonly tolerations?: readonly Toleration[];
  /** A Kubernetes Affinity, written as given. @default - none */
  readonly affinity?: Readonly<Record<string, unknown>>;
  /** @default - not set (cluster default) */
  readonly evictionStrategy?: EvictionStrategy;
  /** @default - not set (KubeVirt: 180 for Linux VMs) */
  readonly terminationGracePeriodSeconds?: number;
  /** @default - the VM name */
  readonly hostname?: string;
  /** @default - none */
  readonly subdomain?: string;
  /** Guest architecture, e.g. `amd64`. @default - the cluster default */
  readonly architecture?: string;

  /**
   * Size the VM from an instancetype (vCPUs, memory and what else it sets); the VM may then
   * not set those itself. Expanded when the VM starts (`virtops expand` shows the result).
   * @default - none
   */
  readonly instancetype?: InstancetypeMatcher;
  /** Defaults for what the VM leaves unset (disk bus, NIC model, firmware...). @default - none */
  readonly preference?: PreferenceMatcher;
  /** CDI DataVolume templates, written as given. @default - none */
  readonly dataVolumeTemplates?: ReadonlyArray<Readonly<Record<string, unknown>>>;

  /**
   * Accept plain-text passwords in every cloud-init volume of this VM (see
   * `CloudInitProps.allowPlaintextSecrets`). @default false
   */
  readonly allowPlaintextSecrets?: boolean;
}

interface AttachedDisk {
  readonly name: string;
  readonly volume: Volume;
  readonly options: DiskOptions;
}

interface AttachedInterface {
  readonly name: string;
  readonly network: Network;
  readonly options: InterfaceOptions;
}

export class VirtualMachine extends Construct {
  /** True when `x` is a VirtualMachine (works across copies of this module). */
  public static isVirtualMachine(x: unknown): x is VirtualMachine {
    return x !== null && typeof x === 'object' && VIRTUAL_MACHINE_SYMBOL in x;
  }

  public readonly name: string;
  public readonly namespace: string;
  /**
   * This construct's validation checks the emitted manifest against KubeVirt's schema
   * (validateManifest), so `virtops synth` need not check it again.
   */
  public readonly validatesManifest = true;
  /** The low-level object: escape hatch for JSON patches (`apiObject.addJsonPatch`). */
  public readonly apiObject: ApiObject;

  private readonly disks: AttachedDisk[] = [];
  private readonly interfaces: AttachedInterface[] = [];
  private readonly nodeSelector: Record<string, string>;
  private readonly tolerations: Toleration[];
  private readonly accessCredentials: AccessCredential[] = [];
  private readonly resource: VirtualMachineApiObject;
  /** The last validated manifest (by identity) and its messages: see beginSynthesis. */
  private validated: { manifest: api.VirtualMachine; messages: string[] } | undefined;

  public constructor(scope: Construct, id: string, private readonly props: VirtualMachineProps = {}) {
    super(scope, id);
    Object.defineProperty(this, VIRTUAL_MACHINE_SYMBOL, { value: true });
    const chart = Chart.of(this);
    this.name = props.name ?? id;
    this.namespace = props.namespace ?? chart.namespace ?? 'default';
    this.nodeSelector = { ...(props.nodeSelector ?? {}) };
    this.tolerations = [...(props.tolerations ?? [])];

    this.resource = new VirtualMachineApiObject(this, 'Resource', {
      apiVersion: api.API_VERSION,
      kind: 'VirtualMachine',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { ...(props.labels ?? {}) },
        annotations: props.annotations ? { ...props.annotations } : undefined,
      },
      spec: Lazy.any({ produce: () => this.renderSpec() }),
    });
    this.apiObject = this.resource;

    this.node.addValidation({
      validate: () => {
        const manifest = this.toManifest();
        // Sealed, toManifest returns the same object until something changes: validate it once.
        if (this.validated?.manifest === manifest) return this.validated.messages;
        const allowed = this.props.allowPlaintextSecrets
          ? true
          : new Set(this.disks.filter((d) => d.volume.allowPlaintextSecrets).map((d) => d.name));
        const issues = validateVirtualMachineManifest(manifest, { allowPlaintextSecrets: allowed });
        // The shared validator adds KubeVirt's schema (unknown fields, types), which matters
        // once JSON patches are involved; fields already reported above are not repeated.
        issues.push(...schemaIssues(validateManifest(manifest), issues));
        const messages = issues.map((issue) => formatIssue(this.node.path, issue));
        this.validated = { manifest, messages };
        return messages;
      },
    });
  }

  /**
   * Attaches `volume` as a disk named `name`: one name for both the disk and the volume.
   * Disks appear to the guest in the order they are added.
   */
  public addDisk(name: string, volume: Volume, options: DiskOptions = {}): void {
    this.disks.push({ name, volume, options });
    this.resource.invalidate();
  }

  /** Adds a NIC named `name` on `network`: one name for both the interface and the network. */
  public addInterface(name: string, network: Network, options: InterfaceOptions = {}): void {
    this.interfaces.push({ name, network, options });
    this.resource.invalidate();
  }

  public addLabel(key: string, value: string): void {
    this.apiObject.metadata.addLabel(key, value);
    this.resource.invalidate();
  }

  public addAnnotation(key: string, value: string): void {
    this.apiObject.metadata.addAnnotation(key, value);
    this.resource.invalidate();
  }

  public addNodeSelector(key: string, value: string): void {
    this.nodeSelector[key] = value;
    this.resource.invalidate();
  }

  public addToleration(toleration: Toleration): void {
    this.tolerations.push(toleration);
    this.resource.invalidate();
  }

  /** Adds ssh public keys from a Secret, put into the guest as `credential` says (spec.template.spec.accessCredentials). */
  public addAccessCredential(credential: AccessCredential): void {
    this.accessCredentials.push(credential);
    this.resource.invalidate();
  }

  /**
   * Seals the VM for one synthesis: until endSynthesis, the manifest is rendered once and
   * reused (dropped by any mutator or JSON patch). Called by VirtopsApp.synth().
   */
  public beginSynthesis(): void {
    this.resource.seal(true);
  }

  public endSynthesis(): void {
    this.resource.seal(false);
    this.validated = undefined;
  }

  /**
   * The VirtualMachine exactly as synthesized (JSON patches applied, keys sorted). While
   * sealed for synthesis, the same object each call: treat it as read-only.
   */
  public toManifest(): api.VirtualMachine {
    return this.apiObject.toJson() as api.VirtualMachine;
  }

  private renderSpec(): api.VirtualMachineSpec {
    const p = this.props;
    const runStrategy = p.runStrategy ?? (p.running === undefined ? RunStrategy.ALWAYS : undefined);
    const templateMetadata = p.templateLabels || p.templateAnnotations
      ? { labels: p.templateLabels && { ...p.templateLabels }, annotations: p.templateAnnotations && { ...p.templateAnnotations } }
      : undefined;
    return {
      runStrategy,
      running: p.running,
      instancetype: p.instancetype && { name: p.instancetype.name, kind: p.instancetype.kind },
      preference: p.preference && { name: p.preference.name, kind: p.preference.kind },
      dataVolumeTemplates: p.dataVolumeTemplates?.map((t) => structuredClone(t) as Record<string, unknown>),
      template: { metadata: templateMetadata, spec: this.renderInstanceSpec() },
    };
  }

  private renderInstanceSpec(): api.VirtualMachineInstanceSpec {
    const p = this.props;
    const useDefaultNetwork = this.interfaces.length === 0 && (p.defaultPodNetwork ?? true);
    const interfaces: AttachedInterface[] = useDefaultNetwork
      ? [{ name: 'default', network: Network.pod(), options: {} }]
      : this.interfaces;
    return {
      architecture: p.architecture,
      domain: this.renderDomain(interfaces, !useDefaultNetwork && interfaces.length === 0),
      networks: interfaces.length > 0 ? interfaces.map((i) => i.network._toKube(i.name)) : undefined,
      volumes: this.disks.length > 0 ? this.disks.map((d) => d.volume._toKube(d.name)) : undefined,
      nodeSelector: Object.keys(this.nodeSelector).length > 0 ? { ...this.nodeSelector } : undefined,
      tolerations: this.tolerations.length > 0 ? this.tolerations.map((t) => ({ ...t })) : undefined,
      affinity: p.affinity && (structuredClone(p.affinity) as Record<string, unknown>),
      evictionStrategy: p.evictionStrategy,
      terminationGracePeriodSeconds: p.terminationGracePeriodSeconds,
      hostname: p.hostname,
      subdomain: p.subdomain,
      accessCredentials: this.accessCredentials.length > 0 ? this.accessCredentials.map((c) => c._toKube()) : undefined,
    };
  }

  private renderDomain(interfaces: AttachedInterface[], noNic: boolean): api.DomainSpec {
    const p = this.props;
    const requests: Record<string, string> = {};
    const limits: Record<string, string> = {};
    if (p.memory?.request) requests.memory = p.memory.request.toQuantity();
    if (p.memory?.limit) limits.memory = p.memory.limit.toQuantity();
    if (p.cpu?.request) requests.cpu = p.cpu.request.toQuantity();
    if (p.cpu?.limit) limits.cpu = p.cpu.limit.toQuantity();
    const hasResources = Object.keys(requests).length + Object.keys(limits).length > 0;
    // EFI Secure Boot needs SMM: enable it unless the user decided explicitly.
    const smm = p.features?.smm ?? (p.firmware?.bootloader?.requiresSmm ? true : undefined);
    const features = p.features || smm !== undefined ? renderFeatures({ ...p.features, smm }) : undefined;
    const cpu = p.cpu && {
      cores: p.cpu.cores,
      sockets: p.cpu.sockets,
      threads: p.cpu.threads,
      model: p.cpu.model,
      dedicatedCpuPlacement: p.cpu.dedicatedCpuPlacement,
    };
    return {
      cpu: cpu && Object.values(cpu).some((v) => v !== undefined) ? cpu : undefined,
      memory: p.memory?.guest ? { guest: p.memory.guest.toQuantity() } : undefined,
      resources: hasResources
        ? { requests: Object.keys(requests).length > 0 ? requests : undefined, limits: Object.keys(limits).length > 0 ? limits : undefined }
        : undefined,
      machine: { type: p.machineType ?? 'q35' },
      firmware: p.firmware && renderFirmware(p.firmware),
      clock: p.clock && renderClock(p.clock),
      features,
      devices: {
        disks: this.disks.length > 0 ? this.disks.map((d) => renderDisk(d.name, d.options)) : undefined,
        interfaces: interfaces.length > 0 ? interfaces.map((i) => renderInterface(i.name, i.network, i.options)) : undefined,
        rng: p.rng ? {} : undefined,
        autoattachSerialConsole: p.autoattachSerialConsole,
        autoattachGraphicsDevice: p.autoattachGraphicsDevice,
        autoattachMemBalloon: p.autoattachMemBalloon,
        autoattachPodInterface: noNic ? false : undefined,
        logSerialConsole: p.logSerialConsole,
      },
    };
  }
}
