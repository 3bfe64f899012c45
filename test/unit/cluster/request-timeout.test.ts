/**
 * A request to an API server that accepts the connection and never answers is given up
 * (cli/kube-rest.ts, the deadline HttpKubeClient gives KubeRest) instead of holding its reconcile for good.
 * The "server" is a real TCP listener that reads and never writes.
 */
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpKubeClient, errorMessage } from '../../../reconciler/cluster/kube.js';
import { localKubeConfig } from '../../helpers/fake-kube.js';

describe('API requests have a deadline', () => {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('a silent server makes the request fail with a message that says so', async () => {
    const kc = localKubeConfig(port);
    const client = new HttpKubeClient(kc, { requestTimeoutMs: 300 });
    const err = await client.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeDefined();
    expect(errorMessage(err)).toMatch(/did not answer/);
    expect(sockets.length).toBeGreaterThan(0);
  });
});
