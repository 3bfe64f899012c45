import { createServer, connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { effectiveUid, guardPeers, peerVerdict } from '../../../launcher/server/peer.js';

describe('peerVerdict: only our uid or root', () => {
  it.each([
    ['our own uid', { pid: 10, uid: 1000 }, 1000, true],
    ['root', { pid: 10, uid: 0 }, 1000, true],
    ['another uid', { pid: 10, uid: 65534 }, 1000, false],
    ['another uid, we are root', { pid: 10, uid: 65534 }, 0, false],
    ['a peer gone before /proc was read', { pid: 10 }, 0, false],
    ['no pid (another pid namespace)', { pid: 0, uid: 0 }, 0, false],
    ['no SO_PEERCRED at all', undefined, 0, false],
  ])('%s', (_name, peer, own, ok) => {
    const v = peerVerdict(peer, own);
    expect(v.ok).toBe(ok);
    if (!v.ok) expect(v.reason.length).toBeGreaterThan(10);
  });

  it('reads the effective uid from /proc/<pid>/status', () => {
    expect(effectiveUid('Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n')).toBe(0);
    expect(effectiveUid('Name:\tx\n')).toBeUndefined();
  });
});

describe('guardPeers on a real unix socket (same uid)', () => {
  it('lets a peer of our own uid through', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vo-peer-'));
    const path = join(dir, 's');
    const warnings: string[] = [];
    const server = createServer((s) => s.end('hello'));
    guardPeers(server, path, { warn: (_o, m) => void warnings.push(m) });
    await new Promise<void>((r) => server.listen(path, r));
    const got = await new Promise<string>((resolve, reject) => {
      let text = '';
      connect(path).on('data', (b) => (text += b.toString())).on('end', () => resolve(text)).on('error', reject);
    });
    expect(got).toBe('hello');
    expect(warnings).toEqual([]);
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
});
