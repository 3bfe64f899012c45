import { createServer, type Server } from 'node:net';
import { listenPortRange } from '../../../launcher/host-ports.js';

/**
 * Listening ports are picked below the kernel's ephemeral range (launcher/host-ports.ts owns
 * the range): a port in that range can be handed to a client connecting elsewhere while the
 * server is down (a restart then fails with EADDRINUSE), or to a client connecting to that
 * very port (a TCP self-connect: the client talks to itself and may wait for an answer for
 * good). Real API servers listen on fixed ports (6443) outside the range for the same reason.
 */
function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/**
 * `count` distinct free ports outside the ephemeral range (held open together while they
 * are picked, so none is picked twice). Random within the range, so concurrent test
 * environments rarely try the same port; one found taken is skipped.
 */
export async function freePorts(count: number): Promise<number[]> {
  const { low, high } = listenPortRange();
  const held: Server[] = [];
  try {
    for (let attempts = 0; held.length < count; attempts++) {
      if (attempts > 1000) throw new Error(`no ${count} free ports found in ${low}-${high} (127.0.0.1)`);
      const s = await listen(low + Math.floor(Math.random() * (high - low + 1)));
      if (s) held.push(s);
    }
    return held.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}
