/**
 * Pure: qemu-guest-agent replies (and the domain's own NICs) → what a VMI's status carries,
 * in KubeVirt's shapes: `status.interfaces[]` (spec name, MAC, the guest's name for the NIC,
 * its IPs; infoSource says who knew), `status.guestOSInfo`, and whether the agent answers
 * (condition AgentConnected). Nothing here talks to the agent; launcher/guest-agent.ts does.
 * GuestInfo becomes VMI status fields in reconciler/core/status.ts (vmiGuestStatus), for both modes.
 *
 * A reply that does not have the documented shape is ignored field by field (an older or a
 * non-Linux agent leaves fields out); it never throws.
 */

/** One entry of the VMI's `status.interfaces` (KubeVirt's VirtualMachineInstanceNetworkInterface). */
export interface VmiInterfaceStatus {
  /** The spec interface name (absent for a NIC the guest has that the spec does not name, e.g. a bridge it made). */
  name?: string;
  mac?: string;
  /** The guest's own name for the NIC (eth0, enp1s0). */
  interfaceName?: string;
  /** The first address (IPv4 first, as KubeVirt orders them). */
  ipAddress?: string;
  ipAddresses?: string[];
  /** `domain`, `guest-agent`, or `domain, guest-agent` when both saw it. */
  infoSource: string;
}

/** KubeVirt's VirtualMachineInstanceGuestOSInfo. */
export interface GuestOSInfo {
  id?: string;
  name?: string;
  prettyName?: string;
  version?: string;
  versionId?: string;
  kernelRelease?: string;
  kernelVersion?: string;
  machine?: string;
}

/** What the launcher knows of the guest, as it reports it in GET /v1/info (`guest`). */
export interface GuestInfo {
  /** The agent answered its last ping. */
  agentConnected: boolean;
  /** When the agent connection last changed (ISO time); absent while it never answered. */
  agentSince?: string;
  interfaces: VmiInterfaceStatus[];
  guestOSInfo?: GuestOSInfo;
  hostname?: string;
  users?: { userName: string; loginTime?: number }[];
}

/** A NIC as the domain defines it: its MAC and the spec interface it came from (alias `ua-<name>`). */
export interface DomainNic {
  name: string;
  mac: string;
}

