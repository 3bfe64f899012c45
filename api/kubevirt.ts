/**
 * The `kubevirt.io/v1` API shapes virtops reads and writes: the subset of KubeVirt's
 * VirtualMachine / VirtualMachineInstance that the DSL covers, written out by hand from
 * KubeVirt's published OpenAPI (shared/reference/kubevirt-openapi.json).
 *
 * This is the contract between the DSL (which produces these objects), synth (which
 * renders launcher Pods from them), the launcher (which converts a VMI to a domain) and
 * the reconcilers. Field names match KubeVirt exactly; the schema test validates
 * synthesized objects against the real OpenAPI definitions, so drift here is caught.
 */

export const API_VERSION = 'kubevirt.io/v1';
export const GROUP = 'kubevirt.io';

/** A Kubernetes resource quantity such as `4Gi`, `500m`, `2`. */
export type Quantity = string;

/** Kubernetes' resource.Quantity grammar (as used in generated CRDs). */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface LocalObjectReference {
  name: string;
}

export type RunStrategy = 'Always' | 'RerunOnFailure' | 'Manual' | 'Halted' | 'Once';
export const RUN_STRATEGIES: readonly RunStrategy[] = ['Always', 'RerunOnFailure', 'Manual', 'Halted', 'Once'];

export interface VirtualMachine {
  apiVersion: typeof API_VERSION;
  kind: 'VirtualMachine';
  metadata: ObjectMeta;
  spec: VirtualMachineSpec;
  status?: VirtualMachineStatus;
}

export interface VirtualMachineSpec {
  runStrategy?: RunStrategy;
  /** Legacy form of runStrategy (true = Always, false = Halted). Never set both. */
  running?: boolean;
  instancetype?: Matcher;
  preference?: Matcher;
  template: VirtualMachineInstanceTemplateSpec;
  /** Passed through unchanged (CDI DataVolume templates). */
  dataVolumeTemplates?: Record<string, unknown>[];
}

export interface Matcher {
  name?: string;
  kind?: string;
  revisionName?: string;
  inferFromVolume?: string;
}

export interface VirtualMachineInstanceTemplateSpec {
  metadata?: ObjectMeta;
  spec: VirtualMachineInstanceSpec;
}

export interface VirtualMachineInstance {
  apiVersion: typeof API_VERSION;
  kind: 'VirtualMachineInstance';
  metadata: ObjectMeta;
  spec: VirtualMachineInstanceSpec;
  status?: VirtualMachineInstanceStatus;
}

export type EvictionStrategy = 'None' | 'LiveMigrate' | 'LiveMigrateIfPossible' | 'External';

export interface VirtualMachineInstanceSpec {
  /** Guest architecture, e.g. `amd64` (KubeVirt defaults it from the cluster). */
  architecture?: string;
  domain: DomainSpec;
  networks?: Network[];
  volumes?: Volume[];
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  evictionStrategy?: EvictionStrategy;
  terminationGracePeriodSeconds?: number;
  hostname?: string;
  subdomain?: string;
  priorityClassName?: string;
  schedulerName?: string;
  /** ssh public keys (from Secrets) put into the guest by cloud-init or the guest agent. */
  accessCredentials?: AccessCredential[];
}

/** KubeVirt's AccessCredential (only sshPublicKey; userPassword is not modelled). */
export interface AccessCredential {
  sshPublicKey?: {
    source: { secret: { secretName: string } };
    propagationMethod: {
      /** The keys go into the NoCloud meta-data (`public-keys`): cloud-init gives them to the default user. */
      noCloud?: Record<string, never>;
      /** The keys go into the ConfigDrive meta_data.json (`public_keys`). */
      configDrive?: Record<string, never>;
      /** The launcher adds the keys to these users' authorized_keys through the guest agent. */
      qemuGuestAgent?: { users: string[] };
    };
  };
  userPassword?: unknown;
}

export interface DomainSpec {
  resources?: ResourceRequirements;
  cpu?: CPU;
  memory?: Memory;
  machine?: { type?: string };
  firmware?: Firmware;
  clock?: Clock;
  features?: Features;
  devices: Devices;
  ioThreadsPolicy?: 'shared' | 'auto' | 'supplementalPool';
}

