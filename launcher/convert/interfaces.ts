/**
 * Network interfaces. virtops runs on a single host without a pod network, so:
 *
 * - the pod network (bridge, masquerade, or the older slirp/passt bindings) becomes
 *   libvirt user-mode networking, `<interface type="user">`: NAT to the host's network,
 *   no host bridge or privileges needed — the masquerade semantics, whichever binding;
 * - a multus network attaches to the host bridge or libvirt network the conversion
 *   context maps its name to, else falls back to user-mode networking with a warning;
 * - `ports` on the pod interface (KubeVirt's masquerade semantics: only declared ports come
 *   in) are forwarded from 127.0.0.1:<host port> on the host, the host ports allocated by the
 *   launcher (ctx.podPortForwards); see README.md "Pod network ports". libvirt 9.0 has no
 *   user-interface port forwards it accepts on this host (`<backend type='passt'/>` is refused
 *   at define), so the NIC keeps its libvirt `<interface type="user">` (MAC, model, PCI
 *   address, boot order) and is re-pointed (`<qemu:override>`) at a user-mode netdev of our
 *   own with QEMU `hostfwd` rules (`<qemu:commandline>`). No declared ports: nothing comes in;
 * - an interface without macAddress gets one derived from the domain UUID and the
 *   interface name (QEMU's 52:54:00 prefix), so the guest sees the same NIC every start.
 *
 * With no interfaces and no networks, a pod interface named "default" is attached
 * unless autoattachPodInterface is false (KubeVirt's default).
 */
import { createHash } from 'node:crypto';
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext, PortForward } from './context.js';
import { check, type Diagnostics, warnUnknownKeys } from './errors.js';
import { pciAddress } from './disks.js';
import type { XmlNode } from './xml.js';

const BASE = 'spec.domain.devices.interfaces';
const USER_BINDINGS = ['bridge', 'masquerade', 'slirp', 'passt', 'passtBinding'];
const UNSUPPORTED_BINDINGS = ['sriov', 'macvtap', 'binding'];
const INTERFACE_KEYS = ['name', ...USER_BINDINGS, ...UNSUPPORTED_BINDINGS, 'macAddress', 'model', 'ports', 'bootOrder', 'pciAddress'];
const MODELS = ['virtio', 'e1000', 'e1000e', 'ne2k_pci', 'pcnet', 'rtl8139'];
const MAC = /^([0-9A-Fa-f]{2})([:-][0-9A-Fa-f]{2}){5}$/;

export interface InterfacesResult {
  interfaces: XmlNode[];
  bootOrders: { path: string; order: number }[];
  /** QEMU pass-through for the pod interface's port forwards (absent without forwards). */
  qemu?: { args: string[]; overrides: { alias: string; netdev: string }[] };
}

/** Bindings that mean "NAT behind the pod address", where KubeVirt honours `ports`. */
const NAT_BINDINGS = ['masquerade', 'slirp', 'passt', 'passtBinding'];

/** A port a VMI declares on its pod interface: what the launcher allocates host ports for. */
export interface DeclaredPort {
  port: number;
  protocol: 'TCP' | 'UDP';
  name?: string;
}

/**
 * The ports declared on the pod network's NAT interface (pure; invalid entries are left to
 * convertInterfaces, which names them). Empty when none are declared: nothing comes in.
 */
