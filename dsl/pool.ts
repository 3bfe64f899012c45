/**
 * `VirtualMachinePool` (`pool.kubevirt.io/v1beta1`): `replicas` VMs from one template, named
 * `<pool>-<n>`, scaled from git.
 *
 *   const web = new VirtualMachinePool(chart, 'web', {
 *     replicas: 3,
 *     template: { memory: { guest: Size.mebibytes(512) } },
 *   });
 *   web.template.addDisk('root', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'));
 *
 * `template` is a VirtualMachine (every prop and method of one: disks, interfaces, labels)
 * that is never synthesized itself: the pool's manifest carries it as
 * spec.virtualMachineTemplate, and up (single host) or the pool controller (cluster) makes
 * the VMs from it. The pool's VMs and their template carry the label
 * `kubevirt.io/vmpool: <pool name>`, which is the default selector.
 *
 * Validation (at synth) runs the shared manifest validator: KubeVirt's OpenAPI for the pool,
 * the selector against the template's labels, and the template's VM rules.
 */
import { ApiObject, App, Chart, Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import { POOL_API_VERSION, POOL_KIND, type VirtualMachinePool as PoolManifest, type VirtualMachinePoolSpec } from '../api/pool.js';
import { validateManifest } from '../api/validate.js';
import { formatIssue, schemaIssues } from './validate.js';
import { VirtualMachine, type VirtualMachineProps } from './virtual-machine.js';

/** The label every pool VM carries, as KubeVirt's examples name it. */
export const POOL_LABEL = 'kubevirt.io/vmpool';

/** Which VMs go first when `replicas` goes down (KubeVirt's scale-in sortPolicy). */
export enum PoolScaleInOrder {
  /** KubeVirt's default; virtops draws it as highest index first. */
  RANDOM = 'Random',
  /** Highest index first. */
  DESCENDING = 'DescendingOrder',
  /** Lowest index first. */
  ASCENDING = 'AscendingOrder',
  NEWEST = 'Newest',
  OLDEST = 'Oldest',
}

export interface VirtualMachinePoolProps {
  /** `metadata.name` of the pool; its VMs are `<name>-<n>`. @default - the construct id */
  readonly name?: string;
  /** @default - the chart's namespace, else 'default' */
  readonly namespace?: string;
  /** Labels of the pool object. @default - none */
  readonly labels?: Readonly<Record<string, string>>;
  /** @default - none */
  readonly annotations?: Readonly<Record<string, string>>;
  /** How many VMs. @default 1 */
  readonly replicas?: number;
  /**
   * The VM every replica is (name and namespace come from the pool). Its `labels` and
   * `templateLabels` get `kubevirt.io/vmpool: <pool>` added.
   */
  readonly template: Omit<VirtualMachineProps, 'name' | 'namespace'>;
  /** Labels that select the pool's VMs; they must be among the template's labels. @default { 'kubevirt.io/vmpool': <pool name> } */
  readonly selector?: Readonly<Record<string, string>>;
  /**
   * Give each VM its own Secret (cloud-init secretRef/networkDataSecretRef, secret volumes)
   * by appending `-<n>` to the name: `userdata` becomes `userdata-0`, `userdata-1`...
   * @default false
   */
  readonly appendIndexToSecretRefs?: boolean;
  /** The same for ConfigMap volumes. @default false */
  readonly appendIndexToConfigMapRefs?: boolean;
  /** @default PoolScaleInOrder.RANDOM (highest index first) */
  readonly scaleInOrder?: PoolScaleInOrder;
  /** No scaling while paused. @default false */
  readonly paused?: boolean;
}

const POOL_SYMBOL = Symbol.for('virtops.dsl.VirtualMachinePool');

export class VirtualMachinePool extends Construct {
  /** True when `x` is a VirtualMachinePool (works across copies of this module). */
  public static isVirtualMachinePool(x: unknown): x is VirtualMachinePool {
    return x !== null && typeof x === 'object' && POOL_SYMBOL in x;
  }

  public readonly name: string;
  public readonly namespace: string;
  /** The VM each replica is: add disks, interfaces, labels to it. Not synthesized on its own. */
  public readonly template: VirtualMachine;
  /** The low-level object: escape hatch for JSON patches. */
  public readonly apiObject: ApiObject;

  public constructor(scope: Construct, id: string, private readonly props: VirtualMachinePoolProps) {
    super(scope, id);
    Object.defineProperty(this, POOL_SYMBOL, { value: true });
    this.name = props.name ?? id;
    this.namespace = props.namespace ?? Chart.of(this).namespace ?? 'default';
    const replicas = props.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new Error(`${this.node.path}: replicas: must be a whole number of 0 or more, got ${String(props.replicas)}. Fix: set replicas to e.g. 3`);
    }
    const poolLabel = { [POOL_LABEL]: this.name };
    // Lives in an app of its own: synth never sees it as a VM (no VM, no launcher Pod of its own).
    const offTree = new Chart(new App(), 'pool-template', { namespace: this.namespace });
    this.template = new VirtualMachine(offTree, this.name, {
      ...props.template,
      name: this.name,
      namespace: this.namespace,
      labels: { ...poolLabel, ...(props.template.labels ?? {}) },
      templateLabels: { ...poolLabel, ...(props.template.templateLabels ?? {}) },
    });
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: POOL_API_VERSION,
      kind: POOL_KIND,
      metadata: {
        name: this.name,
        namespace: this.namespace,
        ...(props.labels ? { labels: { ...props.labels } } : {}),
        ...(props.annotations ? { annotations: { ...props.annotations } } : {}),
      },
      spec: Lazy.any({ produce: () => this.renderSpec() }),
    });
    this.node.addValidation({
      validate: () => [
        // The template's own checks (cloud-init secrets, disks...), named at the pool's path.
        ...this.template.node.validate().map((m) => m.replace(this.template.node.path, `${this.node.path}/template`)),
        ...schemaIssues(validateManifest(this.toManifest()), []).map((issue) => formatIssue(this.node.path, issue)),
      ],
    });
  }

  /** The pool exactly as synthesized (JSON patches applied). */
  public toManifest(): PoolManifest {
    return this.apiObject.toJson() as PoolManifest;
  }

  private renderSpec(): VirtualMachinePoolSpec {
    const p = this.props;
    const vm = this.template.toManifest();
    const nameGeneration = {
      ...(p.appendIndexToSecretRefs !== undefined ? { appendIndexToSecretRefs: p.appendIndexToSecretRefs } : {}),
      ...(p.appendIndexToConfigMapRefs !== undefined ? { appendIndexToConfigMapRefs: p.appendIndexToConfigMapRefs } : {}),
    };
    return {
      replicas: p.replicas ?? 1,
      selector: { matchLabels: { ...(p.selector ?? { [POOL_LABEL]: this.name }) } },
      virtualMachineTemplate: {
        metadata: {
          ...(vm.metadata.labels && Object.keys(vm.metadata.labels).length ? { labels: { ...vm.metadata.labels } } : {}),
          ...(vm.metadata.annotations && Object.keys(vm.metadata.annotations).length ? { annotations: { ...vm.metadata.annotations } } : {}),
        },
        spec: vm.spec,
      },
      ...(Object.keys(nameGeneration).length ? { nameGeneration } : {}),
      ...(p.scaleInOrder ? { scaleInStrategy: { proactive: { selectionPolicy: { sortPolicy: p.scaleInOrder } } } } : {}),
      ...(p.paused ? { paused: true } : {}),
    };
  }
}
