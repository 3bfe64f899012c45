import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../../reconciler/core/types.js';
import { nodePortRoutes } from '../../../reconciler/standalone/node-ports.js';

const vm = (name: string, labels: Record<string, string>, namespace = 'default') =>
  ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace }, spec: { template: { metadata: { labels }, spec: {} } } }) as unknown as KubeObject;
const svc = (name: string, spec: Record<string, unknown>, namespace = 'default') =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec }) as unknown as KubeObject;

describe('NodePort Services on a single host', () => {
  it('routes each node port to the VMs whose template labels match, in the same namespace', () => {
    const r = nodePortRoutes([
      vm('web-b', { app: 'web' }),
      vm('web-a', { app: 'web', tier: 'x' }),
      vm('db', { app: 'db' }),
      vm('web-other-ns', { app: 'web' }, 'prod'),
      svc('web', { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }, { port: 22, nodePort: 30022 }] }),
      svc('internal', { selector: { app: 'db' }, ports: [{ port: 5432 }] }), // ClusterIP: nothing on the host
    ]);
    expect(r.problems).toEqual([]);
    expect(r.routes).toEqual([
      { nodePort: 30080, service: 'default/web', namespace: 'default', vms: ['web-a', 'web-b'], targetPort: 8080 },
      { nodePort: 30022, service: 'default/web', namespace: 'default', vms: ['web-a', 'web-b'], targetPort: 22 },
    ]);
  });

  it('names what it cannot expose, with the fix', () => {
    const r = nodePortRoutes([
      vm('web', { app: 'web' }),
      svc('a', { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80 }, { port: 81, targetPort: 'http', nodePort: 30081 }, { port: 53, protocol: 'UDP', nodePort: 30053 }] }),
      svc('b', { type: 'LoadBalancer', selector: { app: 'nope' }, ports: [{ port: 80, nodePort: 30080 }] }),
      svc('c', { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, nodePort: 30080 }] }),
      svc('d', { type: 'NodePort', ports: [{ port: 80, nodePort: 30090 }] }),
    ]);
    expect(r.problems).toEqual([
      'Service default/a: spec.ports[0].nodePort: not set; virtops up allocates none (fix: set nodePort, e.g. 30022)',
      'Service default/a: spec.ports[1].targetPort: "http" is not a port number; named ports are not resolved here (fix: use the guest port number)',
      'Service default/a: spec.ports[2].protocol: only TCP is forwarded on a single host (fix: remove this port or use TCP)',
      'Service default/b: no VM in namespace default has template labels matching {"app":"nope"} (fix: label spec.template.metadata.labels of the VM)',
      'Service default/c: spec.ports[0].nodePort: 30080 is also used by Service default/b (fix: give each Service port its own nodePort)',
      "Service default/d: spec.selector is empty; nothing is exposed (fix: select the VM's template labels, e.g. kubevirt.io/vm: NAME)",
    ]);
    expect(r.routes).toEqual([]);
  });
});