export function declaredPodPorts(spec: api.VirtualMachineInstanceSpec): DeclaredPort[] {
  const pod = (spec.networks ?? []).find((n) => n.pod !== undefined);
  const iface = (spec.domain.devices.interfaces ?? []).find((i) => i.name === pod?.name);
  const raw = iface as unknown as Record<string, unknown> | undefined;
  if (!iface || !NAT_BINDINGS.some((b) => raw![b] !== undefined)) return [];
  const seen = new Set<string>();
  const out: DeclaredPort[] = [];
  for (const p of iface.ports ?? []) {
    const protocol = (p.protocol ?? 'TCP').toUpperCase() as 'TCP' | 'UDP';
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535 || (protocol !== 'TCP' && protocol !== 'UDP')) continue;
    const key = `${protocol}/${p.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ port: p.port, protocol, ...(p.name ? { name: p.name } : {}) });
  }
  return out;
}

/** The forwards recorded in a domain's XML (a launcher adopting a running domain reads them back). */
export function portForwardsInDomainXml(xml: string): PortForward[] {
  return [...xml.matchAll(/hostfwd=(tcp|udp):(\d{1,3}(?:\.\d{1,3}){3})?:(\d+)-:(\d+)/g)].map((m) => ({
    protocol: m[1]!.toUpperCase() as 'TCP' | 'UDP',
    host: Number(m[3]),
    guest: Number(m[4]),
    ...(m[2] !== '127.0.0.1' ? { address: m[2] ?? '0.0.0.0' } : {}),
  }));
}

export interface InterfacesInput {
  spec: api.VirtualMachineInstanceSpec;
  ctx: ConversionContext;
  vcpus: number;
  uuid: string;
}

export function convertInterfaces({ spec, ctx, vcpus, uuid }: InterfacesInput, diag: Diagnostics): InterfacesResult {
  const devices = spec.domain.devices;
  let interfaces = devices.interfaces;
  let networks = spec.networks;
  if (interfaces === undefined && networks === undefined && devices.autoattachPodInterface !== false) {
    interfaces = [{ name: 'default', masquerade: {} }];
    networks = [{ name: 'default', pod: {} }];
  }
  interfaces ??= [];
  networks ??= [];

  const names = new Set<string>();
  const bootOrders: InterfacesResult['bootOrders'] = [];
  let qemu: InterfacesResult['qemu'];
  const xml = interfaces.map((iface, i): XmlNode => {
    const path = `${BASE}[${i}]`;
    const raw = iface as unknown as Record<string, unknown>;
    warnUnknownKeys(diag, iface, path, INTERFACE_KEYS);
    check(typeof iface.name === 'string' && iface.name !== '', `${path}.name`, 'the interface has no name', 'name it after the network it attaches to');
    check(!names.has(iface.name), `${path}.name`, `interface "${iface.name}" is listed twice`, 'give each interface a unique name');
    names.add(iface.name);

    const bindings = [...USER_BINDINGS, ...UNSUPPORTED_BINDINGS].filter((b) => raw[b] !== undefined);
    check(bindings.length === 1, path, bindings.length === 0 ? 'no binding method' : `several binding methods (${bindings.join(', ')})`, 'set exactly one of bridge: {} or masquerade: {}');
    const binding = bindings[0]!;
    check(!UNSUPPORTED_BINDINGS.includes(binding), `${path}.${binding}`, `the ${binding} binding needs cluster networking virtops does not have`, 'use bridge: {} or masquerade: {}');

    const netIndex = networks.findIndex((n) => n.name === iface.name);
    check(netIndex >= 0, `${path}.name`, `no network named "${iface.name}" in spec.networks`, `add spec.networks entry { name: "${iface.name}", pod: {} }`);
    const network = networks[netIndex]!;
    const netPath = `spec.networks[${netIndex}]`;
    warnUnknownKeys(diag, network, netPath, ['name', 'pod', 'multus']);
    check((network.pod !== undefined) !== (network.multus !== undefined), netPath, 'a network must be either pod or multus', 'set exactly one of pod: {} or multus: { networkName }');

    const el: XmlNode = {};
    if (network.multus) {
      check(binding === 'bridge', `${path}.${binding}`, `${binding} only works on the pod network`, 'use bridge: {} for a multus network');
      const attachment = ctx.networks?.[network.multus.networkName];
      if (attachment?.type === 'bridge') Object.assign(el, { '@type': 'bridge', source: { '@bridge': attachment.bridge } });
      else if (attachment?.type === 'network') Object.assign(el, { '@type': 'network', source: { '@network': attachment.network } });
      else {
        diag.warn(`${netPath}.multus.networkName`, `no host attachment configured for "${network.multus.networkName}"; the interface uses user-mode networking instead`);
        el['@type'] = 'user';
      }
    } else {
      warnUnknownKeys(diag, network.pod, `${netPath}.pod`, ['vmNetworkCIDR', 'vmIPv6NetworkCIDR']);
      el['@type'] = 'user';
    }
    const mac = iface.macAddress !== undefined ? macOf(iface.macAddress, `${path}.macAddress`) : derivedMac(uuid, iface.name);
    const ordered: XmlNode = { '@type': el['@type'], mac: { '@address': mac } };
    if (el.source) ordered.source = el.source;
    if (el['@type'] === 'user' && network.pod) {
      const ips = [
        cidr(network.pod.vmNetworkCIDR, 'ipv4', `${netPath}.pod.vmNetworkCIDR`),
        cidr(network.pod.vmIPv6NetworkCIDR, 'ipv6', `${netPath}.pod.vmIPv6NetworkCIDR`),
      ].filter((x): x is XmlNode => x !== undefined);
      if (ips.length > 0) ordered.ip = ips;
    }

    const model = iface.model ?? 'virtio';
    check(MODELS.includes(model), `${path}.model`, `"${model}" is not a NIC model this QEMU provides`, `use one of ${MODELS.join(', ')}`);
    ordered.model = { '@type': model };
    if (devices.networkInterfaceMultiqueue && model === 'virtio' && vcpus > 1) {
      if (ordered['@type'] === 'user') diag.warn('spec.domain.devices.networkInterfaceMultiqueue', `user-mode networking has a single queue; interface "${iface.name}" gets one`);
      else ordered.driver = { '@queues': vcpus };
    }
    if (iface.bootOrder !== undefined) {
      check(Number.isInteger(iface.bootOrder) && iface.bootOrder >= 1, `${path}.bootOrder`, `${iface.bootOrder} is not a whole number ≥ 1`, 'use 1 for the first boot device, 2 for the next, …');
      ordered.boot = { '@order': iface.bootOrder };
      bootOrders.push({ path: `${path}.bootOrder`, order: iface.bootOrder });
    }
    ordered.alias = { '@name': `ua-${iface.name}` };
    if (iface.pciAddress !== undefined) ordered.address = pciAddress(iface.pciAddress, `${path}.pciAddress`);
    if (iface.ports && iface.ports.length > 0) {
      checkPorts(iface.ports, `${path}.ports`);
      if (!network.pod || !NAT_BINDINGS.includes(binding)) {
        diag.warn(`${path}.ports`, `ports are forwarded only on the pod network with masquerade: {}; ignored on this ${binding} interface`);
      } else if (ctx.podPortForwards === undefined) {
        diag.warn(`${path}.ports`, 'forwarded only when a launcher starts the VM (it allocates the host ports); not in this preview');
      } else {
        const netdev = `vo-${iface.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
        qemu = { args: ['-netdev', userNetdev(netdev, network.pod, ctx.podPortForwards)], overrides: [{ alias: `ua-${iface.name}`, netdev }] };
      }
    }
    return ordered;
  });

  const pods = networks.filter((n) => n.pod !== undefined).length;
  check(pods <= 1, 'spec.networks', 'more than one pod network', 'keep a single pod network; use multus for the others');
  networks.forEach((n, j) => {
    if (!names.has(n.name)) diag.warn(`spec.networks[${j}]`, `no interface uses network "${n.name}"; it is not attached`);
  });
  return { interfaces: xml, bootOrders, ...(qemu ? { qemu } : {}) };
}

