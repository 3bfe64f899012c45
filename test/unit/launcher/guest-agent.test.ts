/**
 * The guest agent's pure parts: agent replies → GuestInfo (launcher/guest-agent-status.ts),
 * GuestInfo → VMI status fields (reconciler/core/status.ts vmiGuestStatus), accessCredentials
 * (launcher/access-credentials.ts), the cloud-init meta-data that carries their keys, the
 * single-host VMI row (cli/local-access.ts localVmi), and the poller against a fake agent
 * client (named as such: a stand-in for virsh qemu-agent-command).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  agentChannelState, domainNics, interfacesStatus, parseAgentInterfaces, parseHostName, parseOsInfo, parseUsers, primaryIp, type GuestInfo,
} from '../../../launcher/guest-agent-status.js';
import { BLIND_SKIP_MAX, blindSkipAfter, GuestAgentWatcher, type GuestAgentClient } from '../../../launcher/guest-agent.js';
import { agentSshKeyRequests, checkAccessCredentials, metadataKeySources, publicKeysOf } from '../../../launcher/access-credentials.js';
import { configDriveLayout, noCloudLayout } from '../../../launcher/volumes/cloud-init.js';
import { computeVmStatus, vmiGuestStatus } from '../../../reconciler/core/status.js';
import { launcherPhase } from '../../../reconciler/core/launcher-phase.js';
import { localVmi } from '../../../cli/local-access.js';
import { formatVmiRows } from '../../../cli/cluster-format.js';
import { vmiStatusFor as clusterVmiStatus } from '../../../reconciler/cluster/agent-status.js';
import { observeInstance } from '../../../reconciler/cluster/instances.js';
import YAML from 'yaml';

const MAC = '02:00:00:1a:2b:3c';
const DOMAIN_XML = `<domain><devices>
  <interface type='user'><mac address='${MAC.toUpperCase()}'/><model type='virtio'/><alias name='ua-default'/></interface>
  <interface type='bridge'><mac address='02:00:00:00:00:09'/><alias name='net1'/></interface>
</devices></domain>`;

/** A reply as Debian 12's qemu-guest-agent 7.2 sends it. */
const IFACES = {
  return: [
    { name: 'lo', 'hardware-address': '00:00:00:00:00:00', 'ip-addresses': [{ 'ip-address-type': 'ipv4', 'ip-address': '127.0.0.1', prefix: 8 }] },
    {
      name: 'enp1s0', 'hardware-address': MAC,
      'ip-addresses': [
        { 'ip-address-type': 'ipv6', 'ip-address': 'fe80::ff:fe1a:2b3c', prefix: 64 },
        { 'ip-address-type': 'ipv6', 'ip-address': 'fec0::ff:fe1a:2b3c', prefix: 64 },
        { 'ip-address-type': 'ipv4', 'ip-address': '10.0.2.15', prefix: 24 },
      ],
      statistics: { 'rx-bytes': 1 },
    },
    { name: 'docker0', 'hardware-address': '02:42:00:00:00:01', 'ip-addresses': [{ 'ip-address-type': 'ipv4', 'ip-address': '172.17.0.1', prefix: 16 }] },
    { name: 'dummy0', 'hardware-address': '02:42:00:00:00:02' },
  ],
};
const OSINFO = {
  return: {
    name: 'Debian GNU/Linux', 'kernel-release': '6.1.0-28-cloud-amd64', version: '12 (bookworm)', 'pretty-name': 'Debian GNU/Linux 12 (bookworm)',
    'version-id': '12', 'kernel-version': '#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)', machine: 'x86_64', id: 'debian',
  },
};

