/**
 * The `instancetype.kubevirt.io/v1beta1` shapes: instancetypes (what a VM is sized as) and
 * preferences (what a VM's devices default to), namespaced and cluster-scoped. Written by
 * hand from KubeVirt's OpenAPI (v1beta1.VirtualMachineInstancetypeSpec and
 * v1beta1.VirtualMachinePreferenceSpec); fields virtops does not model are passed through
 * as plain objects. Expansion lives in api/expand.ts.
 */
import type { ObjectMeta, Quantity } from './kubevirt.js';

export const INSTANCETYPE_API_VERSION = 'instancetype.kubevirt.io/v1beta1';
export const INSTANCETYPE_GROUP = 'instancetype.kubevirt.io';

export const INSTANCETYPE_KIND = 'VirtualMachineInstancetype';
export const CLUSTER_INSTANCETYPE_KIND = 'VirtualMachineClusterInstancetype';
export const PREFERENCE_KIND = 'VirtualMachinePreference';
export const CLUSTER_PREFERENCE_KIND = 'VirtualMachineClusterPreference';

export type InstancetypeKindName = typeof INSTANCETYPE_KIND | typeof CLUSTER_INSTANCETYPE_KIND;
export type PreferenceKindName = typeof PREFERENCE_KIND | typeof CLUSTER_PREFERENCE_KIND;
export type InstancetypeObjectKind = InstancetypeKindName | PreferenceKindName;

export const INSTANCETYPE_KINDS: readonly InstancetypeObjectKind[] = [
  INSTANCETYPE_KIND, CLUSTER_INSTANCETYPE_KIND, PREFERENCE_KIND, CLUSTER_PREFERENCE_KIND,
];

/** Cluster-scoped kinds take no namespace. */
export function isClusterScopedKind(kind: string): boolean {
  return kind === CLUSTER_INSTANCETYPE_KIND || kind === CLUSTER_PREFERENCE_KIND;
}

type Loose = Record<string, unknown>;

export interface CPUInstancetype {
  /** Number of vCPUs the guest sees (required). */
  guest: number;
  model?: string;
  dedicatedCPUPlacement?: boolean;
  isolateEmulatorThread?: boolean;
  numa?: { guestMappingPassthrough?: Record<string, never> };
  realtime?: { mask?: string };
  maxSockets?: number;
}

export interface MemoryInstancetype {
  /** Guest memory (required). */
  guest: Quantity;
  hugepages?: { pageSize?: string };
  maxGuest?: Quantity;
  /** Memory requested from the node is this percent below guest memory. */
  overcommitPercent?: number;
}

export interface VirtualMachineInstancetypeSpec {
  cpu: CPUInstancetype;
  memory: MemoryInstancetype;
  annotations?: Record<string, string>;
  gpus?: Loose[];
  hostDevices?: Loose[];
  ioThreads?: { supplementalPoolThreadCount?: number };
  ioThreadsPolicy?: 'shared' | 'auto' | 'supplementalPool';
  launchSecurity?: Loose;
  nodeSelector?: Record<string, string>;
  schedulerName?: string;
}

export type PreferredCPUTopology =
  | 'sockets' | 'cores' | 'threads' | 'spread' | 'any'
  // v1alpha-era spellings KubeVirt still accepts
  | 'preferSockets' | 'preferCores' | 'preferThreads' | 'preferSpread' | 'preferAny';

export const PREFERRED_CPU_TOPOLOGIES: readonly PreferredCPUTopology[] = [
  'sockets', 'cores', 'threads', 'spread', 'any', 'preferSockets', 'preferCores', 'preferThreads', 'preferSpread', 'preferAny',
];

export type SpreadAcross = 'SocketsCores' | 'CoresThreads' | 'SocketsCoresThreads';

export interface CPUPreferences {
  preferredCPUTopology?: PreferredCPUTopology;
  spreadOptions?: { across?: SpreadAcross; ratio?: number };
  preferredCPUFeatures?: { name: string; policy?: string }[];
}

