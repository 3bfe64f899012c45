/**
 * API calls reuse connections (reconciler/cluster/kube.ts, withSharedAgent): client-node's
 * KubeConfig makes a new agent for every request, so without the shared keep-alive agent each call
 * opened a connection of its own (a TLS handshake per call against a real API server). The
 * "API server" is a real HTTP server that counts the connections it accepts.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpKubeClient } from '../../../reconciler/cluster/kube.js';
import { localKubeConfig } from '../../helpers/fake-kube.js';

describe('API calls share keep-alive connections', () => {
  let server: Server;
  let port = 0;
  let connections = 0;
  let requests = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      res.setHeader('content-type', 'application/json');
      // API discovery: which resource serves the kind (HttpKubeClient asks once per group version).
      if (req.url === '/api/v1') return void res.end(JSON.stringify({ kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'namespaces', kind: 'Namespace', namespaced: false, singularName: 'namespace', verbs: ['get'] }] }));
      const name = /\/namespaces\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? 'default';
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, uid: `uid-${name}` } }));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('ten calls in a row use one connection', async () => {
    const kc = localKubeConfig(port);
    const client = new HttpKubeClient(kc);
    for (let i = 0; i < 10; i++) {
      const ns = await client.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns${i}` } });
      expect(ns?.metadata?.name).toBe(`ns${i}`);
    }
    expect(requests).toBe(11); // discovery, then ten reads
    expect(connections).toBe(1);
  });
});
