/**
 * A typed catalogue with the names and sizes of KubeVirt's common-instancetypes
 * (github.com/kubevirt/common-instancetypes, v1 series): cluster-scoped instancetypes per
 * series (u1 universal, o1 overcommitted, cx1 compute exclusive, m1 memory, n1 network,
 * d1 dedicated, rt1 realtime) and a set of cluster-scoped preferences per OS. Facts only
 * (vCPUs, memory, what each series sets); written here as data.
 *
 *   new VirtualMachine(chart, 'web', { instancetype: commonInstancetypes.u1.medium, preference: commonPreferences.fedora });
 *   new CommonInstancetypes(app, 'common-instancetypes');  // emits the ones VMs refer to into dist/
 *
 * A reference names the object; the object itself must be in dist/ (or on the cluster) for
 * the VM to start: `CommonInstancetypes` (dsl/instancetype.ts) writes the referenced ones.
 */
import {
  CLUSTER_INSTANCETYPE_KIND, CLUSTER_PREFERENCE_KIND, INSTANCETYPE_API_VERSION,
  type VirtualMachineClusterInstancetype, type VirtualMachineClusterPreference,
  type VirtualMachineInstancetypeSpec, type VirtualMachinePreferenceSpec,
} from '../api/instancetype.js';
import { InstancetypeKind, PreferenceKind } from './virtual-machine.js';

/** A catalogue instancetype: usable as a VM's `instancetype` prop, and its manifest. */
export interface CatalogueInstancetype {
  readonly name: string;
  readonly kind: InstancetypeKind.CLUSTER;
  readonly series: string;
  readonly manifest: VirtualMachineClusterInstancetype;
}

/** A catalogue preference: usable as a VM's `preference` prop, and its manifest. */
export interface CataloguePreference {
  readonly name: string;
  readonly kind: PreferenceKind.CLUSTER;
  readonly manifest: VirtualMachineClusterPreference;
}

/** Marks the objects as virtops' copies of the catalogue (same names and sizes as upstream's v1 series). */
const VENDOR_LABELS = { 'virtops.io/catalogue': 'common-instancetypes' };

type Size = readonly [size: string, vcpus: number, memory: string, hugepages?: string];

interface Series {
  /** `u` → names `u1.<size>` */
  readonly prefix: string;
  readonly className: string;
  readonly displayName: string;
  /** What every size of the series sets besides cpu.guest and memory.guest. */
  readonly spec: (size: Size) => Omit<VirtualMachineInstancetypeSpec, 'cpu' | 'memory'> & {
    cpu?: Omit<VirtualMachineInstancetypeSpec['cpu'], 'guest'>;
    memory?: Omit<VirtualMachineInstancetypeSpec['memory'], 'guest'>;
  };
  readonly sizes: readonly Size[];
}

const CRIO_NO_BALANCING = { 'cpu-load-balancing.crio.io': 'disable', 'cpu-quota.crio.io': 'disable', 'irq-load-balancing.crio.io': 'disable' };