export interface ResourceRequirements {
  requests?: Record<string, Quantity>;
  limits?: Record<string, Quantity>;
  overcommitGuestOverhead?: boolean;
}

export interface CPU {
  cores?: number;
  sockets?: number;
  threads?: number;
  model?: string;
  features?: { name: string; policy?: string }[];
  dedicatedCpuPlacement?: boolean;
}

export interface Memory {
  guest?: Quantity;
  maxGuest?: Quantity;
  hugepages?: { pageSize?: string };
}

export interface Firmware {
  uuid?: string;
  serial?: string;
  bootloader?: { bios?: { useSerial?: boolean }; efi?: { secureBoot?: boolean; persistent?: boolean } };
  kernelBoot?: KernelBoot;
}

export interface KernelBoot {
  kernelArgs?: string;
  container?: {
    image: string;
    kernelPath?: string;
    initrdPath?: string;
    imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
    imagePullSecret?: string;
  };
}

export interface Clock {
  utc?: { offsetSeconds?: number };
  timezone?: string;
  timer?: {
    hpet?: TimerState & { tickPolicy?: 'delay' | 'catchup' | 'merge' | 'discard' };
    pit?: TimerState & { tickPolicy?: 'delay' | 'catchup' | 'discard' };
    rtc?: TimerState & { tickPolicy?: 'delay' | 'catchup'; track?: 'guest' | 'wall' };
    kvm?: TimerState;
    hyperv?: TimerState;
  };
}

export interface TimerState {
  present?: boolean;
}

export interface FeatureState {
  enabled?: boolean;
}

export interface Features {
  acpi?: FeatureState;
  apic?: FeatureState & { endOfInterrupt?: boolean };
  smm?: FeatureState;
  pvspinlock?: FeatureState;
  kvm?: { hidden?: boolean };
  hyperv?: {
    relaxed?: FeatureState;
    vapic?: FeatureState;
    spinlocks?: FeatureState & { spinlocks?: number };
    vpindex?: FeatureState;
    runtime?: FeatureState;
    synic?: FeatureState;
    reset?: FeatureState;
    frequencies?: FeatureState;
    reenlightenment?: FeatureState;
    tlbflush?: FeatureState & { direct?: FeatureState; extended?: FeatureState };
    ipi?: FeatureState;
    synictimer?: FeatureState & { direct?: FeatureState };
    vendorid?: FeatureState & { vendorid?: string };
    evmcs?: FeatureState;
  };
}

export interface Devices {
  disks?: Disk[];
  interfaces?: Interface[];
  rng?: Record<string, never>;
  autoattachSerialConsole?: boolean;
  autoattachGraphicsDevice?: boolean;
  autoattachMemBalloon?: boolean;
  autoattachPodInterface?: boolean;
  logSerialConsole?: boolean;
  networkInterfaceMultiqueue?: boolean;
  blockMultiQueue?: boolean;
}

export type DiskBus = 'virtio' | 'sata' | 'scsi' | 'usb';

export interface Disk {
  name: string;
  disk?: { bus?: DiskBus; readonly?: boolean; pciAddress?: string };
  cdrom?: { bus?: DiskBus; readonly?: boolean; tray?: 'open' | 'closed' };
  lun?: { bus?: DiskBus; readonly?: boolean; reservation?: boolean };
  bootOrder?: number;
  serial?: string;
  cache?: 'none' | 'writethrough' | 'writeback';
  io?: 'native' | 'threads';
  dedicatedIOThread?: boolean;
  shareable?: boolean;
  errorPolicy?: 'stop' | 'ignore' | 'report' | 'enospace';
}

export interface Interface {
  name: string;
  bridge?: Record<string, never>;
  masquerade?: Record<string, never>;
  macAddress?: string;
  model?: string;
  ports?: Port[];
  bootOrder?: number;
  pciAddress?: string;
}

export interface Port {
  port: number;
  name?: string;
  protocol?: 'TCP' | 'UDP';
}

