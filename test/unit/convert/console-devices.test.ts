import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { convertConsole } from '../../../launcher/convert/console.js';
import { checkDeviceFields, convertDevices } from '../../../launcher/convert/devices.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { conversionError, ctx } from './helpers.js';

describe('serial console', () => {
  it('a unix socket, logged to a file, mirrored as the console', () => {
    expect(convertConsole({}, ctx(), 'lab_guest')).toEqual({
      serial: {
        '@type': 'unix',
        source: { '@mode': 'bind', '@path': '/run/virtops/sockets/serial0' },
        log: { '@file': '/var/log/virtops/lab_guest-serial0.log', '@append': 'on' },
        target: { '@type': 'isa-serial', '@port': 0, model: { '@name': 'isa-serial' } },
      },
      console: { '@type': 'unix', source: { '@mode': 'bind', '@path': '/run/virtops/sockets/serial0' }, target: { '@type': 'serial', '@port': 0 } },
    });
  });

  it('no log when logSerialConsole is false; nothing when autoattachSerialConsole is false', () => {
    expect(convertConsole({ logSerialConsole: false }, ctx(), 'd').serial).not.toHaveProperty('log');
    expect(convertConsole({ autoattachSerialConsole: false }, ctx(), 'd')).toEqual({});
  });

  it('refuses socket paths longer than a unix socket address holds', () => {
    const e = conversionError(() => convertConsole({}, ctx({ socketsDir: `/run/${'x'.repeat(95)}` }), 'lab_guest'));
    expect(e.path).toBe('metadata.name');
    expect(e.problem).toMatch(/107-byte unix socket limit/);
  });
});

describe('other devices', () => {
  it('defaults: guest agent channel, VNC on a socket + VGA, virtio balloon, no rng', () => {
    expect(convertDevices({}, ctx(), 'lab_guest')).toEqual({
      channel: { '@type': 'unix', source: { '@mode': 'bind', '@path': '/run/virtops/sockets/ga0' }, target: { '@type': 'virtio', '@name': 'org.qemu.guest_agent.0' } },
      graphics: { '@type': 'vnc', listen: { '@type': 'socket', '@socket': '/run/virtops/sockets/vnc' } },
      video: { model: { '@type': 'vga', '@vram': 16384, '@heads': 1, '@primary': 'yes' } },
      memballoon: { '@model': 'virtio', stats: { '@period': 10 } },
    });
  });

  it('switches: no graphics, no balloon (explicit none), rng from urandom', () => {
    const r = convertDevices({ autoattachGraphicsDevice: false, autoattachMemBalloon: false, rng: {} }, ctx(), 'd');
    expect(r).not.toHaveProperty('graphics');
    expect(r).not.toHaveProperty('video');
    expect(r.memballoon).toEqual({ '@model': 'none' });
    expect(r.rng).toEqual({ '@model': 'virtio', backend: { '@model': 'random', '#': '/dev/urandom' } });
  });

  it('refuses passthrough devices and warns about other unknown device fields', () => {
    expect(conversionError(() => checkDeviceFields({ gpus: [{ name: 'g' }] } as unknown as api.Devices, new Diagnostics())).path).toBe('spec.domain.devices.gpus');
    const diag = new Diagnostics();
    checkDeviceFields({ tpm: {}, watchdog: { name: 'w' }, gpus: [] } as unknown as api.Devices, diag);
    expect(diag.warnings).toEqual([
      'spec.domain.devices.tpm: not supported by virtops; ignored',
      'spec.domain.devices.watchdog: not supported by virtops; ignored',
    ]);
  });
});
