/**
 * Host ports for a VM's forwarded guest ports (pod network `ports`). Each VM gets its own
 * ports on 127.0.0.1, so VMs never collide over a guest port (every VM may declare 22). They
 * are picked below the kernel's ephemeral range: a port in that range can be taken at any
 * moment by an outgoing connection, and a port QEMU is to bind must stay free until it does.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import type { PortForward } from './convert/context.js';
import type { DeclaredPort } from './convert/interfaces.js';

/** Pure: where forwarded ports are picked, from `ip_local_port_range`'s text. */
export function forwardPortRange(ephemeralRangeText: string | undefined): { low: number; high: number } {
  const [low, high] = (ephemeralRangeText ?? '').trim().split(/\s+/).map(Number);
  const eph = low && high && low <= high ? { low, high } : { low: 32768, high: 60999 };
  return eph.low > 12_000 ? { low: 10_000, high: eph.low - 1 } : { low: eph.high + 1, high: 65_535 };
}

/** Where ports this host listens on are picked now (forwards, and the test environment's servers). */
export function listenPortRange(): { low: number; high: number } {
  return forwardPortRange(ephemeralRangeText());
}

function ephemeralRangeText(): string | undefined {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  } catch {
    return undefined;
  }
}

type Held = { port: number; close: () => Promise<void> };

function holdTcp(port: number): Promise<Held | undefined> {
  return new Promise((resolve) => {
    const s: Server = createServer();
    s.once('error', () => resolve(undefined));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve({ port, close: () => new Promise((r) => s.close(() => r())) }));
  });
}

function holdUdp(port: number): Promise<Held | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(undefined));
    s.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve({ port, close: () => new Promise((r) => s.close(() => r())) }));
  });
}

/**
 * One free host port per declared guest port (random in the range, each held while the
 * others are picked so none is picked twice). The ports are released before QEMU binds
 * them; a port taken in between makes the domain start fail, and the next sync picks again.
 */
export async function allocateForwards(
  declared: DeclaredPort[],
  random: () => number = Math.random,
  { low, high } = forwardPortRange(ephemeralRangeText()),
): Promise<PortForward[]> {
  const held: Held[] = [];
  const out: PortForward[] = [];
  try {
    for (const d of declared) {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 1000) throw new Error(`no free ${d.protocol} port on 127.0.0.1 in ${low}-${high} to forward guest port ${d.port}`);
        const port = low + Math.floor(random() * (high - low + 1));
        if (held.some((h) => h.port === port)) continue;
        const h = await (d.protocol === 'UDP' ? holdUdp(port) : holdTcp(port));
        if (!h) continue;
        held.push(h);
        out.push({ guest: d.port, host: port, protocol: d.protocol, ...(d.name ? { name: d.name } : {}) });
        break;
      }
    }
    return out;
  } finally {
    await Promise.all(held.map((h) => h.close()));
  }
}

/**
 * Pure: the forwards of a launcher whose QEMU runs in its Pod's network namespace (the Pod's
 * own libvirt daemon, beside a real kubelet): each declared port on the same port at
 * 0.0.0.0, i.e. the Pod IP, as KubeVirt's masquerade forwards the Pod IP's declared ports to
 * the guest. No allocation: the namespace is the Pod's, and holds no other VM. Ports below
 * 1024 need the Pod's net.ipv4.ip_unprivileged_port_start sysctl (synth sets it), as QEMU
 * runs as the Pod's non-root user without capabilities.
 */
export function podNetnsForwards(declared: DeclaredPort[]): PortForward[] {
  return declared.map((d) => ({ guest: d.port, host: d.port, protocol: d.protocol, address: '0.0.0.0', ...(d.name ? { name: d.name } : {}) }));
}

/** What GET /v1/info says that a forward needs. */
export interface LauncherPortsInfo {
  state: string;
  phase: string;
  ports?: PortForward[];
}

/** The launcher's host port for guest `remote` (TCP), or an error saying why there is none. Pure. */
export function hostPortFor(info: LauncherPortsInfo, remote: number, label: string): number {
  const running = ['Running', 'Blocked', 'Paused', 'Shutdown', 'PMSuspended'].includes(info.state);
  if (!running) throw new Error(`VM ${label} is not running (domain ${info.state}, phase ${info.phase}): start it with virtops start`);
  if (info.ports === undefined) throw new Error(`VM ${label}: its launcher reports no port forwards (a launcher older than port forwarding): restart the VM`);
  const tcp = info.ports.filter((p) => p.protocol === 'TCP');
  const hit = tcp.find((p) => p.guest === remote);
  if (hit) return hit.host;
  if (tcp.length === 0) {
    throw new Error(`VM ${label} forwards no ports: it has no pod network interface with masquerade: {}, or declares no ports on it; add ports: [{ port: ${remote} }] to that interface (KubeVirt's masquerade: only declared ports come in) and restart the VM`);
  }
  throw new Error(`port ${remote} of VM ${label} is not declared (declared: ${tcp.map((p) => p.guest).join(', ')}); add { port: ${remote} } to the pod interface's ports and restart the VM`);
}


/** Joins two connected sockets both ways; an error on either ends both. */
export function spliceSockets(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.resume();
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.once('error', end);
  b.once('error', end);
}