export interface DevicePreferences {
  preferredAutoattachGraphicsDevice?: boolean;
  preferredAutoattachInputDevice?: boolean;
  preferredAutoattachMemBalloon?: boolean;
  preferredAutoattachPodInterface?: boolean;
  preferredAutoattachSerialConsole?: boolean;
  preferredBlockMultiQueue?: boolean;
  preferredCdromBus?: string;
  preferredDisableHotplug?: boolean;
  preferredDiskBlockSize?: Loose;
  preferredDiskBus?: string;
  preferredDiskCache?: string;
  preferredDiskDedicatedIoThread?: boolean;
  preferredDiskIO?: string;
  preferredInputBus?: string;
  preferredInputType?: string;
  preferredInterfaceMasquerade?: Record<string, never>;
  preferredInterfaceModel?: string;
  preferredLunBus?: string;
  preferredNetworkInterfaceMultiQueue?: boolean;
  preferredPanicDeviceModel?: string;
  preferredRng?: Loose;
  preferredSoundModel?: string;
  preferredTPM?: Loose;
  preferredUseVirtioTransitional?: boolean;
  preferredVideoType?: string;
  preferredVirtualGPUOptions?: Loose;
}

export interface FeaturePreferences {
  preferredAcpi?: { enabled?: boolean };
  preferredApic?: { enabled?: boolean; endOfInterrupt?: boolean };
  preferredHyperv?: Record<string, Loose | undefined>;
  preferredKvm?: { hidden?: boolean };
  preferredPvspinlock?: { enabled?: boolean };
  preferredSmm?: { enabled?: boolean };
}

export interface FirmwarePreferences {
  preferredEfi?: { secureBoot?: boolean; persistent?: boolean };
  preferredUseBios?: boolean;
  preferredUseBiosSerial?: boolean;
  /** Deprecated spelling of preferredEfi: {}. */
  preferredUseEfi?: boolean;
  /** Deprecated spelling of preferredEfi.secureBoot. */
  preferredUseSecureBoot?: boolean;
}

export interface VirtualMachinePreferenceSpec {
  annotations?: Record<string, string>;
  clock?: { preferredClockOffset?: Loose; preferredTimer?: Loose };
  cpu?: CPUPreferences;
  devices?: DevicePreferences;
  features?: FeaturePreferences;
  firmware?: FirmwarePreferences;
  machine?: { preferredMachineType?: string };
  /** Deprecated: cpu.spreadOptions.ratio. */
  preferSpreadSocketToCoreRatio?: number;
  preferredArchitecture?: string;
  preferredLaunchSecurity?: Loose;
  preferredSubdomain?: string;
  preferredTerminationGracePeriodSeconds?: number;
  requirements?: { architecture?: string; cpu?: { guest: number }; memory?: { guest: Quantity } };
  volumes?: { preferredStorageClassName?: string };
}

export interface VirtualMachineInstancetype {
  apiVersion: typeof INSTANCETYPE_API_VERSION;
  kind: typeof INSTANCETYPE_KIND;
  metadata: ObjectMeta;
  spec: VirtualMachineInstancetypeSpec;
}

export interface VirtualMachineClusterInstancetype {
  apiVersion: typeof INSTANCETYPE_API_VERSION;
  kind: typeof CLUSTER_INSTANCETYPE_KIND;
  metadata: ObjectMeta;
  spec: VirtualMachineInstancetypeSpec;
}

export interface VirtualMachinePreference {
  apiVersion: typeof INSTANCETYPE_API_VERSION;
  kind: typeof PREFERENCE_KIND;
  metadata: ObjectMeta;
  spec: VirtualMachinePreferenceSpec;
}

export interface VirtualMachineClusterPreference {
  apiVersion: typeof INSTANCETYPE_API_VERSION;
  kind: typeof CLUSTER_PREFERENCE_KIND;
  metadata: ObjectMeta;
  spec: VirtualMachinePreferenceSpec;
}

export type AnyInstancetype = VirtualMachineInstancetype | VirtualMachineClusterInstancetype;
export type AnyPreference = VirtualMachinePreference | VirtualMachineClusterPreference;
export type InstancetypeObject = AnyInstancetype | AnyPreference;

/** True for any of the four instancetype.kubevirt.io kinds (any version: the caller checks it). */
export function isInstancetypeObject(o: unknown): o is InstancetypeObject {
  if (typeof o !== 'object' || o === null) return false;
  const { apiVersion, kind } = o as { apiVersion?: unknown; kind?: unknown };
  return typeof apiVersion === 'string' && apiVersion.startsWith(`${INSTANCETYPE_GROUP}/`)
    && (INSTANCETYPE_KINDS as readonly unknown[]).includes(kind);
}