describe('agent replies → guest info', () => {
  it('domain NICs: MAC and spec name from the ua- alias; others left out', () => {
    expect(domainNics(DOMAIN_XML)).toEqual([{ name: 'default', mac: MAC }]);
  });

  it('interfaces: loopback left out, IPv4 first, link-local IPv6 dropped', () => {
    expect(parseAgentInterfaces(IFACES).map((n) => n.name)).toEqual(['enp1s0', 'docker0', 'dummy0']);
    expect(interfacesStatus(domainNics(DOMAIN_XML), IFACES)).toEqual([
      { name: 'default', mac: MAC, interfaceName: 'enp1s0', ipAddress: '10.0.2.15', ipAddresses: ['10.0.2.15', 'fec0::ff:fe1a:2b3c'], infoSource: 'domain, guest-agent' },
      { interfaceName: 'docker0', mac: '02:42:00:00:00:01', ipAddress: '172.17.0.1', ipAddresses: ['172.17.0.1'], infoSource: 'guest-agent' },
    ]);
  });

  it('without the agent the domain NICs stand alone', () => {
    expect(interfacesStatus(domainNics(DOMAIN_XML), undefined)).toEqual([{ name: 'default', mac: MAC, infoSource: 'domain' }]);
  });

  it('OS info, hostname and users in KubeVirt\'s field names', () => {
    expect(parseOsInfo(OSINFO)).toEqual({
      id: 'debian', name: 'Debian GNU/Linux', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12 (bookworm)', versionId: '12',
      kernelRelease: '6.1.0-28-cloud-amd64', kernelVersion: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)', machine: 'x86_64',
    });
    expect(parseHostName({ return: { 'host-name': 'web' } })).toBe('web');
    expect(parseUsers({ return: [{ user: 'debian', 'login-time': 1733300000.5 }, { nope: 1 }] })).toEqual([{ userName: 'debian', loginTime: 1733300000.5 }]);
  });

  it('the agent channel\'s state from the live XML', () => {
    const ch = (state?: string) => `<domain><devices><channel type='unix'><source mode='bind' path='/s/ga0'/><target type='virtio' name='org.qemu.guest_agent.0'${state ? ` state='${state}'` : ''}/><alias name='channel0'/></channel></devices></domain>`;
    expect(agentChannelState(ch('connected'))).toBe(true);
    expect(agentChannelState(ch('disconnected'))).toBe(false);
    expect(agentChannelState(ch())).toBeUndefined();
    expect(agentChannelState(DOMAIN_XML)).toBeUndefined();
  });

  it('malformed replies are ignored, never thrown', () => {
    for (const bad of [null, 42, 'x', { return: 'x' }, { return: [null, 1, { name: 5 }] }, { error: { class: 'GenericError' } }]) {
      expect(parseAgentInterfaces(bad)).toEqual([]);
      expect(parseOsInfo(bad)).toBeUndefined();
      expect(parseUsers(bad)).toEqual([]);
    }
  });
});

describe('guest info → VMI status', () => {
  const guest: GuestInfo = { agentConnected: true, interfaces: interfacesStatus(domainNics(DOMAIN_XML), IFACES), guestOSInfo: parseOsInfo(OSINFO)! };

  it('interfaces, guestOSInfo and AgentConnected=True while the agent answers; times kept while the status holds', () => {
    const a = vmiGuestStatus(guest, undefined, '2026-12-04T10:00:00.000Z');
    expect(a.interfaces?.[0]?.ipAddress).toBe('10.0.2.15');
    expect(a.guestOSInfo?.id).toBe('debian');
    expect(a.conditions).toEqual([{ type: 'AgentConnected', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-12-04T10:00:00.000Z' }]);
    const b = vmiGuestStatus(guest, a.conditions, '2026-12-04T10:05:00.000Z');
    expect(b.conditions[0]!.lastTransitionTime).toBe('2026-12-04T10:00:00.000Z');
    expect(primaryIp(guest)).toBe('10.0.2.15');
  });

  it('no agent (the busybox guest): NICs from the domain only, no AgentConnected, no guestOSInfo', () => {
    const r = vmiGuestStatus({ agentConnected: false, interfaces: interfacesStatus(domainNics(DOMAIN_XML), undefined) }, undefined, '2026-12-04T10:00:00.000Z');
    expect(r).toEqual({ interfaces: [{ name: 'default', mac: MAC, infoSource: 'domain' }], conditions: [] });
    expect(vmiGuestStatus(undefined, undefined, 'x')).toEqual({ conditions: [] });
  });

  it('the launcher phase carries the guest through to both modes', () => {
    const p = launcherPhase({ reachable: true, info: { phase: 'Running', paused: false, guest } }, { now: 0, lastContact: 0, logFile: 'l' });
    expect(p.guest).toBe(guest);
    expect(p.agentConnected).toBe(true);
  });

  it('the VM mirrors AgentConnected (KubeVirt copies it from the VMI)', () => {
    const vm = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'web', namespace: 'default' }, spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {} } } } } } as never;
    const live = { uid: 'u', phase: 'Running' as const, ready: true, spec: { domain: { devices: {} } }, createdAt: 0 };
    const ctx = { now: 1000 } as never;
    expect(computeVmStatus(vm, { ...live, agentConnected: true }, ctx).conditions?.map((c) => c.type)).toEqual(['Ready', 'AgentConnected']);
    expect(computeVmStatus(vm, live, ctx).conditions?.map((c) => c.type)).toEqual(['Ready']);
  });

  it('cluster: the agent\'s VMI status carries interfaces, guestOSInfo and AgentConnected once its view has the guest', () => {
    const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'web', namespace: 'default' }, spec: { domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }] } } } } as never;
    const before = clusterVmiStatus(vmi, { reachable: true, phase: 'Running', paused: false }, 'node1', new Date('2026-12-04T10:00:00Z'));
    expect(before.status.interfaces).toEqual([{ name: 'default' }]);
    const after = clusterVmiStatus(vmi, { reachable: true, phase: 'Running', paused: false, guest }, 'node1', new Date('2026-12-04T10:00:10Z'));
    expect(after.status.interfaces?.[0]).toMatchObject({ name: 'default', ipAddress: '10.0.2.15', infoSource: 'domain, guest-agent' });
    expect(after.status.guestOSInfo?.id).toBe('debian');
    expect(after.status.conditions?.find((c) => c.type === 'AgentConnected')?.status).toBe('True');
    expect(after.signature).not.toBe(before.signature); // written again when the guest shows up
    // ... and the controller's view of that VMI says the agent answers (the VM mirrors it).
    const observed = observeInstance({ ...(vmi as object), metadata: { name: 'web', namespace: 'default', uid: 'u1', creationTimestamp: '2026-12-04T10:00:00Z' }, status: after.status } as never, undefined, Date.parse('2026-12-04T10:00:20Z'));
    expect(observed?.agentConnected).toBe(true);
  });

  it('single host: get vmis shows the agent-reported IP', () => {
    const view = { namespace: 'default', name: 'web', firstSeen: '', inGit: true, status: undefined, events: [], instance: { uid: 'u1', createdAt: '2026-12-04T09:00:00.000Z', domain: 'default_web', socket: '/s', console: '/c', serialLog: '', launcherLog: '', podDir: '' } };
    const info = { phase: 'Running', paused: false, guest } as unknown as Parameters<typeof localVmi>[1];
    const vmi = localVmi(view as unknown as Parameters<typeof localVmi>[0], info, 'host1', '2026-12-04T10:00:00.000Z');
    expect(vmi.status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=True', 'AgentConnected=True']);
    const text = formatVmiRows([vmi], { wide: false, now: Date.parse('2026-12-04T10:00:00.000Z'), allNamespaces: false });
    expect(text.split('\n')[1]).toMatch(/^web\s+60m\s+Running\s+10\.0\.2\.15\s+host1\s+True/);
    const unreachable = localVmi(view as unknown as Parameters<typeof localVmi>[0], undefined, 'host1', 'x');
    expect(unreachable.status?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'LauncherUnreachable' });
  });
});

