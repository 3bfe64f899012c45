/**
 * The launcher end to end: the real `virtops launcher-monitor` child, real libvirtd, QEMU
 * under TCG, the real test guest from a real local registry. One booted guest serves most
 * assertions (TCG on shared cores is slow); the destroy and crash paths use domains that
 * only need to reach "running".
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry, pushTestGuestImages, type LocalRegistry } from '../../helpers/registry.js';
import { launcherEvents } from '../../../launcher/server/client.js';
import {
  type MonitorHandle, domainListed, domstate, ephemeralFiles, exists, forceCleanup, pidAlive, processesMentioning, runCleanupOnly, killThenCleanUp,
  serialText, startMonitor, testGuestVmi, virsh, waitFor, waitForSerial, waitForSocket,
} from './harness.js';

let registry: LocalRegistry;
let image: string;
let imageStore: string;

beforeAll(async () => {
  registry = await startRegistry();
  image = (await pushTestGuestImages(registry)).kernelBootImage;
  imageStore = await mkdtemp(join(tmpdir(), 'vo-images-'));
});

afterAll(async () => {
  await registry?.stop();
  if (imageStore) await rm(imageStore, { recursive: true, force: true });
});

async function assertNothingLeft(m: MonitorHandle): Promise<void> {
  expect(await domainListed(m.domain)).toBe(false);
  expect(await ephemeralFiles(m)).toEqual([]);
  expect(await exists(m.socket)).toBe(false);
  expect(await processesMentioning(m.uid)).toEqual([]);
}

describe('launcher with a booted test guest', () => {
  let m: MonitorHandle;
  const marker = randomBytes(6).toString('hex');
  let vmi: ReturnType<typeof testGuestVmi>;

  beforeAll(async () => {
    m = await startMonitor({ imageStore, insecureRegistry: registry.host, gracePeriodSeconds: 60 });
    await waitForSocket(m);
    vmi = testGuestVmi(m, image, marker);
  });
  afterAll(async () => {
    await forceCleanup(m);
  });

  it('syncs the VMI: domain defined and running, guest boots with its cloud-init marker and disks', async () => {
    const res = await m.call('PUT', '/v1/vmi', vmi);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ result: 'created', domain: m.domain, state: 'Running', phase: 'Running' });
    expect(await domstate(m.domain)).toBe('running');
    const info = await m.call('GET', '/v1/info');
    expect(info.body).toMatchObject({ phase: 'Running', state: 'Running', paused: false, emulation: 'tcg', libvirt: 'connected' });
    await waitForSerial(m, /VIRTOPS-GUEST-BOOTED/);
    await waitForSerial(m, new RegExp(`VIRTOPS-USERDATA ${marker}`));
    const disks = await waitForSerial(m, /VIRTOPS-DISKS(.*)/);
    expect(disks[1]).toMatch(/vd[a-z]=\d+/);
    expect(disks[1]).toContain(`=${64 * 1024 * 1024}`); // the emptyDisk
    expect((await ephemeralFiles(m)).length).toBeGreaterThan(0); // the cloud-init ISO
  });

  it('a second identical sync is unchanged and does not redefine', async () => {
    const before = await virsh('domid', m.domain);
    const res = await m.call('PUT', '/v1/vmi', vmi);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ result: 'unchanged', state: 'Running' });
    expect((await virsh('domid', m.domain)).stdout).toBe(before.stdout);
    expect(m.logs.filter((l) => l['msg'] === 'sync: domain defined and started')).toHaveLength(1);
  });

  it('a changed spec while running reports restart-required and leaves the domain alone', async () => {
    const changed = testGuestVmi(m, image, marker, { memory: '160Mi' });
    const res = await m.call('PUT', '/v1/vmi', changed);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ result: 'restart-required', reason: 'RestartRequired' });
    expect(await domstate(m.domain)).toBe('running');
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ restartRequired: true, phase: 'Running' });
    expect((await m.call('PUT', '/v1/vmi', vmi)).body).toMatchObject({ result: 'unchanged' });
  });

  it('pauses and unpauses', async () => {
    await waitForSerial(m, /VIRTOPS-GUEST-READY/);
    expect((await m.call('POST', '/v1/pause')).body).toMatchObject({ state: 'Paused' });
    expect(await domstate(m.domain)).toBe('paused');
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ phase: 'Running', paused: true, state: 'Paused' });
    expect((await m.call('POST', '/v1/unpause')).body).toMatchObject({ state: 'Running' });
    expect(await domstate(m.domain)).toBe('running');
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ paused: false });
  });

  it('shuts down gracefully within the grace period and releases volumes', async () => {
    const started = Date.now();
    const res = await m.call('POST', '/v1/shutdown', { gracePeriodSeconds: 60 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ result: 'shutdown' }); // not 'destroyed'
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await serialText(m)).toContain('VIRTOPS-GUEST-SHUTDOWN');
    expect(await domainListed(m.domain)).toBe(false);
    expect(await ephemeralFiles(m)).toEqual([]);
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ phase: 'Succeeded', state: 'Absent' });
    // The VMI has finished; the same launcher does not start it again.
    expect((await m.call('PUT', '/v1/vmi', vmi)).status).toBe(409);
  });

  it('exits 0 on SIGTERM and leaves nothing behind', async () => {
    m.proc.kill('SIGTERM');
    expect(await m.exited).toEqual({ code: 0, signal: null });
    await assertNothingLeft(m);
  });
});

describe('launcher: rejected VMIs and the destroy path', () => {
  let m: MonitorHandle;
  beforeAll(async () => {
    m = await startMonitor({ imageStore, insecureRegistry: registry.host, gracePeriodSeconds: 5 });
    await waitForSocket(m);
  });
  afterAll(async () => {
    await forceCleanup(m);
  });

  it('rejects bad bodies and invalid VMIs with 400 and a field path, defining nothing', async () => {
    const notJson = await m.call('PUT', '/v1/vmi');
    expect(notJson.status).toBe(400);
    const wrongName = await m.call('PUT', '/v1/vmi', { ...testGuestVmi(m, image, 'x'), metadata: { name: 'someone-else' } });
    expect(wrongName.status).toBe(400);
    expect(wrongName.body).toMatchObject({ fieldErrors: [expect.objectContaining({ path: 'metadata.name' })] });

    const bad = testGuestVmi(m, image, 'x') as { spec: { domain: { devices: { disks: Record<string, unknown>[] } } } };
    bad.spec.domain.devices.disks[1] = { name: 'scratch', disk: { bus: 'floppy' } };
    const res = await m.call<{ fieldErrors: { path: string }[] }>('PUT', '/v1/vmi', bad);
    expect(res.status).toBe(400);
    expect(res.body.fieldErrors.map((e) => e.path)).toContain('spec.domain.devices.disks[1].disk.bus');

    const noVolume = testGuestVmi(m, image, 'x');
    noVolume.spec.volumes = noVolume.spec.volumes.slice(0, 1); // disk "scratch" has no volume
    const res2 = await m.call<{ fieldErrors: { path: string }[]; error: string }>('PUT', '/v1/vmi', noVolume);
    expect(res2.status, JSON.stringify(res2.body)).toBe(400);
    expect(res2.body.error).toMatch(/scratch/);

    expect(await domainListed(m.domain)).toBe(false);
    expect(await ephemeralFiles(m)).toEqual([]);
  });

  it('a missing image fails the VMI with ErrImagePull and defines nothing', async () => {
    const res = await m.call('PUT', '/v1/vmi', testGuestVmi(m, `${registry.host}/virtops/does-not-exist:latest`, 'x'));
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ reason: 'ErrImagePull' });
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ phase: 'Failed', reason: 'ErrImagePull' });
    expect(await domainListed(m.domain)).toBe(false);
  });

  it('kill destroys the domain at once, reports it on the event stream and releases volumes', async () => {
    const res = await m.call('PUT', '/v1/vmi', testGuestVmi(m, image, 'kill'));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const ac = new AbortController();
    const seen: Record<string, unknown>[] = [];
    const reading = (async () => {
      for await (const ev of launcherEvents(m.socket, ac.signal)) {
        seen.push(ev);
        if (ev['kind'] === 'state' && ev['to'] === 'Absent') ac.abort();
      }
    })();
    await waitFor('events snapshot', () => seen.length > 0);
    expect(seen[0]).toMatchObject({ kind: 'snapshot', info: { state: 'Running' } });
    const kill = await m.call('POST', '/v1/kill');
    expect(kill.body).toMatchObject({ result: 'destroyed' });
    await reading;
    expect(seen.filter((e) => e['kind'] === 'state').map((e) => e['to'])).toContain('Absent');
    expect(await domainListed(m.domain)).toBe(false);
    expect(await ephemeralFiles(m)).toEqual([]);
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ phase: 'Succeeded' });
    m.proc.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    await assertNothingLeft(m);
  });
});

describe('launcher-monitor after a SIGKILL (one process per VM)', () => {
  let m: MonitorHandle;
  afterAll(async () => {
    await forceCleanup(m);
  });

  it('runs the launcher in its own process; after a SIGKILL, --cleanup-only with the same flags stops the domain, undefines it, releases volumes and exits 0', async () => {
    m = await startMonitor({ imageStore, insecureRegistry: registry.host, gracePeriodSeconds: 3 });
    await waitForSocket(m);
    const res = await m.call('PUT', '/v1/vmi', testGuestVmi(m, image, 'crash'));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect((await ephemeralFiles(m)).length).toBeGreaterThan(0);
    // One Node process for the VM: no launcher child besides it.
    const launchers: number[] = [];
    for (const p of await processesMentioning(m.uid)) if (p !== m.proc.pid && (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0').includes('--uid')) launchers.push(p);
    expect(launchers, 'launcher processes besides the launcher-monitor').toEqual([]);
    await killThenCleanUp(m);
    await assertNothingLeft(m);
    // Idempotent: a retried cleanup finds nothing to do and succeeds.
    expect((await runCleanupOnly(m)).code).toBe(0);
  });
});

/** A unix-socket proxy at `sock` to the real libvirtd: libvirtd as the launcher sees it, made to come and go. */
async function libvirtProxy(sock: string): Promise<{ server: import('node:net').Server; dropConnections: () => void }> {
  const { createServer, connect } = await import('node:net');
  const conns = new Set<import('node:net').Socket>();
  const server = createServer((c) => {
    const up = connect('/run/libvirt/libvirt-sock');
    conns.add(c);
    c.pipe(up).pipe(c);
    const drop = () => { c.destroy(); up.destroy(); conns.delete(c); };
    c.on('error', drop); up.on('error', drop); c.on('close', drop); up.on('close', drop);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { server, dropConnections: () => { for (const c of conns) c.destroy(); } };
}

describe('launcher when libvirtd is unreachable', () => {
  let m: MonitorHandle | undefined;
  let proxy: import('node:net').Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    proxy?.close();
    await forceCleanup(m);
    if (dir) await rm(dir, { recursive: true, force: true });
    m = proxy = dir = undefined;
  });
  /** The test's monitor, for afterEach to clean up after. */
  const handles = (h: MonitorHandle): void => void (m = h);

  it('keeps serving, retries with backoff, connects once the socket appears, and survives a dropped connection', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vo-proxy-'));
    const sock = join(dir, 'libvirt-sock');
    const m = await startMonitor({ imageStore, libvirtUri: `qemu:///system?socket=${sock}`, gracePeriodSeconds: 3 });
    handles(m);
    await waitForSocket(m);
    await waitFor('retry log lines', () => m.logs.filter((l) => l['msg'] === 'libvirt unavailable; retrying').length >= 2, 20_000);
    const retry = m.logs.find((l) => l['msg'] === 'libvirt unavailable; retrying')!;
    expect(String(retry['err'])).toMatch(/libvirt-sock|No such file/);
    expect((await m.call('GET', '/healthz')).status).toBe(200);
    expect((await m.call('GET', '/v1/info')).body).toMatchObject({ libvirt: expect.stringMatching(/connecting|disconnected/) });
    const unavailable = await m.call('PUT', '/v1/vmi', testGuestVmi(m, image, 'x'));
    expect(unavailable.status).toBe(503);

    // A unix-socket proxy to the real libvirtd stands in for libvirtd coming up (and going away).
    const up = await libvirtProxy(sock);
    proxy = up.server;
    await waitFor('libvirt connected', async () => (await m.call<{ libvirt: string }>('GET', '/v1/info')).body.libvirt === 'connected', 30_000);

    // libvirtd "restarts": every connection drops; the launcher notices and reconnects.
    const mark = m.logs.length;
    up.dropConnections();
    const libvirtTransitions = () =>
      m.logs.slice(mark).map((l) => l['transition'] as { kind?: string; detail?: string } | undefined).filter((t) => t?.kind === 'libvirt').map((t) => t!.detail!);
    await waitFor('disconnect noticed, then reconnected', () => {
      const t = libvirtTransitions();
      const lost = t.findIndex((d) => d.startsWith('disconnected'));
      return lost >= 0 && t.slice(lost).includes('connected');
    }, 30_000);
    await waitFor('connected again', async () => (await m.call<{ libvirt: string }>('GET', '/v1/info')).body.libvirt === 'connected', 30_000);
    expect(m.proc.exitCode).toBeNull();
    m.proc.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    proxy.close();
    await assertNothingLeft(m);
  });

  it('a launcher that had a domain exits as failed and its monitor removes the domain once libvirtd is back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vo-proxy-'));
    const sock = join(dir, 'libvirt-sock');
    let up = await libvirtProxy(sock);
    proxy = up.server;
    const h = await startMonitor({ imageStore, insecureRegistry: registry.host, libvirtUri: `qemu:///system?socket=${sock}`, gracePeriodSeconds: 2 });
    handles(h);
    await waitForSocket(h);
    await waitFor('libvirt connected', async () => (await h.call<{ libvirt: string }>('GET', '/v1/info')).body.libvirt === 'connected', 30_000);
    const res = await h.call('PUT', '/v1/vmi', testGuestVmi(h, image, 'away'));
    expect(res.status, JSON.stringify(res.body)).toBe(201);

    // libvirtd goes away: the proxy stops accepting and every connection drops.
    const closed = new Promise<void>((r) => up.server.close(() => r()));
    up.dropConnections();
    await closed;
    await waitFor('launcher sees libvirt gone', async () => (await h.call<{ libvirt: string }>('GET', '/v1/info')).body.libvirt !== 'connected', 30_000);
    h.proc.kill('SIGTERM');
    await waitFor('launcher gave up on terminating', () => h.logs.some((l) => l['msg'] === 'libvirt not connected at termination; the monitor cleans up the domain'), 30_000);
    // Longer than the launcher's 5 s state refresh: its driver is closed now, and a refresh
    // still running would log "driver is closed" while the cleanup waits for libvirtd.
    await new Promise((r) => setTimeout(r, 6000));
    // libvirtd is back: the monitor's cleanup (retrying its connection) stops and removes the domain.
    up = await libvirtProxy(sock);
    proxy = up.server;
    expect((await h.exited).code).toBe(1);
    await assertNothingLeft(h);
    expect(h.logs.filter((l) => l['msg'] === 'reading domain state failed')).toEqual([]);
  }, 120_000);
});
