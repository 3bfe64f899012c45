import { describe, expect, it } from 'vitest';
import { refusalMessage } from '../../../cli/kube-rest.js';
import { podExecPath, POD_SERIAL_SOCKET, podSerialLog, relayCommand, runsUnderKubelet, execStatusError } from '../../../cli/pod-console.js';
import { serialSocketPath } from '../../../launcher/convert/console.js';
import { launcherPaths } from '../../../launcher/flags.js';
import { PATHS } from '../../../synth/launcher-pod.js';
import { podNetnsForwards } from '../../../launcher/host-ports.js';
import { portForwardsInDomainXml } from '../../../launcher/convert/interfaces.js';

describe('console beside a real kubelet (pods/exec relay)', () => {
  it('names the serial socket and log where the launcher in the Pod makes them', () => {
    expect(POD_SERIAL_SOCKET).toBe(serialSocketPath(PATHS.share));
    const paths = launcherPaths({ kubevirtShareDir: PATHS.share, namespace: 'ns', name: 'vm', stateDir: '/x' } as Parameters<typeof launcherPaths>[0]);
    expect(podSerialLog('ns', 'vm')).toBe(`${paths.logDir}/${paths.domainName}-serial0.log`);
  });

  it('exec path: one command word per query parameter, all streams', () => {
    const p = podExecPath('n s', 'virt-launcher-a-xyz', 'compute', relayCommand('/s', '/l'));
    const u = new URL(p, 'https://x');
    expect(u.pathname).toBe('/api/v1/namespaces/n%20s/pods/virt-launcher-a-xyz/exec');
    expect(u.searchParams.getAll('command')).toEqual(['node', '-e', relayCommand()[2], '/s', '/l']);
    expect(['container', 'stdin', 'stdout', 'stderr'].map((k) => u.searchParams.get(k))).toEqual(['compute', 'true', 'true', 'true']);
  });

  it('exec only for Pods a container runtime runs', () => {
    expect(runsUnderKubelet({ status: { containerStatuses: [{ name: 'compute', containerID: 'containerd://abc' }] } })).toBe(true);
    expect(runsUnderKubelet({ status: { containerStatuses: [{ name: 'compute' }] } })).toBe(false);
    expect(runsUnderKubelet({ status: { containerStatuses: [{ name: 'compute', containerID: 'virtops-process://1' }] } })).toBe(false);
    expect(runsUnderKubelet({})).toBe(false);
  });

  it('exec status: Success is no error, Failure carries its message', () => {
    expect(execStatusError('{"status":"Success"}')).toBeUndefined();
    expect(execStatusError('{"status":"Failure","message":"command terminated with non-zero exit code"}')).toMatch(/non-zero/);
  });
});

describe('port forwards in the Pod network namespace', () => {
  it('each declared port on itself at 0.0.0.0, and read back from the domain XML', () => {
    const f = podNetnsForwards([{ port: 22, protocol: 'TCP', name: 'ssh' }, { port: 53, protocol: 'UDP' }]);
    expect(f).toEqual([{ guest: 22, host: 22, protocol: 'TCP', address: '0.0.0.0', name: 'ssh' }, { guest: 53, host: 53, protocol: 'UDP', address: '0.0.0.0' }]);
    expect(portForwardsInDomainXml('user,id=a,hostfwd=tcp:0.0.0.0:22-:22,hostfwd=udp:127.0.0.1:20053-:53')).toEqual([
      { protocol: 'TCP', host: 22, guest: 22, address: '0.0.0.0' },
      { protocol: 'UDP', host: 20053, guest: 53 },
    ]);
  });
});

describe('the low-ports sysctl of a pod-libvirt launcher Pod', () => {
  it('is set only for libvirtDaemon pod with a declared port below 1024', async () => {
    const { renderLauncherPod } = await import('../../../synth/launcher-pod.js');
    const vm = (ports: number[]) => ({
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'p', namespace: 'default' },
      spec: { runStrategy: 'Always', template: { spec: {
        domain: { memory: { guest: '128Mi' }, devices: { interfaces: [{ name: 'default', masquerade: {}, ports: ports.map((port) => ({ port })) }] } },
        networks: [{ name: 'default', pod: {} }],
      } } },
    }) as unknown as Parameters<typeof renderLauncherPod>[0];
    const sysctls = (v: ReturnType<typeof vm>, libvirtDaemon: 'pod' | 'external') => (renderLauncherPod(v, { launcherImage: 'x/virtops:1', libvirtDaemon }).spec.securityContext as { sysctls?: unknown }).sysctls;
    expect(sysctls(vm([22, 8080]), 'pod')).toEqual([{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    expect(sysctls(vm([8080]), 'pod')).toBeUndefined();
    expect(sysctls(vm([22]), 'external')).toBeUndefined();
  });
});

describe('refusalMessage (shared by pods/exec and KubeRest.upgrade)', () => {
  it('reads a metav1.Status message, then an error field, then the text', () => {
    expect(refusalMessage(JSON.stringify({ kind: 'Status', status: 'Failure', message: 'pods "p" is forbidden', reason: 'Forbidden' }))).toBe('pods "p" is forbidden');
    expect(refusalMessage(JSON.stringify({ error: 'upgrade refused' }))).toBe('upgrade refused');
    expect(refusalMessage('  plain text refusal\n')).toBe('plain text refusal');
    expect(refusalMessage(JSON.stringify({ code: 403 }))).toBe('{"code":403}');
  });
});
