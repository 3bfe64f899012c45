import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import type { ConversionContext } from '../../../launcher/convert/context.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { convertInterfaces, declaredPodPorts, derivedMac, portForwardsInDomainXml } from '../../../launcher/convert/interfaces.js';
import { convertVmi } from '../../../launcher/convert/convert.js';
import { conversionError, ctx, schemaProblems, vmi } from './helpers.js';

const UUID = '11111111-2222-4333-8444-555555555555';

function run(
  interfaces: api.Interface[] | undefined,
  networks: api.Network[] | undefined,
  opts: { devices?: Partial<api.Devices>; ctx?: Partial<ConversionContext>; vcpus?: number; diag?: Diagnostics } = {},
) {
  const v = vmi({ domain: { devices: { ...opts.devices, ...(interfaces ? { interfaces } : {}) } }, ...(networks ? { networks } : {}) });
  return convertInterfaces({ spec: v.spec, ctx: ctx(opts.ctx), vcpus: opts.vcpus ?? 1, uuid: UUID }, opts.diag ?? new Diagnostics());
}

const pod = (name = 'default'): api.Network => ({ name, pod: {} });

describe('interfaces', () => {
  it('attaches a default pod interface when nothing is specified (KubeVirt default)', () => {
    expect(run(undefined, undefined).interfaces).toEqual([
      { '@type': 'user', mac: { '@address': derivedMac(UUID, 'default') }, model: { '@type': 'virtio' }, alias: { '@name': 'ua-default' } },
    ]);
    expect(run(undefined, undefined, { devices: { autoattachPodInterface: false } }).interfaces).toEqual([]);
  });

  it.each(['bridge', 'masquerade'])('pod network with %s → user-mode networking', (binding) => {
    const r = run([{ name: 'default', [binding]: {}, macAddress: 'DE-AD-00-00-BE-EF', model: 'e1000e', bootOrder: 2 } as api.Interface], [pod()]);
    expect(r.interfaces[0]).toEqual({
      '@type': 'user',
      mac: { '@address': 'de:ad:00:00:be:ef' },
      model: { '@type': 'e1000e' },
      boot: { '@order': 2 },
      alias: { '@name': 'ua-default' },
    });
    expect(r.bootOrders).toEqual([{ path: 'spec.domain.devices.interfaces[0].bootOrder', order: 2 }]);
  });

  it('pod vmNetworkCIDR becomes the user network range', () => {
    const r = run([{ name: 'default', masquerade: {} }], [{ name: 'default', pod: { vmNetworkCIDR: '10.10.0.0/24', vmIPv6NetworkCIDR: 'fd10:0:2::/120' } }]);
    expect(r.interfaces[0]!.ip).toEqual([
      { '@family': 'ipv4', '@address': '10.10.0.0', '@prefix': 24 },
      { '@family': 'ipv6', '@address': 'fd10:0:2::', '@prefix': 120 },
    ]);
  });

  it('derived MACs are stable, unicast and differ per interface', () => {
    expect(derivedMac(UUID, 'a')).toBe(derivedMac(UUID, 'a'));
    expect(derivedMac(UUID, 'a')).not.toBe(derivedMac(UUID, 'b'));
    expect(derivedMac(UUID, 'a')).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  it('multus networks use the host attachment from the context, else fall back with a warning', () => {
    const diag = new Diagnostics();
    const r = run(
      [{ name: 'default', masquerade: {} }, { name: 'lan', bridge: {} }, { name: 'lab', bridge: {} }, { name: 'other', bridge: {} }],
      [pod(), { name: 'lan', multus: { networkName: 'lan-nad' } }, { name: 'lab', multus: { networkName: 'lab-nad' } }, { name: 'other', multus: { networkName: 'ns/unmapped' } }],
      { ctx: { networks: { 'lan-nad': { type: 'bridge', bridge: 'br0' }, 'lab-nad': { type: 'network', network: 'default' } } }, diag },
    );
    expect(r.interfaces.map((i) => [i['@type'], i.source])).toEqual([
      ['user', undefined],
      ['bridge', { '@bridge': 'br0' }],
      ['network', { '@network': 'default' }],
      ['user', undefined],
    ]);
    expect(diag.warnings).toEqual([expect.stringMatching(/^spec\.networks\[3\]\.multus\.networkName: no host attachment configured for "ns\/unmapped"/)]);
  });

  it('multiqueue on bridged virtio NICs; a warning for user-mode ones', () => {
    const diag = new Diagnostics();
    const r = run(
      [{ name: 'default', masquerade: {} }, { name: 'lan', bridge: {} }],
      [pod(), { name: 'lan', multus: { networkName: 'lan' } }],
      { devices: { networkInterfaceMultiqueue: true }, ctx: { networks: { lan: { type: 'bridge', bridge: 'br0' } } }, vcpus: 4, diag },
    );
    expect(r.interfaces[0]!.driver).toBeUndefined();
    expect(r.interfaces[1]!.driver).toEqual({ '@queues': 4 });
    expect(diag.warnings).toHaveLength(1);
  });

  it('warns about ports and unused networks', () => {
    const diag = new Diagnostics();
    run([{ name: 'default', masquerade: {}, ports: [{ port: 22 }] }], [pod(), { name: 'spare', multus: { networkName: 'x' } }], { diag });
    expect(diag.warnings).toEqual([
      expect.stringMatching(/^spec\.domain\.devices\.interfaces\[0\]\.ports: forwarded only when a launcher starts the VM/),
      'spec.networks[1]: no interface uses network "spare"; it is not attached',
    ]);
  });

  it.each([
    ['no binding', [{ name: 'default' }], [pod()], 'spec.domain.devices.interfaces[0]'],
    ['two bindings', [{ name: 'default', bridge: {}, masquerade: {} }], [pod()], 'spec.domain.devices.interfaces[0]'],
    ['sriov', [{ name: 'default', sriov: {} }], [pod()], 'spec.domain.devices.interfaces[0].sriov'],
    ['no such network', [{ name: 'lan', bridge: {} }], [pod()], 'spec.domain.devices.interfaces[0].name'],
    ['masquerade on multus', [{ name: 'lan', masquerade: {} }], [{ name: 'lan', multus: { networkName: 'x' } }], 'spec.domain.devices.interfaces[0].masquerade'],
    ['bad model', [{ name: 'default', bridge: {}, model: 'virtio-net' }], [pod()], 'spec.domain.devices.interfaces[0].model'],
    ['bad MAC', [{ name: 'default', bridge: {}, macAddress: '02:00:00:00:00' }], [pod()], 'spec.domain.devices.interfaces[0].macAddress'],
    ['multicast MAC', [{ name: 'default', bridge: {}, macAddress: '01:00:5e:00:00:01' }], [pod()], 'spec.domain.devices.interfaces[0].macAddress'],
    ['duplicate name', [{ name: 'default', bridge: {} }, { name: 'default', bridge: {} }], [pod()], 'spec.domain.devices.interfaces[1].name'],
    ['two pod networks', [{ name: 'a', bridge: {} }, { name: 'b', bridge: {} }], [pod('a'), pod('b')], 'spec.networks'],
    ['bad CIDR', [{ name: 'default', bridge: {} }], [{ name: 'default', pod: { vmNetworkCIDR: '10.0.2.0/33' } }], 'spec.networks[0].pod.vmNetworkCIDR'],
    ['neither pod nor multus', [{ name: 'default', bridge: {} }], [{ name: 'default' }], 'spec.networks[0]'],
  ])('rejects %s', (_, interfaces, networks, path) => {
    expect(conversionError(() => run(interfaces as unknown as api.Interface[], networks as api.Network[])).path).toBe(path);
  });

  describe('pod network ports', () => {
    const forwards = [
      { guest: 22, host: 20022, protocol: 'TCP' as const },
      { guest: 53, host: 20053, protocol: 'UDP' as const },
    ];

    it('re-points the NIC at a user netdev with one loopback hostfwd per allocated port', () => {
      const diag = new Diagnostics();
      const r = run(
        [{ name: 'default', masquerade: {}, ports: [{ port: 22 }, { port: 53, protocol: 'UDP' }] }],
        [{ name: 'default', pod: { vmNetworkCIDR: '10.0.2.0/24', vmIPv6NetworkCIDR: 'fd10:0:2::/120' } }],
        { ctx: { podPortForwards: forwards }, diag },
      );
      expect(r.interfaces[0]!['@type']).toBe('user');
      expect(r.qemu).toEqual({
        args: ['-netdev', 'user,id=vo-default,net=10.0.2.0/24,ipv6-prefix=fd10:0:2::,ipv6-prefixlen=120,hostfwd=tcp:127.0.0.1:20022-:22,hostfwd=udp:127.0.0.1:20053-:53'],
        overrides: [{ alias: 'ua-default', netdev: 'vo-default' }],
      });
      expect(diag.warnings).toEqual([]);
      expect(portForwardsInDomainXml(r.qemu!.args[1]!)).toEqual(forwards);
    });

    it('forwards nothing without declared ports (an undeclared port stays closed)', () => {
      expect(run([{ name: 'default', masquerade: {} }], [pod()], { ctx: { podPortForwards: [] } }).qemu).toBeUndefined();
    });

    it('ignores ports on a bridge binding, with a warning', () => {
      const diag = new Diagnostics();
      const r = run([{ name: 'default', bridge: {}, ports: [{ port: 22 }] }], [pod()], { ctx: { podPortForwards: forwards }, diag });
      expect(r.qemu).toBeUndefined();
      expect(diag.warnings).toEqual([expect.stringMatching(/ports: ports are forwarded only on the pod network with masquerade/)]);
    });

    it.each([
      ['port 0', [{ port: 0 }], 'spec.domain.devices.interfaces[0].ports[0].port'],
      ['SCTP', [{ port: 5, protocol: 'SCTP' }], 'spec.domain.devices.interfaces[0].ports[0].protocol'],
      ['twice', [{ port: 22 }, { port: 22, protocol: 'tcp' }], 'spec.domain.devices.interfaces[0].ports[1]'],
    ])('rejects %s naming the field', (_, ports, path) => {
      expect(conversionError(() => run([{ name: 'default', masquerade: {}, ports: ports as api.Port[] }], [pod()])).path).toBe(path);
    });

    it('declaredPodPorts lists the NAT pod interface ports, TCP by default, each once', () => {
      const v = vmi({
        domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, ports: [{ port: 22, name: 'ssh' }, { port: 8080 }, { port: 8080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] }] } },
        networks: [pod()],
      });
      expect(declaredPodPorts(v.spec)).toEqual([
        { port: 22, protocol: 'TCP', name: 'ssh' },
        { port: 8080, protocol: 'TCP' },
        { port: 53, protocol: 'UDP' },
      ]);
      expect(declaredPodPorts(vmi({ domain: { devices: { interfaces: [{ name: 'default', bridge: {}, ports: [{ port: 22 }] }] } }, networks: [pod()] }).spec)).toEqual([]);
    });

    it('renders the QEMU namespace elements in the domain XML', () => {
      const v = vmi({ domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, ports: [{ port: 22 }] }] } }, networks: [pod()] });
      const { xml } = convertVmi(v, ctx({ podPortForwards: [forwards[0]!] }));
      expect(xml).toMatch(/<domain type="qemu" xmlns:qemu="http:\/\/libvirt.org\/schemas\/domain\/qemu\/1.0">/);
      expect(xml).toContain('<qemu:arg value="user,id=vo-default,hostfwd=tcp:127.0.0.1:20022-:22"/>');
      expect(xml).toMatch(/<qemu:device alias="ua-default">\s*<qemu:frontend>\s*<qemu:property name="netdev" type="string" value="vo-default"\/>/);
      expect(portForwardsInDomainXml(xml)).toEqual([forwards[0]]);
      expect(schemaProblems(xml)).toBeUndefined(); // libvirt's own RNG accepts the QEMU namespace
    });
  });
});