describe('accessCredentials', () => {
  const cred = (propagationMethod: object, secretName = 'my-keys') => ({ sshPublicKey: { source: { secret: { secretName } }, propagationMethod } });

  it('sorts the entries by propagation method', () => {
    const spec = { accessCredentials: [cred({ noCloud: {} }), cred({ qemuGuestAgent: { users: ['debian', 'root'] } }, 'agent-keys'), cred({ configDrive: {} }, 'cd')] } as never;
    expect(metadataKeySources(spec, 'noCloud')).toEqual([{ secretName: 'my-keys', method: 'noCloud', field: 'spec.accessCredentials[0].sshPublicKey.source.secret.secretName' }]);
    expect(metadataKeySources(spec, 'configDrive').map((k) => k.secretName)).toEqual(['cd']);
    expect(agentSshKeyRequests(spec)).toEqual([{ secretName: 'agent-keys', users: ['debian', 'root'], field: 'spec.accessCredentials[1].sshPublicKey.source.secret.secretName' }]);
  });

  it.each<[string, object, RegExp]>([
    ['no method', cred({}), /accessCredentials\[0\]\.sshPublicKey\.propagationMethod: sets no method\. Fix: set exactly one of/],
    ['two methods', cred({ noCloud: {}, configDrive: {} }), /sets noCloud and configDrive/],
    ['agent without users', cred({ qemuGuestAgent: { users: [] } }), /qemuGuestAgent\.users: \[\] is not a list of guest user names\. Fix: list the guest users/],
    ['bad secret name', cred({ noCloud: {} }, 'My_Keys'), /secret\.secretName: "My_Keys" is not a Secret name/],
    ['userPassword', { userPassword: {} }, /userPassword: userPassword credentials are not supported by virtops\. Fix: set the password with cloud-init/],
  ])('refuses %s, naming the field and the fix', (_what, entry, re) => {
    expect(() => checkAccessCredentials({ accessCredentials: [entry] } as never)).toThrow(re);
  });

  it('every key of the Secret, one key a line, no blanks, comments or repeats', () => {
    expect(publicKeysOf({ b: Buffer.from('ssh-ed25519 BBB b@x\n'), a: 'ssh-ed25519 AAA a@x\n\n# old\r\nssh-rsa CCC c@x\nssh-ed25519 BBB b@x' }))
      .toEqual(['ssh-ed25519 AAA a@x', 'ssh-rsa CCC c@x', 'ssh-ed25519 BBB b@x']);
  });

  it('the keys ride in the cloud-init meta-data (NoCloud public-keys, ConfigDrive public_keys)', () => {
    const data = { instanceId: 'i-1', hostname: 'web', userData: '#cloud-config\n', publicKeys: ['ssh-ed25519 AAA a@x', 'ssh-rsa "odd" key'] };
    const meta = YAML.parse(noCloudLayout(data).files['meta-data'] as string) as Record<string, unknown>;
    expect(meta).toEqual({ 'instance-id': 'i-1', 'local-hostname': 'web', 'public-keys': { 0: 'ssh-ed25519 AAA a@x', 1: 'ssh-rsa "odd" key' } });
    expect(noCloudLayout(data).files['user-data']).toBe('#cloud-config\n');
    const cd = JSON.parse(configDriveLayout(data).files['openstack/latest/meta_data.json'] as string) as Record<string, unknown>;
    expect(cd['public_keys']).toEqual({ 0: 'ssh-ed25519 AAA a@x', 1: 'ssh-rsa "odd" key' });
    expect(noCloudLayout({ instanceId: 'i', hostname: 'h' }).files['meta-data']).toBe('instance-id: i\nlocal-hostname: h\n');
  });
});