function checkPorts(ports: api.Port[], path: string): void {
  const seen = new Set<string>();
  ports.forEach((p, j) => {
    check(Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535, `${path}[${j}].port`, `${p.port} is not a port number`, 'use a whole number from 1 to 65535');
    const protocol = (p.protocol ?? 'TCP').toUpperCase();
    check(protocol === 'TCP' || protocol === 'UDP', `${path}[${j}].protocol`, `"${p.protocol}" cannot be forwarded`, 'use TCP or UDP');
    check(!seen.has(`${protocol}/${p.port}`), `${path}[${j}]`, `${protocol} port ${p.port} is declared twice`, 'declare each port once');
    seen.add(`${protocol}/${p.port}`);
  });
}

/** QEMU's user-mode netdev for the pod network: its address ranges and one hostfwd per forward (loopback unless the forward names its address). */
function userNetdev(id: string, pod: NonNullable<api.Network['pod']>, forwards: PortForward[]): string {
  const opts = [`user`, `id=${id}`];
  if (pod.vmNetworkCIDR) opts.push(`net=${pod.vmNetworkCIDR}`);
  if (pod.vmIPv6NetworkCIDR) {
    const [prefix, bits] = pod.vmIPv6NetworkCIDR.split('/');
    opts.push(`ipv6-prefix=${prefix}`, `ipv6-prefixlen=${bits}`);
  }
  for (const f of forwards) opts.push(`hostfwd=${f.protocol.toLowerCase()}:${f.address ?? '127.0.0.1'}:${f.host}-:${f.guest}`);
  return opts.join(',');
}