const SERIES: readonly Series[] = [
  {
    prefix: 'u', className: 'general.purpose', displayName: 'General Purpose', spec: () => ({}),
    sizes: [['nano', 1, '512Mi'], ['micro', 1, '1Gi'], ['small', 1, '2Gi'], ['medium', 1, '4Gi'], ['2xmedium', 2, '4Gi'], ['large', 2, '8Gi'],
      ['xlarge', 4, '16Gi'], ['2xlarge', 8, '32Gi'], ['4xlarge', 16, '64Gi'], ['8xlarge', 32, '128Gi']],
  },
  {
    prefix: 'o', className: 'overcommitted', displayName: 'Overcommitted', spec: () => ({ memory: { overcommitPercent: 50 } }),
    sizes: [['nano', 1, '512Mi'], ['micro', 1, '1Gi'], ['small', 1, '2Gi'], ['medium', 1, '4Gi'], ['large', 2, '8Gi'],
      ['xlarge', 4, '16Gi'], ['2xlarge', 8, '32Gi'], ['4xlarge', 16, '64Gi'], ['8xlarge', 32, '128Gi']],
  },
  {
    prefix: 'cx', className: 'compute.exclusive', displayName: 'Compute Exclusive',
    spec: ([, vcpus, , hugepages]) => ({
      cpu: { dedicatedCPUPlacement: true, isolateEmulatorThread: true, numa: { guestMappingPassthrough: {} }, maxSockets: vcpus },
      memory: { hugepages: { pageSize: hugepages! } },
      ioThreadsPolicy: 'auto',
    }),
    sizes: [['medium', 1, '2Gi', '2Mi'], ['large', 2, '4Gi', '2Mi'], ['xlarge', 4, '8Gi', '2Mi'], ['2xlarge', 8, '16Gi', '2Mi'],
      ['4xlarge', 16, '32Gi', '2Mi'], ['8xlarge', 32, '64Gi', '2Mi'],
      ['medium1gi', 1, '2Gi', '1Gi'], ['large1gi', 2, '4Gi', '1Gi'], ['xlarge1gi', 4, '8Gi', '1Gi'], ['2xlarge1gi', 8, '16Gi', '1Gi'],
      ['4xlarge1gi', 16, '32Gi', '1Gi'], ['8xlarge1gi', 32, '64Gi', '1Gi']],
  },
  {
    prefix: 'm', className: 'memory.intensive', displayName: 'Memory Intensive',
    spec: ([, , , hugepages]) => ({ memory: { hugepages: { pageSize: hugepages! } } }),
    sizes: [['large', 2, '16Gi', '2Mi'], ['xlarge', 4, '32Gi', '2Mi'], ['2xlarge', 8, '64Gi', '2Mi'], ['4xlarge', 16, '128Gi', '2Mi'], ['8xlarge', 32, '256Gi', '2Mi'],
      ['large1gi', 2, '16Gi', '1Gi'], ['xlarge1gi', 4, '32Gi', '1Gi'], ['2xlarge1gi', 8, '64Gi', '1Gi'], ['4xlarge1gi', 16, '128Gi', '1Gi'], ['8xlarge1gi', 32, '256Gi', '1Gi']],
  },
  {
    prefix: 'n', className: 'network', displayName: 'Network',
    spec: () => ({ annotations: { ...CRIO_NO_BALANCING }, cpu: { dedicatedCPUPlacement: true, isolateEmulatorThread: true }, memory: { hugepages: { pageSize: '1Gi' } } }),
    sizes: [['medium', 4, '4Gi'], ['large', 4, '8Gi'], ['xlarge', 8, '16Gi'], ['2xlarge', 16, '32Gi'], ['4xlarge', 32, '64Gi'], ['8xlarge', 64, '128Gi']],
  },
  {
    prefix: 'd', className: 'dedicated.vcpu', displayName: 'Dedicated vCPU',
    spec: () => ({ cpu: { dedicatedCPUPlacement: true, isolateEmulatorThread: true }, ioThreadsPolicy: 'auto' }),
    sizes: [['nano', 1, '512Mi'], ['micro', 1, '1Gi'], ['small', 1, '2Gi'], ['medium', 1, '4Gi'], ['2xmedium', 2, '4Gi'], ['large', 2, '8Gi'],
      ['xlarge', 4, '16Gi'], ['2xlarge', 8, '32Gi'], ['4xlarge', 16, '64Gi'], ['8xlarge', 32, '128Gi']],
  },
  {
    prefix: 'rt', className: 'realtime', displayName: 'Realtime',
    spec: () => ({
      annotations: { ...CRIO_NO_BALANCING },
      cpu: { dedicatedCPUPlacement: true, isolateEmulatorThread: true, numa: { guestMappingPassthrough: {} }, realtime: {} },
      memory: { hugepages: { pageSize: '1Gi' } },
    }),
    sizes: [['micro', 1, '1Gi'], ['small', 1, '2Gi'], ['medium', 1, '4Gi'], ['large', 2, '8Gi'], ['xlarge', 4, '16Gi'],
      ['2xlarge', 8, '32Gi'], ['4xlarge', 16, '64Gi'], ['8xlarge', 32, '128Gi']],
  },
];

function instancetypeEntry(series: Series, size: Size): CatalogueInstancetype {
  const [sizeName, vcpus, memory, hugepages] = size;
  const name = `${series.prefix}1.${sizeName}`;
  const extra = series.spec(size);
  const spec: VirtualMachineInstancetypeSpec = {
    ...extra,
    cpu: { guest: vcpus, ...extra.cpu },
    memory: { guest: memory, ...extra.memory },
  };
  const entry: CatalogueInstancetype = {
    name,
    kind: InstancetypeKind.CLUSTER,
    series: `${series.prefix}1`,
    manifest: {
      apiVersion: INSTANCETYPE_API_VERSION,
      kind: CLUSTER_INSTANCETYPE_KIND,
      metadata: {
        name,
        labels: {
          ...VENDOR_LABELS,
          'instancetype.kubevirt.io/class': series.className,
          'instancetype.kubevirt.io/cpu': String(vcpus),
          'instancetype.kubevirt.io/memory': memory,
          'instancetype.kubevirt.io/size': sizeName.replace(/1gi$/, ''),
          ...(hugepages ? { 'instancetype.kubevirt.io/hugepages': hugepages } : {}),
        },
        annotations: { 'instancetype.kubevirt.io/displayName': series.displayName },
      },
      spec,
    },
  };
  return Object.freeze(entry);
}