export interface Network {
  name: string;
  pod?: { vmNetworkCIDR?: string; vmIPv6NetworkCIDR?: string };
  multus?: { networkName: string; default?: boolean };
}

export interface CloudInitSource {
  userData?: string;
  userDataBase64?: string;
  secretRef?: LocalObjectReference;
  networkData?: string;
  networkDataBase64?: string;
  networkDataSecretRef?: LocalObjectReference;
}

export interface Volume {
  name: string;
  containerDisk?: { image: string; path?: string; imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never'; imagePullSecret?: string };
  emptyDisk?: { capacity: Quantity };
  ephemeral?: { persistentVolumeClaim: { claimName: string; readOnly?: boolean } };
  cloudInitNoCloud?: CloudInitSource;
  cloudInitConfigDrive?: CloudInitSource;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean; hotpluggable?: boolean };
  dataVolume?: { name: string; hotpluggable?: boolean };
  hostDisk?: { path: string; type: 'Disk' | 'DiskOrCreate'; capacity?: Quantity; shared?: boolean };
  secret?: { secretName?: string; optional?: boolean; volumeLabel?: string };
  configMap?: { name?: string; optional?: boolean; volumeLabel?: string };
  serviceAccount?: { serviceAccountName?: string };
}

// ---- status -------------------------------------------------------------------------

export type VMIPhase = 'Pending' | 'Scheduling' | 'Scheduled' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export type PrintableStatus =
  | 'Stopped' | 'Provisioning' | 'Starting' | 'Running' | 'Paused' | 'Stopping' | 'Terminating'
  | 'CrashLoopBackOff' | 'Migrating' | 'Unknown' | 'ErrorUnschedulable' | 'ErrImagePull'
  | 'ImagePullBackOff' | 'ErrorPvcNotFound' | 'DataVolumeError' | 'WaitingForVolumeBinding';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string | null;
  lastProbeTime?: string | null;
}

export interface VirtualMachineStatus {
  printableStatus?: PrintableStatus;
  ready?: boolean;
  created?: boolean;
  runStrategy?: RunStrategy;
  observedGeneration?: number;
  desiredGeneration?: number;
  conditions?: Condition[];
  startFailure?: { retries?: number; consecutiveFailCount?: number; lastFailedVMIUID?: string; retryAfterTimestamp?: string };
  /** The instancetype the running (or last) instance was expanded from, and its recorded revision. */
  instancetypeRef?: InstancetypeStatusRef;
  /** The preference the running (or last) instance was expanded from, and its recorded revision. */
  preferenceRef?: InstancetypeStatusRef;
}

export interface InstancetypeStatusRef {
  kind?: string;
  name?: string;
  /** The revision holding a copy of the object as it was when the instance started. */
  controllerRevisionRef?: { name?: string };
}

export interface VirtualMachineInstanceStatus {
  phase?: VMIPhase;
  reason?: string;
  nodeName?: string;
  conditions?: Condition[];
  interfaces?: { name?: string; mac?: string; ipAddress?: string; ipAddresses?: string[]; interfaceName?: string; infoSource?: string }[];
  /** What the guest agent says of the OS (KubeVirt's VirtualMachineInstanceGuestOSInfo). */
  guestOSInfo?: { id?: string; name?: string; prettyName?: string; version?: string; versionId?: string; kernelRelease?: string; kernelVersion?: string; machine?: string };
  phaseTransitionTimestamps?: { phase: VMIPhase; phaseTransitionTimestamp: string }[];
}

/** The VMI a VM's template describes: what a controller creates when the VM starts. */
export function vmiFromVm(vm: VirtualMachine, uid?: string): VirtualMachineInstance {
  const tmeta = vm.spec.template.metadata ?? {};
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualMachineInstance',
    metadata: {
      name: vm.metadata.name,
      namespace: vm.metadata.namespace ?? 'default',
      ...(uid ? { uid } : {}),
      labels: { ...(tmeta.labels ?? {}) },
      annotations: { ...(tmeta.annotations ?? {}) },
    },
    spec: structuredClone(vm.spec.template.spec),
  };
}