/** The domain XML's `<interface>` elements that carry virtops' `ua-<spec name>` alias. */
export function domainNics(xml: string): DomainNic[] {
  const out: DomainNic[] = [];
  for (const m of xml.matchAll(/<interface\b[\s\S]*?<\/interface>/g)) {
    const block = m[0];
    const mac = /<mac\s+address=['"]([0-9a-fA-F:]{17})['"]/.exec(block)?.[1];
    const alias = /<alias\s+name=['"]ua-([^'"]+)['"]/.exec(block)?.[1];
    if (mac && alias) out.push({ name: alias, mac: mac.toLowerCase() });
  }
  return out;
}

/**
 * Whether the guest has opened the agent's virtio port, as the live domain XML says
 * (`<target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>`): false means no
 * agent runs in the guest now, so asking would only be refused. undefined: libvirt did not say.
 */
export function agentChannelState(xml: string): boolean | undefined {
  for (const m of xml.matchAll(/<channel\b[\s\S]*?<\/channel>/g)) {
    const target = /<target\b[^>]*name=['"]org\.qemu\.guest_agent\.0['"][^>]*>/.exec(m[0])?.[0];
    if (!target) continue;
    const state = /state=['"](\w+)['"]/.exec(target)?.[1];
    return state === undefined ? undefined : state === 'connected';
  }
  return undefined;
}

interface AgentNic {
  name: string;
  mac?: string;
  ips: { family: 'ipv4' | 'ipv6'; address: string; prefix?: number }[];
}

const obj = (x: unknown): Record<string, unknown> | undefined => (x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined);
const str = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);

/** The `return` of an agent reply (the reply itself when it is not wrapped). */
export function agentReturn(reply: unknown): unknown {
  const o = obj(reply);
  return o && 'return' in o ? o['return'] : reply;
}

/** `guest-network-get-interfaces`' reply → the NICs with their addresses (loopback left out). */
export function parseAgentInterfaces(reply: unknown): AgentNic[] {
  const list = agentReturn(reply);
  if (!Array.isArray(list)) return [];
  const nics: AgentNic[] = [];
  for (const raw of list) {
    const o = obj(raw);
    const name = str(o?.['name']);
    if (!o || !name || name === 'lo') continue;
    const mac = str(o['hardware-address'])?.toLowerCase();
    if (mac === '00:00:00:00:00:00') continue; // loopback by another name
    const ips: AgentNic['ips'] = [];
    for (const a of Array.isArray(o['ip-addresses']) ? o['ip-addresses'] : []) {
      const ao = obj(a);
      const address = str(ao?.['ip-address']);
      const family = ao?.['ip-address-type'];
      if (!address || (family !== 'ipv4' && family !== 'ipv6')) continue;
      ips.push({ family, address, ...(typeof ao!['prefix'] === 'number' ? { prefix: ao!['prefix'] } : {}) });
    }
    nics.push({ name, ...(mac ? { mac } : {}), ips });
  }
  return nics;
}

/** IPv4 first, then global IPv6; link-local IPv6 (fe80::/10) is not an address anyone can reach. */
function orderedAddresses(ips: AgentNic['ips']): string[] {
  const v4 = ips.filter((i) => i.family === 'ipv4').map((i) => i.address);
  const v6 = ips.filter((i) => i.family === 'ipv6' && !/^fe[89ab]/i.test(i.address)).map((i) => i.address);
  return [...v4, ...v6];
}

/**
 * The VMI's `status.interfaces`: every NIC of the domain (spec order), with what the agent
 * says of the NIC of the same MAC; then NICs only the guest has (with addresses), unnamed.
 */
export function interfacesStatus(nics: DomainNic[], agentReply: unknown | undefined): VmiInterfaceStatus[] {
  const agent = agentReply === undefined ? [] : parseAgentInterfaces(agentReply);
  const used = new Set<AgentNic>();
  const out: VmiInterfaceStatus[] = nics.map((n) => {
    const a = agent.find((x) => x.mac === n.mac);
    if (!a) return { name: n.name, mac: n.mac, infoSource: 'domain' };
    used.add(a);
    const ips = orderedAddresses(a.ips);
    return { name: n.name, mac: n.mac, interfaceName: a.name, ...(ips.length ? { ipAddress: ips[0], ipAddresses: ips } : {}), infoSource: 'domain, guest-agent' };
  });
  for (const a of agent) {
    if (used.has(a)) continue;
    const ips = orderedAddresses(a.ips);
    if (!ips.length) continue;
    out.push({ interfaceName: a.name, ...(a.mac ? { mac: a.mac } : {}), ipAddress: ips[0], ipAddresses: ips, infoSource: 'guest-agent' });
  }
  return out;
}

/** `guest-get-osinfo`' reply → KubeVirt's guestOSInfo (kebab-case → camelCase). */
export function parseOsInfo(reply: unknown): GuestOSInfo | undefined {
  const o = obj(agentReturn(reply));
  if (!o) return undefined;
  const map: [keyof GuestOSInfo, string][] = [
    ['id', 'id'], ['name', 'name'], ['prettyName', 'pretty-name'], ['version', 'version'], ['versionId', 'version-id'],
    ['kernelRelease', 'kernel-release'], ['kernelVersion', 'kernel-version'], ['machine', 'machine'],
  ];
  const info: GuestOSInfo = {};
  for (const [k, src] of map) {
    const v = str(o[src]);
    if (v) info[k] = v;
  }
  return Object.keys(info).length ? info : undefined;
}

/** `guest-get-host-name`' reply → the guest's hostname. */
export function parseHostName(reply: unknown): string | undefined {
  return str(obj(agentReturn(reply))?.['host-name']);
}

/** `guest-get-users`' reply → logged-in users (KubeVirt's guestosinfo userList shape). */
export function parseUsers(reply: unknown): { userName: string; loginTime?: number }[] {
  const list = agentReturn(reply);
  if (!Array.isArray(list)) return [];
  return list.flatMap((u) => {
    const o = obj(u);
    const userName = str(o?.['user']);
    if (!userName) return [];
    return [{ userName, ...(typeof o!['login-time'] === 'number' ? { loginTime: o!['login-time'] } : {}) }];
  });
}

/** The first IP the guest reports (what `get vmis` shows in its IP column). */
export function primaryIp(guest: Pick<GuestInfo, 'interfaces'> | undefined): string | undefined {
  return guest?.interfaces.find((i) => i.ipAddress)?.ipAddress;
}
