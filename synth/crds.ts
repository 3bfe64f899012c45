/**
 * CustomResourceDefinitions for kubevirt.io/v1 VirtualMachine and VirtualMachineInstance and
 * for instancetype.kubevirt.io/v1beta1's four kinds (namespaced and cluster instancetypes and
 * preferences), pool.kubevirt.io/v1beta1 VirtualMachinePool and snapshot.kubevirt.io/v1beta1
 * VirtualMachineSnapshot/VirtualMachineRestore, with structural schemas derived at synth time from the vendored KubeVirt
 * OpenAPI, so a cluster without KubeVirt accepts virtops' manifests and prunes/validates them
 * like KubeVirt would. Also CDI's cdi.kubevirt.io/v1beta1 DataVolume (virtops imports them
 * where CDI is not; fields preserved, virtops validates them itself).
 */
import { ApiObject, Chart, type ChartProps } from 'cdk8s';
import type { Construct } from 'constructs';
import { structuralSchema, type JsonSchema } from '../api/structural-schema.js';
import { GROUP } from '../api/kubevirt.js';
import { INSTANCETYPE_GROUP } from '../api/instancetype.js';
import { POOL_GROUP, POOL_KIND } from '../api/pool.js';

/** The API group of VirtualMachineSnapshot and VirtualMachineRestore. */
export const SNAPSHOT_GROUP = 'snapshot.kubevirt.io';

export interface CrdNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  definition: string;
  /** Extra printer columns besides Age (and Status/Ready for kinds with a status). */
  columns: PrinterColumn[];
  /** API group and version. @default kubevirt.io, v1 */
  group?: string;
  version?: string;
  /** @default 'Namespaced' */
  scope?: 'Namespaced' | 'Cluster';
  /** The kind has no status (instancetypes, preferences): no status subresource, no Status/Ready columns. */
  specOnly?: boolean;
  /** Columns in place of the VM's Status/Ready (a kind whose status has other fields). */
  statusColumns?: PrinterColumn[];
  /** The scale subresource (spec.replicas, status.replicas, status.labelSelector), as a pool has. */
  scale?: boolean;
  /** No vendored definition: every field kept (`x-kubernetes-preserve-unknown-fields`), as for CDI's DataVolume. */
  preserveUnknownFields?: boolean;
  /** Age as the last column (CDI's order) instead of the first. */
  ageLast?: boolean;
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'date' | 'boolean' | 'integer';
  jsonPath: string;
  priority?: number;
  description?: string;
}

export const VM_CRD: CrdNames = {
  kind: 'VirtualMachine',
  plural: 'virtualmachines',
  singular: 'virtualmachine',
  shortNames: ['vm', 'vms'],
  definition: 'v1.VirtualMachine',
  columns: [],
};

export const VMI_CRD: CrdNames = {
  kind: 'VirtualMachineInstance',
  plural: 'virtualmachineinstances',
  singular: 'virtualmachineinstance',
  shortNames: ['vmi', 'vmis'],
  definition: 'v1.VirtualMachineInstance',
  columns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'NodeName', type: 'string', jsonPath: '.status.nodeName' },
  ],
};

/** instancetype.kubevirt.io/v1beta1: what VMs are sized by (instancetype) and default to (preference). */
function instancetypeCrd(kind: string, plural: string, shortNames: string[], scope: 'Namespaced' | 'Cluster'): CrdNames {
  return {
    kind,
    plural,
    singular: kind.toLowerCase(),
    shortNames,
    definition: `v1beta1.${kind}`,
    columns: [],
    group: INSTANCETYPE_GROUP,
    version: 'v1beta1',
    scope,
    specOnly: true,
  };
}

