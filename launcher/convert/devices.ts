/**
 * The remaining devices: guest agent channel, random number generator, memory balloon,
 * graphics. Each follows a KubeVirt `autoattach*` switch or presence flag.
 *
 * Graphics: KubeVirt attaches VNC + VGA unless autoattachGraphicsDevice is false. virtops
 * keeps that default but puts VNC on a unix socket next to the serial console (no TCP
 * port to allocate or expose); under TCG the idle VGA costs next to nothing.
 */
import { posix } from 'node:path';
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext } from './context.js';
import { check, type Diagnostics, warnUnknownKeys } from './errors.js';
import { checkSocketPath } from './console.js';
import type { XmlNode } from './xml.js';

const BASE = 'spec.domain.devices';
export const GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0';

export const DEVICE_KEYS = [
  'disks', 'interfaces', 'rng', 'autoattachSerialConsole', 'autoattachGraphicsDevice', 'autoattachMemBalloon',
  'autoattachPodInterface', 'logSerialConsole', 'networkInterfaceMultiqueue', 'blockMultiQueue',
];
/** Devices the guest would miss: converting without them would misrepresent the VM. */
const UNSUPPORTED_DEVICES: Record<string, string> = {
  gpus: 'GPU passthrough',
  hostDevices: 'host device passthrough',
  filesystems: 'virtiofs file systems',
};

/** `<socketsDir>/vnc`: per-launcher sockets dir, so no name in it (see serialSocketPath). */
export function vncSocketPath(ctx: ConversionContext): string {
  return posix.join(ctx.socketsDir, 'vnc');
}

/**
 * `<socketsDir>/ga0`: the guest agent channel's socket, beside the console's (short and the
 * same length for every VM). libvirtd is its one client; the launcher asks through libvirt
 * (launcher/guest-agent.ts). A fixed path in the launcher's own dir, rather than libvirt's
 * default under /var/lib/libvirt, keeps everything of the VMI in its Pod's directories.
 */
export function agentSocketPath(ctx: Pick<ConversionContext, 'socketsDir'>): string {
  return posix.join(ctx.socketsDir, 'ga0');
}

/** Refuses passthrough devices, warns about other device fields virtops does not model. */
export function checkDeviceFields(devices: api.Devices, diag: Diagnostics): void {
  const raw = devices as unknown as Record<string, unknown>;
  for (const [key, what] of Object.entries(UNSUPPORTED_DEVICES)) {
    const v = raw[key];
    check(!(Array.isArray(v) && v.length > 0), `${BASE}.${key}`, `${what} is not supported by virtops`, `remove ${key}`);
  }
  warnUnknownKeys(diag, devices, BASE, [...DEVICE_KEYS, ...Object.keys(UNSUPPORTED_DEVICES)]);
}

export function convertDevices(devices: api.Devices, ctx: ConversionContext, domainName: string): XmlNode {
  const agentSocket = agentSocketPath(ctx);
  checkSocketPath(agentSocket);
  const xml: XmlNode = {
    // libvirt connects to the agent socket itself (it is the agent's only client).
    channel: { '@type': 'unix', source: { '@mode': 'bind', '@path': agentSocket }, target: { '@type': 'virtio', '@name': GUEST_AGENT_CHANNEL } },
  };
  if (devices.autoattachGraphicsDevice !== false) {
    const socket = vncSocketPath(ctx);
    checkSocketPath(socket);
    xml.graphics = { '@type': 'vnc', listen: { '@type': 'socket', '@socket': socket } };
    xml.video = { model: { '@type': 'vga', '@vram': 16384, '@heads': 1, '@primary': 'yes' } };
  }
  // libvirt adds a balloon by default, so "none" must be explicit.
  xml.memballoon = devices.autoattachMemBalloon === false ? { '@model': 'none' } : { '@model': 'virtio', stats: { '@period': 10 } };
  if (devices.rng !== undefined) {
    xml.rng = { '@model': 'virtio', backend: { '@model': 'random', '#': '/dev/urandom' } };
  }
  return xml;
}
