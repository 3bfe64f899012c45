/**
 * KubeRest's API discovery (cli/kube-rest.ts), shared by the daemons' HttpKubeClient and
 * `virtops diff`: one request per group version, a missing kind looked up again once the
 * answer is older than a second (a CRD installed since), and the paths it yields. The "API
 * server" is a real HTTP server whose served kinds the test changes.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeRest, resourcePath } from '../../../cli/kube-rest.js';
import { localKubeConfig } from '../../helpers/fake-kube.js';

describe('resourcePath', () => {
  const pods = { name: 'pods', kind: 'Pod', namespaced: true };
  const nodes = { name: 'nodes', kind: 'Node', namespaced: false };
  it('addresses objects and collections, namespaced or not', () => {
    expect(resourcePath('v1', pods, 'lab', 'a b')).toBe('/api/v1/namespaces/lab/pods/a%20b');
    expect(resourcePath('v1', pods)).toBe('/api/v1/pods');
    expect(resourcePath('v1', nodes, 'lab', 'n1')).toBe('/api/v1/nodes/n1');
    expect(resourcePath('kubevirt.io/v1', { name: 'virtualmachines', kind: 'VirtualMachine', namespaced: true }, 'lab')).toBe('/apis/kubevirt.io/v1/namespaces/lab/virtualmachines');
  });
});

describe('KubeRest.resource', () => {
  let server: Server;
  let port = 0;
  const served: { name: string; kind: string; namespaced: boolean }[] = [{ name: 'virtualmachines', kind: 'VirtualMachine', namespaced: true }, { name: 'virtualmachines/status', kind: 'VirtualMachine', namespaced: true }];
  const asked: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      if (req.url === '/apis/kubevirt.io/v1') return void res.end(JSON.stringify({ kind: 'APIResourceList', resources: served }));
      if (req.url === '/apis/broken.example/v1') {
        res.statusCode = 500;
        return void res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd is unhappy' }));
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: 'Status', code: 404, message: 'the server could not find the requested resource' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('asks once per group version, skips subresources, and looks a missing kind up again after a second', async () => {
    const rest = KubeRest.live(localKubeConfig(port));
    expect(await rest.resource('kubevirt.io/v1', 'VirtualMachine')).toEqual(served[0]);
    expect(await rest.resource('kubevirt.io/v1', 'VirtualMachine')).toEqual(served[0]);
    expect(asked).toEqual(['/apis/kubevirt.io/v1']);
    // Not served (yet): no second request within the second.
    expect(await rest.resource('kubevirt.io/v1', 'VirtualMachineInstance')).toBeUndefined();
    expect(asked).toHaveLength(1);
    served.push({ name: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await rest.resource('kubevirt.io/v1', 'VirtualMachineInstance')).toEqual(served[2]);
    expect(asked).toHaveLength(2);
    // A group version the server does not serve at all.
    expect(await rest.resource('cdi.kubevirt.io/v1beta1', 'DataVolume')).toBeUndefined();
  });

  it('a failed look-up fails every caller waiting on it, and the next call asks again', async () => {
    const rest = KubeRest.live(localKubeConfig(port));
    const before = asked.length;
    const both = await Promise.allSettled([rest.resource('broken.example/v1', 'Thing'), rest.resource('broken.example/v1', 'Thing')]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((both[1] as PromiseRejectedResult).reason)).toMatch(/etcd is unhappy/);
    await expect(rest.resource('broken.example/v1', 'Thing')).rejects.toThrow(/etcd is unhappy/);
    expect(asked.length - before).toBe(2);
  });
});
