import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { toYaml } from '../../../api/yaml-compat.js';
import { CloudConfig, findPlaintextSecrets, findPlaintextSecretsParsed, mayHoldPlaintextSecret, NetworkConfig } from '../../../dsl/index.js';

describe('CloudConfig', () => {
  it('renders a #cloud-config document that parses back to the typed keys', () => {
    const config = new CloudConfig({
      hostname: 'web',
      users: [{ name: 'ops', sudo: 'ALL=(ALL) NOPASSWD:ALL', groups: ['wheel', 'adm'], shell: '/bin/bash', lockPasswd: true, sshAuthorizedKeys: ['ssh-ed25519 AAAA ops'] }],
      sshAuthorizedKeys: ['ssh-ed25519 BBBB admin'],
      packages: ['nginx'],
      packageUpdate: true,
      writeFiles: [{ path: '/etc/motd', content: 'hello: world\n', permissions: '0644', owner: 'root:root' }],
      bootcmd: ['echo boot'],
      runcmd: ['systemctl enable --now nginx', ['touch', '/tmp/done']],
      extra: { timezone: 'Europe/Berlin', 'virtops-marker': 'x' },
    });
    config.addPackage('curl').addRunCommand('echo late').set('ntp', { enabled: true });
    const text = config.render();
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    expect(parse(text)).toEqual({
      hostname: 'web',
      users: ['default', { name: 'ops', groups: 'wheel, adm', shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: true, ssh_authorized_keys: ['ssh-ed25519 AAAA ops'] }],
      ssh_authorized_keys: ['ssh-ed25519 BBBB admin'],
      package_update: true,
      packages: ['nginx', 'curl'],
      write_files: [{ path: '/etc/motd', content: 'hello: world\n', owner: 'root:root', permissions: '0644' }],
      bootcmd: ['echo boot'],
      runcmd: ['systemctl enable --now nginx', ['touch', '/tmp/done'], 'echo late'],
      ntp: { enabled: true },
      timezone: 'Europe/Berlin',
      'virtops-marker': 'x',
    });
  });

  it('orders keys deterministically: typed keys first, extra keys sorted', () => {
    const a = new CloudConfig({ extra: { zeta: 1, alpha: 2 }, packages: ['p'] }).render();
    const b = new CloudConfig({ packages: ['p'] }).set('alpha', 2).set('zeta', 1).render();
    expect(a).toBe(b);
    expect(a).toBe('#cloud-config\npackages:\n  - p\nalpha: 2\nzeta: 1\n');
  });

  it('writes a top-level marker line the test guest can grep', () => {
    expect(new CloudConfig({ extra: { 'virtops-marker': 'hello-from-git' } }).render().split('\n')).toContain('virtops-marker: hello-from-git');
  });

  it('omits the default user when keepDefaultUser is false, and users when none are given', () => {
    expect(parse(new CloudConfig({ keepDefaultUser: false, users: [{ name: 'a' }] }).render()).users).toEqual([{ name: 'a' }]);
    expect(new CloudConfig({}).render()).toBe('#cloud-config\n{}\n');
  });

  it('rejects extra keys the builder types, naming the key and the fix', () => {
    expect(() => new CloudConfig({ extra: { packages: ['x'] } })).toThrow(/'packages' is a typed key.*Fix/);
    expect(() => new CloudConfig().set('runcmd', [])).toThrow(/'runcmd'/);
  });

  it('does not fold long lines (stable diffs)', () => {
    const long = 'x'.repeat(300);
    expect(new CloudConfig({ runcmd: [`echo ${long}`] }).render()).toContain(`- echo ${long}\n`);
  });
});

describe('CloudConfig rendering cache', () => {
  it('gives the same text as rendering afresh, also for values whose JSON is shared by others', () => {
    const afresh = (doc: Record<string, unknown>): string => `#cloud-config\n${toYaml(doc, { lineWidth: 0, minContentWidth: 0 })}`;
    // Each pair has the same JSON; the yaml package writes the two differently.
    const pairs: Array<[unknown, unknown]> = [[new Date(0), '1970-01-01T00:00:00.000Z'], [-0, 0], [{ a: undefined, b: 1 }, { b: 1 }], [Number.NaN, null]];
    for (const [odd, plain] of pairs) {
      for (const value of [plain, odd, plain]) {
        const config = new CloudConfig({ hostname: 'h', extra: { value } });
        expect(config.render()).toBe(afresh(config.toObject()));
      }
    }
    const one = new CloudConfig({ hostname: 'same', runcmd: ['echo 1'] });
    expect(one.render()).toBe(one.render());
    one.addRunCommand('echo 2');
    expect(parse(one.render()).runcmd).toEqual(['echo 1', 'echo 2']);
  });
});