describe('GuestAgentWatcher (fake agent client)', () => {
  function fakeClient(state: { up: boolean; calls: string[] }): GuestAgentClient {
    return {
      async command(_d, execute, args) {
        state.calls.push(args ? `${execute} ${JSON.stringify(args)}` : execute);
        if (!state.up) throw new Error('Guest agent is not responding: QEMU guest agent is not connected');
        if (execute === 'guest-network-get-interfaces') return IFACES;
        if (execute === 'guest-get-osinfo') return OSINFO;
        if (execute === 'guest-get-host-name') return { return: { 'host-name': 'web' } };
        if (execute === 'guest-get-users') return { return: [] };
        return { return: {} };
      },
      async shutdown() {},
    };
  }

  it('reports connect and disconnect, reads OS info on connect, retries the connect work until it succeeds', async () => {
    const state = { up: false, calls: [] as string[] };
    const changes: string[] = [];
    let connectTries = 0;
    const w = new GuestAgentWatcher({
      client: fakeClient(state), domain: 'default_web', log: pino({ level: 'silent' }),
      domainXml: async () => DOMAIN_XML.replace('</devices>', `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='${state.up ? 'connected' : 'disconnected'}'/></channel></devices>`),
      onChange: (_i, what) => changes.push(what),
      onConnect: async () => {
        if (++connectTries < 2) throw new Error('user does not exist yet');
      },
    });
    await w.poll();
    expect(w.info()).toEqual({ agentConnected: false, interfaces: [{ name: 'default', mac: MAC, infoSource: 'domain' }] });
    expect(state.calls).toEqual([]); // the channel is closed: virsh is not even asked
    state.up = true;
    await w.poll();
    expect(w.connected).toBe(true);
    expect(w.info().guestOSInfo?.id).toBe('debian');
    expect(w.info().hostname).toBe('web');
    expect(connectTries).toBe(1);
    await w.poll();
    expect(connectTries).toBe(2);
    await w.poll();
    expect(connectTries).toBe(2); // done once per connection
    state.up = false;
    await w.poll();
    expect(w.connected).toBe(false);
    expect(changes).toEqual(['connected', 'disconnected']);
    w.stop();
  });

  it('when libvirt does not say whether the channel is open, refused asks back off (7, 15, then BLIND_SKIP_MAX polls skipped) and a reply resets it', async () => {
    expect([1, 2, 3, 4, 20].map(blindSkipAfter)).toEqual([7, 15, 31, 31, BLIND_SKIP_MAX]);
    const state = { up: false, calls: [] as string[] };
    const w = new GuestAgentWatcher({
      client: fakeClient(state), domain: 'default_web', log: pino({ level: 'silent' }),
      // A channel without state= (libvirt's test driver reports none).
      domainXml: async () => DOMAIN_XML.replace('</devices>', `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices>`),
      onChange: () => undefined,
    });
    for (let i = 0; i < 24; i++) await w.poll();
    // Asked at polls 1, 9 (7 skipped) and 25 would be next (15 skipped): 2 asks in 24 polls, not 24.
    expect(state.calls).toEqual(Array(2).fill('guest-network-get-interfaces'));
    state.up = true;
    await w.poll(); // poll 25: asked and answered
    expect(w.connected).toBe(true);
    await w.poll(); // the first poll after connecting also re-reads OS info
    state.calls.length = 0;
    await w.poll();
    await w.poll();
    expect(state.calls).toEqual(['guest-network-get-interfaces', 'guest-network-get-interfaces']); // connected: asked every poll again
    w.stop();
  });
});
