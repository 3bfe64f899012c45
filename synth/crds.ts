/**
 * CustomResourceDefinitions for kubevirt.io/v1 VirtualMachine and VirtualMachineInstance, with
 * structural schemas derived at synth time from the vendored KubeVirt OpenAPI, so a cluster
 * without KubeVirt accepts virtops' manifests and prunes/validates them like KubeVirt would.
 */
import { ApiObject, Chart, type ChartProps } from 'cdk8s';
import type { Construct } from 'constructs';
import { structuralSchema, type JsonSchema } from '../api/structural-schema.js';
import { GROUP } from '../api/kubevirt.js';

export interface CrdNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  definition: string;
  /** Extra printer columns besides Age/Status/Ready. */
  columns: PrinterColumn[];
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'date' | 'boolean' | 'integer';
  jsonPath: string;
  priority?: number;
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

/** The CRD as plain JSON (pure). */
export function renderCrd(names: CrdNames): Record<string, unknown> {
  const schema: JsonSchema = structuralSchema(names.definition);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'virtops' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        categories: ['all'],
      },
      versions: [{
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          { name: 'Status', type: 'string', jsonPath: '.status.printableStatus' },
          { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
          ...names.columns,
        ],
        schema: { openAPIV3Schema: schema },
      }],
    },
  };
}

export class CrdChart extends Chart {
  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, props);
    for (const names of [VM_CRD, VMI_CRD]) {
      new ApiObject(this, names.kind, renderCrd(names) as unknown as ConstructorParameters<typeof ApiObject>[2]);
    }
  }
}
