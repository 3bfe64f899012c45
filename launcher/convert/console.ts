/**
 * The serial console: a unix socket the launcher (and `virtops console`) connects to,
 * mirrored to a log file through virtlogd so output survives without a client. The
 * `<console>` is libvirt's alias for serial port 0. Omitted when
 * autoattachSerialConsole is false; the log is omitted when logSerialConsole is false.
 */
import { posix } from 'node:path';
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext } from './context.js';
import { check } from './errors.js';
import type { XmlNode } from './xml.js';

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;

/**
 * `<socketsDir>/serial0`: each launcher has a sockets dir of its own, so the socket needs no
 * name in it, and its path has the same length for every VM, whatever the VM is called.
 */
export function serialSocketPath(ctx: Pick<ConversionContext, 'socketsDir'> | string): string {
  return posix.join(typeof ctx === 'string' ? posix.join(ctx, 'sockets') : ctx.socketsDir, 'serial0');
}

export function serialLogPath(ctx: ConversionContext, domainName: string): string {
  return posix.join(ctx.logDir, `${domainName}-serial0.log`);
}

/** Throws unless `path` fits a unix socket address; names the VMI field that made it long. */
export function checkSocketPath(path: string): void {
  check(
    Buffer.byteLength(path) <= MAX_SOCKET_PATH,
    'metadata.name',
    `socket path ${path} is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH}-byte unix socket limit`,
    'use a shorter VM name or namespace, or a shorter sockets directory on the node',
  );
}

export function convertConsole(devices: api.Devices, ctx: ConversionContext, domainName: string): XmlNode {
  if (devices.autoattachSerialConsole === false) return {};
  const socket = serialSocketPath(ctx);
  checkSocketPath(socket);
  const serial: XmlNode = { '@type': 'unix', source: { '@mode': 'bind', '@path': socket } };
  if (devices.logSerialConsole !== false) serial.log = { '@file': serialLogPath(ctx, domainName), '@append': 'on' };
  serial.target = { '@type': 'isa-serial', '@port': 0, model: { '@name': 'isa-serial' } };
  return {
    serial,
    console: { '@type': 'unix', source: { '@mode': 'bind', '@path': socket }, target: { '@type': 'serial', '@port': 0 } },
  };
}
