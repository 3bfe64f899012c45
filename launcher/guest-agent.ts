/**
 * Talking to qemu-guest-agent, and keeping what it says fresh for the VMI status.
 *
 * Through libvirt, not the channel socket: a domain channel named org.qemu.guest_agent.0 is
 * libvirt's agent channel whatever its path, libvirtd connects to it as soon as the guest
 * opens the port, and QEMU's chardev serves one client at a time, so a second client (us)
 * would never be answered. libvirt's virDomainQemuAgentCommand is what KubeVirt calls, but
 * @unraid/libvirt does not bind it (nor the libvirt-qemu library), so each call is one
 * `virsh qemu-agent-command` (libvirt adds the guest-sync handshake itself), and a stop is
 * `virsh shutdown --mode agent` (libvirt knows guest-shutdown sends no reply). A poll costs
 * one live-XML read through the binding every POLL_MS while the domain runs, and one short
 * virsh process (~13 ms of CPU) only when that XML says the guest has the agent port open:
 * a guest without an agent costs no process at all.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import {
  type DomainNic, type GuestInfo, agentChannelState, domainNics, interfacesStatus, parseHostName, parseOsInfo, parseUsers,
} from './guest-agent-status.js';

export interface GuestAgentClient {
  /** One agent command; resolves with the reply's JSON (`{return: …}`), rejects when the agent does not answer. */
  command(domain: string, execute: string, args?: Record<string, unknown>, timeoutSeconds?: number): Promise<unknown>;
  /** Asks the guest to power off through the agent; rejects when the agent did not take it. */
  shutdown(domain: string): Promise<void>;
}

/** The agent through `virsh -c <uri>`: see the file comment for why not the binding or the socket. */
export class VirshAgentClient implements GuestAgentClient {
  constructor(private readonly uri: string, private readonly virsh = 'virsh') {}

  private run(args: string[], timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.virsh, ['-q', '-c', this.uri, ...args], { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error((stderr || err.message).trim().replace(/^error:\s*/gm, '').replace(/\n+/g, '; ')));
        else resolve(stdout);
      });
    });
  }

  async command(domain: string, execute: string, args?: Record<string, unknown>, timeoutSeconds = 5): Promise<unknown> {
    const out = await this.run(['qemu-agent-command', domain, JSON.stringify(args ? { execute, arguments: args } : { execute }), '--timeout', String(timeoutSeconds)], (timeoutSeconds + 5) * 1000);
    return JSON.parse(out);
  }

  async shutdown(domain: string): Promise<void> {
    await this.run(['shutdown', domain, '--mode', 'agent'], 15_000);
  }
}

/** How often the agent is asked while the domain runs; OS info is re-read every OSINFO_EVERY polls. */
export const POLL_MS = 10_000;
const OSINFO_EVERY = 30;
/**
 * When the live XML does not say whether the agent port is open (a driver that reports no
 * channel state, e.g. libvirt's test driver), each refused ask doubles the number of polls
 * skipped before the next, up to this many (~5 min at POLL_MS): otherwise every launcher forks
 * a virsh every poll for good (the cost bench:scaling found with hundreds of VMs).
 */
export const BLIND_SKIP_MAX = 31;

export interface GuestAgentWatcherDeps {
  client: GuestAgentClient;
  domain: string;
  /** The live domain XML (for the NICs' MACs and spec names). */
  domainXml: () => Promise<string>;
  log: Logger;
  /** Called when the agent connects or goes away, and when what it reports changes. */
  onChange: (info: GuestInfo, what: 'connected' | 'disconnected' | 'updated') => void;
  /**
   * Work to do once each time the agent connects (e.g. accessCredentials' ssh keys): retried
   * at each poll until it resolves (the agent starts before cloud-init has made the users).
   */
  onConnect?: () => Promise<void>;
  pollMs?: number;
}

