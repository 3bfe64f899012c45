import { createPrivateKey, createPublicKey, createSign, createVerify } from 'node:crypto';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  builtinUsers,
  renderKubeconfig,
  renderTokenFile,
  serviceAccountKeyPair,
  validateExtraUsers,
} from '../../../../reconciler/cluster/testenv/credentials.js';
import { apiserverArgs, controllerManagerArgs, etcdArgs, schedulerArgs, type Ports } from '../../../../reconciler/cluster/testenv/flags.js';
import { layoutOf } from '../../../../reconciler/cluster/testenv/layout.js';
import { defaultBinDir, parseVersionsEnv } from '../../../../reconciler/cluster/testenv/versions.js';

const ports: Ports = { etcdClient: 2001, etcdPeer: 2002, apiserver: 2003, controllerManager: 2004, scheduler: 2005 };
const l = layoutOf('/t/env');
const flag = (args: string[], name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

describe('versions.env', () => {
  it.each([
    ['K8S_VERSION=v1.37.2\nETCD_VERSION=v3.6.16\n', { kubernetes: 'v1.37.2', etcd: 'v3.6.16' }],
    ['# comment\n K8S_VERSION = v1.36.3 \n\nETCD_VERSION=v3.6.0', { kubernetes: 'v1.36.3', etcd: 'v3.6.0' }],
  ])('parses %j', (text, expected) => expect(parseVersionsEnv(text)).toEqual(expected));

  it.each([
    ['ETCD_VERSION=v3.6.16', /K8S_VERSION must be set.*got nothing/],
    ['K8S_VERSION=1.37.2\nETCD_VERSION=v3.6.16', /K8S_VERSION .*got 1\.37\.2/],
    ['K8S_VERSION=v1.37.2\nETCD_VERSION=latest', /ETCD_VERSION .*v3\.6\.16.*got latest/],
  ])('rejects %j naming the key', (text, message) => expect(() => parseVersionsEnv(text)).toThrow(message));

  it('keys the cache dir by both versions, honouring VIRTOPS_CACHE', () => {
    const v = { kubernetes: 'v1.37.2', etcd: 'v3.6.16' };
    expect(defaultBinDir(v, { VIRTOPS_CACHE: '/c' })).toBe('/c/kube/v1.37.2-v3.6.16');
    expect(defaultBinDir(v, { HOME: '/home/u' })).toBe('/home/u/.cache/virtops/kube/v1.37.2-v3.6.16');
  });
});

describe('flags', () => {
  it('etcd: loopback client and peer URLs, a cluster list naming itself, no fsync', () => {
    const args = etcdArgs(l, ports);
    expect(flag(args, 'listen-client-urls')).toBe('http://127.0.0.1:2001');
    expect(flag(args, 'advertise-client-urls')).toBe('http://127.0.0.1:2001');
    expect(flag(args, 'listen-peer-urls')).toBe('http://127.0.0.1:2002');
    expect(flag(args, 'initial-cluster')).toBe('testenv=http://127.0.0.1:2002');
    expect(flag(args, 'data-dir')).toBe('/t/env/etcd');
    expect(args).toContain('--unsafe-no-fsync');
  });

  it('kube-apiserver: loopback, token auth, RBAC, service-account keys, no ServiceAccount admission', () => {
    const args = apiserverArgs(l, ports);
    expect(args[0]).toBe('kube-apiserver');
    expect(flag(args, 'etcd-servers')).toBe('http://127.0.0.1:2001');
    expect(flag(args, 'bind-address')).toBe('127.0.0.1');
    expect(flag(args, 'secure-port')).toBe('2003');
    expect(flag(args, 'authorization-mode')).toBe('Node,RBAC');
    expect(flag(args, 'token-auth-file')).toBe('/t/env/pki/tokens.csv');
    expect(flag(args, 'service-account-key-file')).toBe('/t/env/pki/sa.pub');
    expect(flag(args, 'service-account-signing-key-file')).toBe('/t/env/pki/sa.key');
    expect(flag(args, 'service-account-issuer')).toBe('https://127.0.0.1:2003');
    expect(flag(args, 'disable-admission-plugins')).toBe('ServiceAccount');
    expect(flag(args, 'service-cluster-ip-range')).toBe('10.0.0.0/24');
    expect(flag(args, 'allow-privileged')).toBe('true');
  });

  it.each([
    ['kube-controller-manager', controllerManagerArgs(l, ports, ['*', '-nodelifecycle']), '2004'],
    ['kube-scheduler', schedulerArgs(l, ports), '2005'],
  ])('%s: own kubeconfig, no leader election, loopback health port', (name, args, port) => {
    expect(args[0]).toBe(name);
    expect(flag(args, 'kubeconfig')).toBe(`/t/env/${name}.kubeconfig`);
    expect(flag(args, 'leader-elect')).toBe('false');
    expect(flag(args, 'bind-address')).toBe('127.0.0.1');
    expect(flag(args, 'secure-port')).toBe(port);
  });

  it('kube-controller-manager: chosen controllers, per-controller credentials signed with our key', () => {
    const args = controllerManagerArgs(l, ports, ['*', '-nodelifecycle']);
    expect(flag(args, 'controllers')).toBe('*,-nodelifecycle');
    expect(flag(args, 'use-service-account-credentials')).toBe('true');
    expect(flag(args, 'service-account-private-key-file')).toBe('/t/env/pki/sa.key');
    expect(flag(args, 'root-ca-file')).toBe('/t/env/pki/apiserver/apiserver.crt');
  });
});

describe('credentials', () => {
  it('renders the token file with quoted group lists', () => {
    const text = renderTokenFile([
      { name: 'admin', token: 't1', groups: ['system:masters'] },
      { name: 'bob', token: 't2', groups: ['a', 'b'] },
      { name: 'system:kube-scheduler', token: 't3', groups: [] },
    ]);
    expect(text).toBe('t1,admin,admin,"system:masters"\nt2,bob,bob,"a,b"\nt3,system:kube-scheduler,system:kube-scheduler,""\n');
  });

  it('built-in users: admin in system:masters, the components under their bootstrap RBAC names, distinct tokens', () => {
    const users = builtinUsers();
    expect(users.map((u) => [u.name, u.groups])).toEqual([
      ['admin', ['system:masters']],
      ['system:kube-controller-manager', []],
      ['system:kube-scheduler', []],
    ]);
    expect(new Set(users.map((u) => u.token)).size).toBe(3);
    for (const u of users) expect(u.token).toMatch(/^[0-9a-f]{48}$/);
  });

  it.each([
    [[{ name: 'alice', groups: ['devs'] }], []],
    [[{ name: 'Alice' }], ['users[0].name: "Alice" must be lower-case']],
    [[{ name: 'admin' }], ['users[0].name: "admin" is already defined']],
    [[{ name: 'x' }, { name: 'x' }], ['users[1].name: "x" is already defined']],
    [[{ name: 'x', groups: ['a,b'] }], ['users[0].groups[0]: "a,b" must be non-empty without commas']],
  ])('validates extra users %j', (users, messages) => {
    const errors = validateExtraUsers(users, ['admin']);
    expect(errors).toHaveLength(messages.length);
    messages.forEach((m, i) => expect(errors[i]).toContain(m));
  });

  it('renders a one-context bearer-token kubeconfig', () => {
    const kc = parse(renderKubeconfig({ server: 'https://127.0.0.1:1', caFile: '/ca.crt', user: 'system:serviceaccount:ns:sa', token: 'tok' }));
    expect(kc).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'testenv', cluster: { server: 'https://127.0.0.1:1', 'certificate-authority': '/ca.crt' } }],
      users: [{ name: 'system:serviceaccount:ns:sa', user: { token: 'tok' } }],
      contexts: [{ name: 'system:serviceaccount:ns:sa@testenv', context: { cluster: 'testenv', user: 'system:serviceaccount:ns:sa' } }],
      'current-context': 'system:serviceaccount:ns:sa@testenv',
    });
  });

  it('generates a matching RSA key pair for service-account tokens', () => {
    const { privateKeyPem, publicKeyPem } = serviceAccountKeyPair();
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const signature = createSign('sha256').update('x').sign(createPrivateKey(privateKeyPem));
    expect(createVerify('sha256').update('x').verify(createPublicKey(publicKeyPem), signature)).toBe(true);
  });
});
