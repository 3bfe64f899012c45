/**
 * Kubernetes Services on a single host: a `v1` Service of type NodePort (or LoadBalancer)
 * in dist/ whose selector matches a VM's template labels makes `virtops up` listen on
 * 0.0.0.0:<nodePort> and relay each connection to that VM's target port, through the host
 * port its launcher forwards to the guest (launcher/host-ports.ts) — what `virtctl expose`
 * gives on a cluster. The target port must be one the VM's pod interface declares (KubeVirt's
 * masquerade: only declared ports come in). Several matching VMs: each connection goes to
 * the first (by name) that is running. nodePort must be set: nothing allocates one here.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { hostPortFor, spliceSockets, type LauncherPortsInfo } from '../../launcher/host-ports.js';
import { callLauncher } from '../../launcher/server/client.js';
import type { KubeObject } from '../core/types.js';

export interface NodePortRoute {
  nodePort: number;
  /** `namespace/name` of the Service, for messages. */
  service: string;
  namespace: string;
  /** Matching VM names, sorted. */
  vms: string[];
  /** The guest port: targetPort, or port when targetPort is absent. */
  targetPort: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Pure: the routes the applied manifests ask for, and what is wrong with the rest (named by field, with the fix). */
export function nodePortRoutes(manifests: KubeObject[]): { routes: NodePortRoute[]; problems: string[] } {
  const routes: NodePortRoute[] = [];
  const problems: string[] = [];
  const vms = manifests.filter((m) => m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine');
  const taken = new Map<number, string>();
  for (const svc of manifests.filter((m) => m.apiVersion === 'v1' && m.kind === 'Service')) {
    const namespace = svc.metadata.namespace ?? 'default';
    const id = `Service ${namespace}/${svc.metadata.name}`;
    const spec = isObj((svc as Obj)['spec']) ? ((svc as Obj)['spec'] as Obj) : {};
    const type = spec['type'] ?? 'ClusterIP';
    if (type !== 'NodePort' && type !== 'LoadBalancer') continue; // ClusterIP: nothing to expose on a single host
    const selector = isObj(spec['selector']) ? (spec['selector'] as Record<string, string>) : {};
    if (Object.keys(selector).length === 0) {
      problems.push(`${id}: spec.selector is empty; nothing is exposed (fix: select the VM's template labels, e.g. kubevirt.io/vm: NAME)`);
      continue;
    }
    const matching = vms
      .filter((vm) => (vm.metadata.namespace ?? 'default') === namespace)
      .filter((vm) => {
        const tpl = (vm as Obj)['spec'] as Obj | undefined;
        const labels = ((tpl?.['template'] as Obj | undefined)?.['metadata'] as Obj | undefined)?.['labels'] as Record<string, string> | undefined;
        return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
      })
      .map((vm) => String(vm.metadata.name))
      .sort();
    if (matching.length === 0) problems.push(`${id}: no VM in namespace ${namespace} has template labels matching ${JSON.stringify(selector)} (fix: label spec.template.metadata.labels of the VM)`);
    const ports = Array.isArray(spec['ports']) ? (spec['ports'] as Obj[]) : [];
    ports.forEach((p, i) => {
      const path = `${id}: spec.ports[${i}]`;
      if ((p['protocol'] ?? 'TCP') !== 'TCP') return void problems.push(`${path}.protocol: only TCP is forwarded on a single host (fix: remove this port or use TCP)`);
      const nodePort = p['nodePort'];
      if (typeof nodePort !== 'number' || !Number.isInteger(nodePort) || nodePort < 1 || nodePort > 65535) {
        return void problems.push(`${path}.nodePort: not set; virtops up allocates none (fix: set nodePort, e.g. 30022)`);
      }
      const target = p['targetPort'] ?? p['port'];
      if (typeof target !== 'number') return void problems.push(`${path}.targetPort: "${String(target)}" is not a port number; named ports are not resolved here (fix: use the guest port number)`);
      const other = taken.get(nodePort);
      if (other) return void problems.push(`${path}.nodePort: ${nodePort} is also used by ${other} (fix: give each Service port its own nodePort)`);
      taken.set(nodePort, id);
      if (matching.length) routes.push({ nodePort, service: `${namespace}/${svc.metadata.name}`, namespace, vms: matching, targetPort: target });
    });
  }
  return { routes, problems };
}

export interface NodePortForwarderOptions {
  /** The launcher socket of a running VM, or undefined. */
  launcherSocket: (namespace: string, name: string) => string | undefined;
  log: Logger;
  /** Where node ports listen. */
  address?: string;
}

/** Listens on each route's node port and relays to the VM; `update` converges the listeners. */
export class NodePortForwarder {
  private readonly listeners = new Map<number, { server: Server; route: NodePortRoute }>();
  private lastProblems = '';

  constructor(private readonly opts: NodePortForwarderOptions) {}

  async update(manifests: KubeObject[]): Promise<void> {
    const { routes, problems } = nodePortRoutes(manifests);
    const text = problems.join('\n');
    if (text && text !== this.lastProblems) for (const p of problems) this.opts.log.warn({ problem: p }, 'a Service is not exposed');
    this.lastProblems = text;
    const wanted = new Map(routes.map((r) => [r.nodePort, r]));
    for (const [port, l] of this.listeners) {
      if (!wanted.has(port)) {
        this.listeners.delete(port);
        await new Promise((r) => l.server.close(r));
        this.opts.log.info({ nodePort: port, service: l.route.service }, 'node port closed');
      }
    }
    for (const [port, route] of wanted) {
      const existing = this.listeners.get(port);
      if (existing) {
        existing.route = route; // new VMs or target port: the next connection uses them
        continue;
      }
      const entry = { server: createServer((c) => this.relay(c, entry.route)), route };
      const ok = await new Promise<boolean>((resolve) => {
        entry.server.once('error', (err: Error) => {
          this.opts.log.warn({ nodePort: port, service: route.service, err: err.message }, 'cannot listen on the node port; the Service is not exposed');
          resolve(false);
        });
        entry.server.listen(port, this.opts.address ?? '0.0.0.0', () => resolve(true));
      });
      if (!ok) continue;
      this.listeners.set(port, entry);
      this.opts.log.info({ nodePort: port, service: route.service, vms: route.vms, targetPort: route.targetPort }, 'node port listening');
    }
  }

  private relay(client: Socket, route: NodePortRoute): void {
    client.pause();
    void this.connectTarget(route).then(
      (guest) => {
        spliceSockets(client, guest);
      },
      (err: Error) => {
        this.opts.log.warn({ nodePort: route.nodePort, service: route.service, err: err.message }, 'node port connection dropped');
        client.destroy();
      },
    );
  }

  private async connectTarget(route: NodePortRoute): Promise<Socket> {
    const reasons: string[] = [];
    for (const name of route.vms) {
      const socket = this.opts.launcherSocket(route.namespace, name);
      if (!socket) {
        reasons.push(`${name}: not running`);
        continue;
      }
      try {
        const info = await callLauncher<LauncherPortsInfo>(socket, 'GET', '/v1/info', undefined, 10_000);
        const host = hostPortFor(info.body, route.targetPort, `${route.namespace}/${name}`);
        return await new Promise<Socket>((resolve, reject) => {
          const s = createConnection({ host: '127.0.0.1', port: host });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
      } catch (err) {
        reasons.push(`${name}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no VM of ${route.service} takes the connection (${reasons.join('; ')})`);
  }

  async close(): Promise<void> {
    for (const l of this.listeners.values()) await new Promise((r) => l.server.close(r));
    this.listeners.clear();
  }
}
