import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { Network, VirtualMachineService } from '../../../dsl/index.js';
import { testChart, validVm } from './helpers.js';

describe('VirtualMachineService', () => {
  it('renders a NodePort Service selecting the VM by its template labels', () => {
    const chart = testChart({ namespace: 'prod' });
    const vm = validVm({ name: 'web', templateLabels: { app: 'web' } }, chart);
    vm.addInterface('default', Network.pod(), { ports: [{ port: 22 }, { port: 8080 }] });
    new VirtualMachineService(chart, 'web-public', { vm, ports: [{ name: 'ssh', port: 22, nodePort: 30022 }, { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] });
    const svc = Testing.synth(chart).find((o) => o.kind === 'Service');
    expect(svc).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web-public', namespace: 'prod' },
      spec: {
        type: 'NodePort',
        selector: { app: 'web' },
        ports: [
          { name: 'ssh', protocol: 'TCP', port: 22, targetPort: 22, nodePort: 30022 },
          { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 },
        ],
      },
    });
  });

  it('names what is missing, with the fix', () => {
    const chart = testChart();
    const vm = validVm({ name: 'web' }, chart);
    const svc = new VirtualMachineService(chart, 'web-public', { vm, ports: [{ port: 22, nodePort: 22 }, { port: 80, nodePort: 30080 }] });
    expect(svc.node.validate()).toEqual([
      "test/web-public: VM web has no templateLabels to select it by (fix: give the VM templateLabels, e.g. { app: 'web' })",
      "test/web-public.ports[0].nodePort: 22 is outside Kubernetes' node port range (fix: 30000-32767)",
      "test/web-public.ports: several ports need a name each (fix: name them, e.g. 'ssh', 'http')",
    ]);
  });
});
