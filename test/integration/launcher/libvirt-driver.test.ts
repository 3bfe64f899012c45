/**
 * The native driver against libvirt's `test:///default` driver: the real libvirt API and
 * binding, no QEMU. Each connection has private state, so the event source is `poll`
 * (a `virsh event` child would see its own, separate test driver).
 *
 * An integration test, not a unit test: it needs the host's libvirt (the library and the
 * N-API binding against it; the integration global setup installs and starts libvirt).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NativeLibvirtDriver } from '../../../launcher/libvirt/native.js';
import type { DomainEvent, DomainEventType } from '../../../launcher/libvirt/driver.js';
import { DomainNotFoundError, LibvirtError, LibvirtUnavailableError } from '../../../launcher/libvirt/errors.js';
import { waitFor } from '../../helpers/wait.js';

const XML = (name: string) => `<domain type='test'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os></domain>`;

/**
 * Resolves once the polling event source has a baseline snapshot, so that a domain defined
 * from now on is reported as Defined (and not just found in the first snapshot): it defines
 * probe domains until one of them is reported. Call it while the listener whose events the
 * test checks is subscribed, so the same poller keeps running afterwards.
 */
async function pollerHasBaseline(driver: NativeLibvirtDriver): Promise<void> {
  let reported = false;
  const off = driver.onEvent((e) => {
    if (e.type === 'Defined' && e.domain.startsWith('probe-')) reported = true;
  });
  let n = 0;
  try {
    await waitFor('the poller to report a newly defined probe domain', async () => {
      if (reported) return true;
      await driver.defineXML(XML(`probe-${n++}`));
      return false;
    }, 10_000, 100);
  } finally {
    off();
  }
}

describe('NativeLibvirtDriver on test:///default', () => {
  let driver: NativeLibvirtDriver;
  beforeEach(async () => {
    driver = new NativeLibvirtDriver({ uri: 'test:///default', eventSource: 'poll', pollIntervalMs: 50 });
    await driver.connect();
  });
  afterEach(async () => {
    await driver.close();
  });

  it('lists the default test domain', async () => {
    expect(await driver.listDomains()).toContainEqual({ name: 'test', state: 'Running' });
    expect(await driver.exists('test')).toBe(true);
    expect(await driver.exists('missing')).toBe(false);
  });

  it('runs a lifecycle and reports states and events', async () => {
    const events: DomainEvent[] = [];
    const off = driver.onEvent((e) => e.domain === 'life' && events.push(e));
    // Polling only sees the states it samples: each step waits until the poller reported
    // the previous one before changing the state again.
    const reported = (type: DomainEventType) => waitFor(`a ${type} event for 'life'`, () => events.some((e) => e.type === type), 10_000, 20);
    await pollerHasBaseline(driver);
    expect(await driver.defineXML(XML('life'))).toBe('life');
    expect(await driver.getState('life')).toBe('Shutoff');
    await driver.start('life');
    expect(await driver.getState('life')).toBe('Running');
    await reported('Started');
    await driver.suspend('life');
    expect(await driver.getState('life')).toBe('Paused');
    await reported('Suspended');
    await driver.resume('life');
    await reported('Resumed');
    const info = await driver.getInfo('life');
    expect(info).toMatchObject({ name: 'life', state: 'Running', vcpus: 1, maxMemory: 64 * 1024 * 1024 });
    expect(await driver.getXML('life')).toContain('<name>life</name>');
    await driver.destroy('life');
    expect(await driver.getState('life')).toBe('Shutoff');
    await reported('Stopped');
    await driver.undefine('life');
    expect(await driver.exists('life')).toBe(false);
    await reported('Undefined');
    off();
    expect(events.map((e) => e.type)).toEqual(['Defined', 'Started', 'Suspended', 'Resumed', 'Stopped', 'Undefined']);
  });

  it('raises typed errors naming the operation and domain', async () => {
    const err = await driver.start('ghost').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainNotFoundError);
    expect((err as DomainNotFoundError).message).toContain("'ghost'");
    const running = await driver.start('test').catch((e: unknown) => e);
    expect(running).toBeInstanceOf(LibvirtError);
    expect((running as LibvirtError).operation).toBe('start');
    expect((running as LibvirtError).message).toMatch(/already running/);
  });

  it('events() yields as an async iterable and ends on abort', async () => {
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of driver.events(ac.signal)) {
        if (e.domain === 'iter') seen.push(e.type);
        if (seen.length === 2) ac.abort();
      }
    })();
    await pollerHasBaseline(driver);
    await driver.defineXML(XML('iter'));
    await driver.start('iter');
    await done;
    expect(seen).toEqual(['Defined', 'Started']);
  });
});

describe('NativeLibvirtDriver without libvirtd', () => {
  it('fails with LibvirtUnavailableError naming the URI and the fix', async () => {
    const driver = new NativeLibvirtDriver({ uri: 'qemu:///system?socket=/nonexistent/libvirt-sock' });
    const err = await driver.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtUnavailableError);
    expect((err as Error).message).toMatch(/nonexistent\/libvirt-sock.*setup-host|--libvirt-uri/s);
    await driver.close();
  });

  it('retries with backoff until aborted', async () => {
    const driver = new NativeLibvirtDriver({ uri: 'qemu:///system?socket=/nonexistent/libvirt-sock' });
    const delays: number[] = [];
    const ac = new AbortController();
    const err = await driver
      .connect({ retry: true, signal: ac.signal, onRetry: (_e, d) => { delays.push(d); if (delays.length === 3) ac.abort(new Error('enough')); } })
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe('enough');
    expect(delays).toHaveLength(3);
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
    await driver.close();
  });
});