/** Polls one running domain's agent; `info()` is what GET /v1/info reports as `guest`. */
export class GuestAgentWatcher {
  private current: GuestInfo = { agentConnected: false, interfaces: [] };
  private nics: DomainNic[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private polls = 0;
  private stopped = false;
  private connectWorkDone = false;
  /** Consecutive refused asks while the channel state was unknown, and polls left to skip. */
  private blindRefusals = 0;
  private blindSkip = 0;

  constructor(private readonly deps: GuestAgentWatcherDeps) {}

  info(): GuestInfo {
    return this.current;
  }

  get connected(): boolean {
    return this.current.agentConnected;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.poll(), this.deps.pollMs ?? POLL_MS);
    this.timer.unref();
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: NICs from the domain, addresses (doubles as the ping), OS info on connect and now and then. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const { client, domain, log } = this.deps;
    if (this.stopped) return;
    // The live XML (one binding call, no process) gives the NICs and whether the guest has
    // opened the agent port: without an agent (the busybox guest) no virsh runs at all.
    let channel: boolean | undefined;
    try {
      const xml = await this.deps.domainXml();
      this.nics ??= domainNics(xml);
      channel = agentChannelState(xml);
    } catch (err) {
      log.debug({ err }, 'reading the live domain XML failed');
    }
    const nics = this.nics ?? [];
    let ifaces: unknown;
    try {
      if (channel === false) throw new Error('the guest has not opened the agent channel');
      if (channel === undefined && this.blindSkip > 0) {
        this.blindSkip--;
        throw new Error('the agent refused the last asks and libvirt does not say whether its channel is open');
      }
      try {
        ifaces = await client.command(domain, 'guest-network-get-interfaces');
        this.blindRefusals = 0;
      } catch (err) {
        if (channel === undefined) this.blindSkip = blindSkipAfter(++this.blindRefusals);
        throw err;
      }
    } catch (err) {
      if (this.stopped) return;
      const was = this.current.agentConnected;
      this.current = { agentConnected: false, ...(was ? { agentSince: new Date().toISOString() } : this.current.agentSince ? { agentSince: this.current.agentSince } : {}), interfaces: interfacesStatus(nics, undefined) };
      this.connectWorkDone = false;
      if (was) {
        log.info({ err: (err as Error).message }, 'guest agent disconnected');
        this.deps.onChange(this.current, 'disconnected');
      }
      return;
    }
    if (this.stopped) return;
    const connecting = !this.current.agentConnected;
    const next: GuestInfo = {
      ...this.current,
      agentConnected: true,
      ...(connecting ? { agentSince: new Date().toISOString() } : {}),
      interfaces: interfacesStatus(nics, ifaces),
    };
    if (connecting || this.polls++ % OSINFO_EVERY === 0) {
      const [os, host, users] = await Promise.allSettled([
        client.command(domain, 'guest-get-osinfo'),
        client.command(domain, 'guest-get-host-name'),
        client.command(domain, 'guest-get-users'),
      ]);
      const osInfo = os.status === 'fulfilled' ? parseOsInfo(os.value) : undefined;
      if (osInfo) next.guestOSInfo = osInfo;
      const hostname = host.status === 'fulfilled' ? parseHostName(host.value) : undefined;
      if (hostname) next.hostname = hostname;
      if (users.status === 'fulfilled') next.users = parseUsers(users.value);
    }
    if (this.stopped) return;
    const changed = JSON.stringify(withoutTimes(next)) !== JSON.stringify(withoutTimes(this.current));
    this.current = next;
    if (connecting) {
      log.info({ os: next.guestOSInfo?.prettyName, hostname: next.hostname, ips: next.interfaces.flatMap((i) => i.ipAddresses ?? []) }, 'guest agent connected');
      this.deps.onChange(next, 'connected');
    } else if (changed) {
      this.deps.onChange(next, 'updated');
    }
    if (this.deps.onConnect && !this.connectWorkDone) {
      try {
        await this.deps.onConnect();
        this.connectWorkDone = true;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'work on guest agent connect failed; retrying at the next poll');
      }
    }
  }
}

/**
 * Polls to skip after `refusals` consecutive refused asks with the channel state unknown: 7,
 * 15, then BLIND_SKIP_MAX. Steep from the first refusal: with 5,000 launchers on the test
 * driver even a few asks each cost minutes of CPU (bench:scaling).
 */
export function blindSkipAfter(refusals: number): number {
  return Math.min(2 ** (Math.max(1, refusals) + 2) - 1, BLIND_SKIP_MAX);
}

function withoutTimes(g: GuestInfo): unknown {
  const { agentSince: _a, users, ...rest } = g;
  return { ...rest, users: users?.map((u) => u.userName) };
}
