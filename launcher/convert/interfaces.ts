/**
 * Network interfaces. virtops runs on a single host without a pod network, so:
 *
 * - the pod network (bridge, masquerade, or the older slirp/passt bindings) becomes
 *   libvirt user-mode networking, `<interface type="user">`: NAT to the host's network,
 *   no host bridge or privileges needed — the masquerade semantics, whichever binding;
 * - a multus network attaches to the host bridge or libvirt network the conversion
 *   context maps its name to, else falls back to user-mode networking with a warning;
 * - `ports` (KubeVirt's masquerade port forwards) are not forwarded; a warning says so;
 * - an interface without macAddress gets one derived from the domain UUID and the
 *   interface name (QEMU's 52:54:00 prefix), so the guest sees the same NIC every start.
 *
 * With no interfaces and no networks, a pod interface named "default" is attached
 * unless autoattachPodInterface is false (KubeVirt's default).
 */
import { createHash } from 'node:crypto';
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext } from './context.js';
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
      diag.warn(`${path}.ports`, 'port forwarding is not set up by virtops; the guest is reachable only through its own outbound connections or a multus network');
    }
    return ordered;
  });

  const pods = networks.filter((n) => n.pod !== undefined).length;
  check(pods <= 1, 'spec.networks', 'more than one pod network', 'keep a single pod network; use multus for the others');
  networks.forEach((n, j) => {
    if (!names.has(n.name)) diag.warn(`spec.networks[${j}]`, `no interface uses network "${n.name}"; it is not attached`);
  });
  return { interfaces: xml, bootOrders };
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