describe('NetworkConfig', () => {
  it('renders version 2 with netplan key names', () => {
    const config = new NetworkConfig()
      .addEthernet('nic1', { match: { macAddress: '02:00:00:00:00:01' }, setName: 'eth1', addresses: ['10.0.0.5/24'], gateway4: '10.0.0.1', nameservers: { addresses: ['10.0.0.53'], search: ['lab'] }, mtu: 1400 })
      .addEthernet('eth0', { dhcp4: true });
    expect(parse(config.render())).toEqual({
      version: 2,
      ethernets: {
        eth0: { dhcp4: true },
        nic1: { match: { macaddress: '02:00:00:00:00:01' }, 'set-name': 'eth1', addresses: ['10.0.0.5/24'], gateway4: '10.0.0.1', nameservers: { addresses: ['10.0.0.53'], search: ['lab'] }, mtu: 1400 },
      },
    });
  });

  it('NetworkConfig.dhcp is DHCPv4 on one device', () => {
    expect(NetworkConfig.dhcp('enp1s0').toObject()).toEqual({ version: 2, ethernets: { enp1s0: { dhcp4: true } } });
  });
});

describe('findPlaintextSecrets', () => {
  it.each([
    ['the seed document\'s user-data', 'password: changeme\nchpasswd: { expire: False }\n', ['password']],
    ['a user passwd', '#cloud-config\nusers:\n  - name: a\n    passwd: $6$hash\n', ['users[0].passwd']],
    ['plain_text_passwd', '#cloud-config\nusers:\n  - default\n  - name: a\n    plain_text_passwd: pw\n', ['users[1].plain_text_passwd']],
    ['chpasswd list', '#cloud-config\nchpasswd:\n  list: |\n    root:pw\n', ['chpasswd.list']],
    ['chpasswd users', '#cloud-config\nchpasswd:\n  users:\n    - name: root\n      password: pw\n', ['chpasswd.users[0].password']],
    ['chpasswd in runcmd', '#cloud-config\nruncmd:\n  - echo root:pw | chpasswd\n', ['runcmd[0]']],
    ['a shell script', '#!/bin/sh\necho "root:pw" | chpasswd\n', ['chpasswd command']],
    ['passwd --stdin', '#!/bin/sh\necho pw | passwd --stdin root\n', ['passwd --stdin command']],
  ])('finds %s', (_what, text, found) => {
    expect(findPlaintextSecrets(text)).toEqual(found);
  });

  it.each([
    ['chpasswd expire only', '#cloud-config\nchpasswd: { expire: false }\n'],
    ['ssh keys only', '#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA\n'],
    ['an empty password key', '#cloud-config\npassword: ""\n'],
    ['a marker', '#cloud-config\nvirtops-marker: hello-from-git\n'],
    ['a harmless script', '#!/bin/sh\necho hello\n'],
  ])('finds nothing in %s', (_what, text) => {
    expect(findPlaintextSecrets(text)).toEqual([]);
  });

  // The pre-check (mayHoldPlaintextSecret) must never change a result: both paths, same answer.
  const secretCases = [
    'password: changeme\n',
    '#cloud-config\nusers:\n  - name: a\n    passwd: $6$hash\n',
    '#cloud-config\nchpasswd:\n  list: |\n    root:pw\n',
    '#cloud-config\nruncmd:\n  - echo root:pw | chpasswd\n',
    '#!/bin/sh\nPASSWORD = hunter2\n',
    '#cloud-config\nPassWord: x\n',
    // Escapes in double-quoted YAML spell a key the text does not contain literally.
    '#cloud-config\n"p\\x61ssword": pw\n',
    '#cloud-config\n"pass\\u0077d": pw\n',
    '#cloud-config\nruncmd:\n  - "echo root:pw | chpa\\\n    sswd"\n',
    '#cloud-config\nruncmd:\n  - "echo root:pw | ch\\x70asswd"\n',
    // Folding joins lines with a space, never directly: nothing to find.
    '#cloud-config\nruncmd:\n  - echo pass\n    word\n',
    '#cloud-config\nhostname: vm-1\nruncmd: [echo vm-1]\n',
    '#!/bin/sh\necho hello\n',
    '',
  ];
  it.each(secretCases)('pre-checked and parsed paths agree on %j', (text) => {
    expect(findPlaintextSecrets(text)).toEqual(findPlaintextSecretsParsed(text));
  });

  it('finds keys spelled with escapes, which the pre-check lets through', () => {
    expect(findPlaintextSecrets('#cloud-config\n"p\\x61ssword": pw\n')).toEqual(['password']);
    expect(findPlaintextSecrets('#cloud-config\nruncmd:\n  - "echo root:pw | chpa\\\n    sswd"\n')).toEqual(['runcmd[0]']);
  });

  it('skips the parse only for text without "passw" (any case) and without a backslash', () => {
    expect(mayHoldPlaintextSecret('#cloud-config\nhostname: vm-1\n')).toBe(false);
    expect(mayHoldPlaintextSecret('#!/bin/sh\nPASSWD=x\n')).toBe(true);
    expect(mayHoldPlaintextSecret('"a\\x41": b')).toBe(true);
  });
});