/** The domain's QEMU-namespace elements for InterfacesResult.qemu (merged into <domain>). */
export function qemuPassThrough(q: NonNullable<InterfacesResult['qemu']>): XmlNode {
  return {
    '@xmlns:qemu': 'http://libvirt.org/schemas/domain/qemu/1.0',
    'qemu:commandline': { 'qemu:arg': q.args.map((a) => ({ '@value': a })) },
    'qemu:override': {
      'qemu:device': q.overrides.map((o) => ({
        '@alias': o.alias,
        'qemu:frontend': { 'qemu:property': { '@name': 'netdev', '@type': 'string', '@value': o.netdev } },
      })),
    },
  };
}

function macOf(text: string, path: string): string {
  check(MAC.test(text), path, `"${text}" is not a MAC address`, 'use six hex pairs, e.g. 02:00:00:00:be:ef');
  const mac = text.toLowerCase().replace(/-/g, ':');
  check((parseInt(mac.slice(0, 2), 16) & 1) === 0, path, `${mac} is a multicast address`, 'use a unicast address (the first byte even), e.g. 02:…');
  return mac;
}

/** A stable MAC under QEMU's 52:54:00 prefix, from the domain UUID and interface name. */
export function derivedMac(uuid: string, name: string): string {
  const h = createHash('sha256').update(`${uuid}/${name}`).digest();
  return ['52', '54', '00', ...[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function cidr(text: string | undefined, family: 'ipv4' | 'ipv6', path: string): XmlNode | undefined {
  if (text === undefined) return undefined;
  const [address, prefix, ...rest] = text.split('/');
  const ok4 = family === 'ipv4' && /^(\d{1,3})(\.\d{1,3}){3}$/.test(address ?? '') && address!.split('.').every((o) => Number(o) <= 255);
  const ok6 = family === 'ipv6' && /^[0-9a-fA-F:]+$/.test(address ?? '') && (address ?? '').includes(':');
  const bits = Number(prefix);
  const max = family === 'ipv4' ? 32 : 128;
  check((ok4 || ok6) && rest.length === 0 && prefix !== undefined && Number.isInteger(bits) && bits >= 1 && bits <= max, path, `"${text}" is not an ${family} CIDR`, family === 'ipv4' ? 'use e.g. "10.0.2.0/24"' : 'use e.g. "fd10:0:2::/120"');
  return { '@family': family, '@address': address, '@prefix': bits };
}
