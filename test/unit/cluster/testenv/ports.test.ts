/** Test-environment ports are picked outside the kernel's ephemeral range (reconciler/cluster/testenv/ports.ts). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../../../reconciler/cluster/testenv/ports.js';

describe('freePorts', () => {
  it('returns distinct ports none of which a client could be handed as its source port', async () => {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];
    const ports = await freePorts(8);
    expect(new Set(ports).size).toBe(8);
    for (const p of ports) expect(p < low || p > high).toBe(true);
  });
});
