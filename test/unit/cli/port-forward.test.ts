import { describe, expect, it } from 'vitest';
import { hostPortFor, parsePortSpec } from '../../../cli/commands/port-forward.js';
import { shellQuote, sshArgs } from '../../../cli/commands/ssh.js';

describe('port-forward', () => {
  it.each([
    ['8080', { local: 8080, remote: 8080 }],
    ['2222:22', { local: 2222, remote: 22 }],
    [':22', { local: 0, remote: 22 }],
  ])('parses %s', (spec, want) => expect(parsePortSpec(spec)).toEqual(want));

  it.each([['x'], ['22:'], ['0'], ['70000'], ['1:2:3']])('rejects %s with the form to use', (spec) => {
    expect(() => parsePortSpec(spec)).toThrow(/port|LOCAL:\]REMOTE/);
  });

  const running = { state: 'Running', phase: 'Running', ports: [{ guest: 22, host: 20022, protocol: 'TCP' as const }, { guest: 53, host: 20053, protocol: 'UDP' as const }] };

  it('finds the host port of a declared TCP port', () => {
    expect(hostPortFor(running, 22, 'default/web')).toBe(20022);
  });

  it('says why there is none: not running, nothing declared, this port not declared', () => {
    expect(() => hostPortFor({ ...running, state: 'Absent', phase: 'Succeeded' }, 22, 'default/web')).toThrow('VM default/web is not running (domain Absent, phase Succeeded)');
    expect(() => hostPortFor({ ...running, ports: [] }, 22, 'default/web')).toThrow(/forwards no ports: .*add ports: \[\{ port: 22 \}\]/);
    expect(() => hostPortFor(running, 53, 'default/web')).toThrow('port 53 of VM default/web is not declared (declared: 22)');
    expect(() => hostPortFor(running, 9090, 'default/web')).toThrow(/port 9090 .* not declared/);
  });
});

describe('ssh', () => {
  const self = ['/usr/bin/node', '/opt/virtops/cli/bin.js'];

  it('runs ssh with port-forward --stdio as ProxyCommand and a per-VM host key alias', () => {
    expect(sshArgs('debian@prod/web', ['cloud-init', 'status'], { port: '22', identityFile: '/k ey', sshOpt: ['StrictHostKeyChecking=no'] }, self)).toEqual([
      '-o', 'ProxyCommand=/usr/bin/node /opt/virtops/cli/bin.js port-forward --stdio -n prod prod/web 22',
      '-o', 'HostKeyAlias=vmi/web.prod',
      '-i', '/k ey',
      '-l', 'debian',
      '-o', 'StrictHostKeyChecking=no',
      'web', '--', 'cloud-init', 'status',
    ]);
  });

  it('passes -l and the connection options through; quotes for the shell', () => {
    const a = sshArgs('web', [], { port: '2222', username: 'root', namespace: 'default', stateDir: "/var/lib/it's" }, self);
    expect(a[1]).toBe("ProxyCommand=/usr/bin/node /opt/virtops/cli/bin.js port-forward --stdio -n default default/web 2222 --state-dir '/var/lib/it'\\''s'");
    expect(a.slice(4)).toEqual(['-l', 'root', 'web']);
    expect(shellQuote('a b')).toBe("'a b'");
  });
});
