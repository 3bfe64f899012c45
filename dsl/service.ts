/**
 * A Kubernetes Service exposing a VM, as `virtctl expose` creates one: its selector is the
 * VM's template labels (so it matches the VM's VMI and launcher Pod). On a single host
 * `virtops up` listens on 0.0.0.0:nodePort and relays to the VM's target port, which the
 * VM's pod interface must declare in `ports` (KubeVirt's masquerade: only declared ports
 * come in). On a cluster it is an ordinary Service.
 */
import { ApiObject, Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import type { VirtualMachine } from './virtual-machine.js';

export enum ServiceType {
  NODE_PORT = 'NodePort',
  LOAD_BALANCER = 'LoadBalancer',
}

export interface ServicePortProps {
  /** The Service's port. */
  readonly port: number;
  /** The guest port. @default - `port` */
  readonly targetPort?: number;
  /** The host port, in Kubernetes' default node port range 30000-32767 (virtops up allocates none). */
  readonly nodePort: number;
  /** @default - none (required by Kubernetes when there are several ports) */
  readonly name?: string;
}

export interface VirtualMachineServiceProps {
  /** The VM to expose; it needs `templateLabels` (the selector). */
  readonly vm: VirtualMachine;
  readonly ports: readonly ServicePortProps[];
  /** `metadata.name`. @default - the construct id */
  readonly name?: string;
  /** @default ServiceType.NODE_PORT */
  readonly type?: ServiceType;
}

const NODE_PORTS = { low: 30000, high: 32767 };

export class VirtualMachineService extends Construct {
  public readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, private readonly props: VirtualMachineServiceProps) {
    super(scope, id);
    const { vm } = props;
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: props.name ?? id, namespace: vm.namespace },
      spec: Lazy.any({
        produce: () => ({
          type: props.type ?? ServiceType.NODE_PORT,
          selector: { ...this.selector() },
          ports: props.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), protocol: 'TCP', port: p.port, targetPort: p.targetPort ?? p.port, nodePort: p.nodePort })),
        }),
      }),
    });
    this.node.addValidation({ validate: () => this.problems() });
  }

  private selector(): Record<string, string> {
    return this.props.vm.toManifest().spec.template.metadata?.labels ?? {};
  }

  private problems(): string[] {
    const path = this.node.path;
    const out: string[] = [];
    if (Object.keys(this.selector()).length === 0) {
      out.push(`${path}: VM ${this.props.vm.name} has no templateLabels to select it by (fix: give the VM templateLabels, e.g. { app: '${this.props.vm.name}' })`);
    }
    if (this.props.ports.length === 0) out.push(`${path}.ports: no ports (fix: add e.g. { port: 22, nodePort: 30022 })`);
    const seen = new Set<number>();
    this.props.ports.forEach((p, i) => {
      for (const [field, v] of [['port', p.port], ['targetPort', p.targetPort ?? p.port]] as const) {
        if (!Number.isInteger(v) || v < 1 || v > 65535) out.push(`${path}.ports[${i}].${field}: ${v} is not a port number (fix: 1-65535)`);
      }
      if (!Number.isInteger(p.nodePort) || p.nodePort < NODE_PORTS.low || p.nodePort > NODE_PORTS.high) {
        out.push(`${path}.ports[${i}].nodePort: ${p.nodePort} is outside Kubernetes' node port range (fix: ${NODE_PORTS.low}-${NODE_PORTS.high})`);
      }
      if (seen.has(p.nodePort)) out.push(`${path}.ports[${i}].nodePort: ${p.nodePort} is used twice (fix: one nodePort per port)`);
      seen.add(p.nodePort);
    });
    if (this.props.ports.length > 1 && this.props.ports.some((p) => !p.name)) out.push(`${path}.ports: several ports need a name each (fix: name them, e.g. 'ssh', 'http')`);
    return out;
  }
}