export const INSTANCETYPE_CRD = instancetypeCrd('VirtualMachineInstancetype', 'virtualmachineinstancetypes', ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'], 'Namespaced');
export const CLUSTER_INSTANCETYPE_CRD = instancetypeCrd('VirtualMachineClusterInstancetype', 'virtualmachineclusterinstancetypes', ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'], 'Cluster');
export const PREFERENCE_CRD = instancetypeCrd('VirtualMachinePreference', 'virtualmachinepreferences', ['vmpref', 'vmprefs', 'vmp', 'vmps'], 'Namespaced');
export const CLUSTER_PREFERENCE_CRD = instancetypeCrd('VirtualMachineClusterPreference', 'virtualmachineclusterpreferences', ['vmcp', 'vmcps'], 'Cluster');

/** pool.kubevirt.io/v1beta1 VirtualMachinePool, with KubeVirt's columns and scale subresource. */
export const POOL_CRD: CrdNames = {
  kind: POOL_KIND,
  plural: 'virtualmachinepools',
  singular: 'virtualmachinepool',
  shortNames: ['vmpool', 'vmpools'],
  definition: 'v1beta1.VirtualMachinePool',
  columns: [],
  group: POOL_GROUP,
  version: 'v1beta1',
  statusColumns: [
    { name: 'Desired', type: 'integer', jsonPath: '.spec.replicas' },
    { name: 'Current', type: 'integer', jsonPath: '.status.replicas' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
  ],
  scale: true,
};

/** snapshot.kubevirt.io/v1beta1 VirtualMachineSnapshot, with KubeVirt's columns. */
export const SNAPSHOT_CRD: CrdNames = {
  kind: 'VirtualMachineSnapshot',
  plural: 'virtualmachinesnapshots',
  singular: 'virtualmachinesnapshot',
  shortNames: ['vmsnapshot', 'vmsnapshots'],
  definition: 'v1beta1.VirtualMachineSnapshot',
  columns: [],
  group: SNAPSHOT_GROUP,
  version: 'v1beta1',
  statusColumns: [
    { name: 'SourceKind', type: 'string', jsonPath: '.spec.source.kind' },
    { name: 'SourceName', type: 'string', jsonPath: '.spec.source.name' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'ReadyToUse', type: 'boolean', jsonPath: '.status.readyToUse' },
    { name: 'CreationTime', type: 'date', jsonPath: '.status.creationTime' },
    { name: 'Error', type: 'string', jsonPath: '.status.error.message' },
  ],
};

/** snapshot.kubevirt.io/v1beta1 VirtualMachineRestore, with KubeVirt's columns. */
export const RESTORE_CRD: CrdNames = {
  kind: 'VirtualMachineRestore',
  plural: 'virtualmachinerestores',
  singular: 'virtualmachinerestore',
  shortNames: ['vmrestore', 'vmrestores'],
  definition: 'v1beta1.VirtualMachineRestore',
  columns: [],
  group: SNAPSHOT_GROUP,
  version: 'v1beta1',
  statusColumns: [
    { name: 'TargetKind', type: 'string', jsonPath: '.spec.target.kind' },
    { name: 'TargetName', type: 'string', jsonPath: '.spec.target.name' },
    { name: 'Complete', type: 'boolean', jsonPath: '.status.complete' },
    { name: 'RestoreTime', type: 'date', jsonPath: '.status.restoreTime' },
    { name: 'Error', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].message" },
  ],
};

/**
 * CDI's cdi.kubevirt.io/v1beta1 DataVolume (its names, short names and columns), which
 * virtops' node agents import where CDI is not installed (reconciler/cluster/datavolumes.ts).
 * Where CDI is installed, virtops must not be (both would import).
 */
export const DATAVOLUME_CRD: CrdNames = {
  kind: 'DataVolume',
  plural: 'datavolumes',
  singular: 'datavolume',
  shortNames: ['dv', 'dvs'],
  definition: '',
  columns: [],
  group: 'cdi.kubevirt.io',
  version: 'v1beta1',
  preserveUnknownFields: true,
  ageLast: true,
  statusColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'The phase the data volume is in' },
    { name: 'Progress', type: 'string', jsonPath: '.status.progress', description: 'Transfer progress in percentage if known, N/A otherwise' },
    { name: 'Restarts', type: 'integer', jsonPath: '.status.restartCount', description: 'The number of times the transfer has been restarted.' },
  ],
};

/** Every CRD virtops ships, in apply order. */
export const ALL_CRDS: readonly CrdNames[] = [VM_CRD, VMI_CRD, INSTANCETYPE_CRD, CLUSTER_INSTANCETYPE_CRD, PREFERENCE_CRD, CLUSTER_PREFERENCE_CRD, POOL_CRD, SNAPSHOT_CRD, RESTORE_CRD, DATAVOLUME_CRD];

/** `<plural>.<group>`, the CRD's object name. */
export function crdName(names: CrdNames): string {
  return `${names.plural}.${names.group ?? GROUP}`;
}

/** The CRD as plain JSON (pure). */
export function renderCrd(names: CrdNames): Record<string, unknown> {
  const schema: JsonSchema = names.preserveUnknownFields ? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } : structuralSchema(names.definition);
  const statusColumns = names.specOnly ? [] : names.statusColumns ?? [
    { name: 'Status', type: 'string', jsonPath: '.status.printableStatus' },
    { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
  ];
  const age = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName(names), labels: { 'app.kubernetes.io/part-of': 'virtops' } },
    spec: {
      group: names.group ?? GROUP,
      scope: names.scope ?? 'Namespaced',
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        ...(names.specOnly ? {} : { categories: ['all'] }),
      },
      versions: [{
        name: names.version ?? 'v1',
        served: true,
        storage: true,
        ...(names.specOnly ? {} : {
          subresources: {
            status: {},
            ...(names.scale ? { scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.labelSelector' } } : {}),
          },
        }),
        additionalPrinterColumns: names.ageLast
          ? [...statusColumns, ...names.columns, age]
          : [age, ...statusColumns, ...names.columns],
        schema: { openAPIV3Schema: schema },
      }],
    },
  };
}

export class CrdChart extends Chart {
  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, props);
    for (const names of ALL_CRDS) {
      new ApiObject(this, names.kind, renderCrd(names) as unknown as ConstructorParameters<typeof ApiObject>[2]);
    }
  }
}
