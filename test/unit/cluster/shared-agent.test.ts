/**
 * API calls reuse connections (reconciler/cluster/kube.ts, withSharedAgent): client-node
 * makes a new agent for every request, so without the shared keep-alive agent each call
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
      const ns = await client.core.readNamespace({ name: `ns${i}` });
      expect(ns.metadata?.name).toBe(`ns${i}`);
    }
    expect(requests).toBe(10);
    expect(connections).toBe(1);
  });
});
