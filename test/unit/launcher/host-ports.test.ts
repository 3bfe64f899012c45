import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { allocateForwards, forwardPortRange } from '../../../launcher/host-ports.js';

describe('host ports for forwarded guest ports', () => {
  it('picks below the ephemeral range, or above it when the range starts low', () => {
    expect(forwardPortRange('32768\t60999\n')).toEqual({ low: 10_000, high: 32767 });
    expect(forwardPortRange('1024 40000')).toEqual({ low: 40001, high: 65535 });
    expect(forwardPortRange(undefined)).toEqual({ low: 10_000, high: 32767 });
  });

  it('gives each declared port its own free loopback port, skipping one that is taken', async () => {
    const range = { low: 20_000, high: 20_099 };
    const { low } = range;
    // Occupy the first candidate the fake random source yields.
    const busy = createServer();
    await new Promise<void>((r, j) => { busy.once('error', j); busy.listen(low + 7, '127.0.0.1', () => r()); });
    const picks = [7, 7, 8, 9].map((i) => i / 100); // a fake random: indices in the range
    let n = 0;
    try {
      const f = await allocateForwards([{ port: 22, protocol: 'TCP', name: 'ssh' }, { port: 53, protocol: 'UDP' }], () => picks[n++]!, range);
      expect(f).toEqual([
        { guest: 22, host: low + 8, protocol: 'TCP', name: 'ssh' },
        { guest: 53, host: low + 9, protocol: 'UDP' },
      ]);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });
});