/** Every catalogue instancetype, by series then size: `commonInstancetypes.u1.medium`. */
export const commonInstancetypes = Object.freeze(Object.fromEntries(SERIES.map((s) => [
  `${s.prefix}1`,
  Object.freeze(Object.fromEntries(s.sizes.map((size) => [size[0], instancetypeEntry(s, size)]))),
]))) as {
  readonly u1: SizesOf<'nano' | 'micro' | 'small' | 'medium' | '2xmedium' | 'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge'>;
  readonly o1: SizesOf<'nano' | 'micro' | 'small' | 'medium' | 'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge'>;
  readonly cx1: SizesOf<'medium' | 'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge' | 'medium1gi' | 'large1gi' | 'xlarge1gi' | '2xlarge1gi' | '4xlarge1gi' | '8xlarge1gi'>;
  readonly m1: SizesOf<'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge' | 'large1gi' | 'xlarge1gi' | '2xlarge1gi' | '4xlarge1gi' | '8xlarge1gi'>;
  readonly n1: SizesOf<'medium' | 'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge'>;
  readonly d1: SizesOf<'nano' | 'micro' | 'small' | 'medium' | '2xmedium' | 'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge'>;
  readonly rt1: SizesOf<'micro' | 'small' | 'medium' | 'large' | 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge'>;
};

type SizesOf<K extends string> = Readonly<Record<K, CatalogueInstancetype>>;

// ---- preferences ------------------------------------------------------------------------

/** What every Linux preference of the catalogue prefers: virtio disks and NICs, a virtio RNG. */
const LINUX: VirtualMachinePreferenceSpec = {
  annotations: { 'vm.kubevirt.io/os': 'linux' },
  devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio', preferredRng: {} },
};

const SECUREBOOT_AMD64: VirtualMachinePreferenceSpec = {
  features: { preferredSmm: {} },
  firmware: { preferredEfi: { secureBoot: true } },
  preferredArchitecture: 'amd64',
};

function requirements(cpu: number, memory: string, architecture?: string): VirtualMachinePreferenceSpec {
  return { requirements: { cpu: { guest: cpu }, memory: { guest: memory }, ...(architecture ? { architecture } : {}) } };
}

function merge(...parts: VirtualMachinePreferenceSpec[]): VirtualMachinePreferenceSpec {
  const out: Record<string, unknown> = {};
  for (const p of parts) {
    for (const [k, v] of Object.entries(p)) {
      const cur = out[k];
      out[k] = cur && typeof cur === 'object' && v && typeof v === 'object' && !Array.isArray(v) ? { ...cur, ...v } : structuredClone(v);
    }
  }
  return out as VirtualMachinePreferenceSpec;
}

const DEDICATED_IOTHREAD: VirtualMachinePreferenceSpec = { devices: { preferredDiskDedicatedIoThread: true } };

const PREFERENCES: Readonly<Record<string, VirtualMachinePreferenceSpec>> = {
  linux: LINUX,
  cirros: merge(LINUX, requirements(1, '256Mi')),
  alpine: merge(LINUX, requirements(1, '512Mi')),
  debian: merge(LINUX, requirements(1, '512Mi')),
  ubuntu: merge(LINUX, requirements(1, '2Gi')),
  fedora: merge(LINUX, requirements(1, '2Gi', 'amd64'), SECUREBOOT_AMD64),
  'centos.stream9': merge(LINUX, requirements(1, '1.5Gi'), DEDICATED_IOTHREAD),
  'rhel.9': merge(LINUX, requirements(1, '1.5Gi', 'amd64'), DEDICATED_IOTHREAD, SECUREBOOT_AMD64),
};

function preferenceEntry(name: string, spec: VirtualMachinePreferenceSpec): CataloguePreference {
  const entry: CataloguePreference = {
    name,
    kind: PreferenceKind.CLUSTER,
    manifest: {
      apiVersion: INSTANCETYPE_API_VERSION,
      kind: CLUSTER_PREFERENCE_KIND,
      metadata: { name, labels: { ...VENDOR_LABELS, 'instancetype.kubevirt.io/os-type': 'linux' } },
      spec: structuredClone(spec),
    },
  };
  return Object.freeze(entry);
}

/** Catalogue preferences by name: `commonPreferences.fedora`, `commonPreferences['rhel.9']`. */
export const commonPreferences = Object.freeze(Object.fromEntries(Object.entries(PREFERENCES).map(([n, s]) => [n, preferenceEntry(n, s)]))) as Readonly<
  Record<'linux' | 'cirros' | 'alpine' | 'debian' | 'ubuntu' | 'fedora' | 'centos.stream9' | 'rhel.9', CataloguePreference>
>;

/** Every catalogue instancetype, flat. */
export function allCommonInstancetypes(): CatalogueInstancetype[] {
  return Object.values(commonInstancetypes).flatMap((series) => Object.values(series));
}

/** The catalogue instancetype or preference of that name (cluster kinds only), if any. */
export function findCommonInstancetype(name: string): CatalogueInstancetype | undefined {
  return allCommonInstancetypes().find((e) => e.name === name);
}

export function findCommonPreference(name: string): CataloguePreference | undefined {
  return (commonPreferences as Readonly<Record<string, CataloguePreference>>)[name];
}
