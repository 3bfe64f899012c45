/** Test-environment ports are picked outside the kernel's ephemeral range (reconciler/cluster/testenv/ports.ts). */
import { describe, expect, it } from 'vitest';
import { ephemeralPortRange, freePorts, listenPortRange } from '../../../../reconciler/cluster/testenv/ports.js';

describe('freePorts', () => {
  it('returns distinct ports none of which a client could be handed as its source port', async () => {
    const eph = ephemeralPortRange();
    const ports = await freePorts(8);
    expect(new Set(ports).size).toBe(8);
    for (const p of ports) expect(p < eph.low || p > eph.high).toBe(true);
  });

  it('picks below the ephemeral range, or above it when it starts too low', () => {
    expect(listenPortRange({ low: 32768, high: 60999 })).toEqual({ low: 10000, high: 32767 });
    expect(listenPortRange({ low: 1024, high: 50000 })).toEqual({ low: 50001, high: 65535 });
    expect(ephemeralPortRange('/nonexistent')).toEqual({ low: 32768, high: 60999 });
  });
});
