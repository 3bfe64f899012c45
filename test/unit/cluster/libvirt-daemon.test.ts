/**
 * The cluster controller's `--launcher-libvirt-daemon`: a launcher Pod template from git made
 * to run its libvirt daemon in the Pod (real kubelet nodes) or outside it (process runtime),
 * exactly as synth renders it with `libvirtDaemon` set (synth/launcher-pod.ts withLibvirtDaemon).
 */
import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { launcherFlagValue } from '../../../launcher/flags.js';
import { DEFAULT_NODE_SOCKET_DIR, renderLauncherPod, withLibvirtDaemon } from '../../../synth/launcher-pod.js';
import type { PodManifest } from '../../../synth/pod-types.js';
import { validateControllerFlags } from '../../../reconciler/cluster/run.js';
import { App, Testing } from 'cdk8s';
import { InstallChart } from '../../../synth/install.js';
import { fixtureVm } from '../synth/fixtures.js';

const FLAGS = ['libvirtUri', 'libvirtDaemon', 'imageStore', 'vmiDisksDir'] as const;

/** The Pod with the compute args reduced to the pod flags' values (their order differs: set flags are appended). */
function normalised(pod: PodManifest): { pod: PodManifest; flags: (string | undefined)[] } {
  const out = structuredClone(pod);
  const compute = out.spec.containers.find((c) => c.name === 'compute')!;
  const args = compute.args ?? [];
  const flags = FLAGS.map((f) => launcherFlagValue(args, f));
  const drop = new Set(['--libvirt-uri', '--libvirt-daemon', '--image-store', '--vmi-disks-dir']);
  compute.args = args.filter((a, i) => !drop.has(a) && !drop.has(args[i - 1] ?? ''));
  return { pod: out, flags };
}

const withLowPort = fixtureVm((vm) => {
  vm.spec.template.spec.domain.devices.interfaces = [{ name: 'default', masquerade: {}, ports: [{ port: 80 }, { port: 8443 }] }];
});
const withHighPort = fixtureVm((vm) => {
  vm.spec.template.spec.domain.devices.interfaces = [{ name: 'default', masquerade: {}, ports: [{ port: 8080 }] }];
});

describe('withLibvirtDaemon', () => {
  it.each<[string, api.VirtualMachine]>([
    ['the fixture VM (containerDisk, PVC, cloud-init)', fixtureVm()],
    ['a VM with a port below 1024 (the sysctl)', withLowPort],
    ['a VM with only high ports', withHighPort],
  ])('%s: external → pod is what synth renders with libvirtDaemon pod, and back', (_n, vm) => {
    const external = renderLauncherPod(vm);
    const pod = renderLauncherPod(vm, { libvirtDaemon: 'pod' });
    const converted = withLibvirtDaemon(external, vm.spec.template.spec, 'pod');
    expect(normalised(converted)).toEqual(normalised(pod));
    expect(normalised(withLibvirtDaemon(pod, vm.spec.template.spec, 'external'))).toEqual(normalised(external));
    // Idempotent, and the input is not changed.
    expect(withLibvirtDaemon(converted, vm.spec.template.spec, 'pod')).toEqual(converted);
    expect(external).toEqual(renderLauncherPod(vm));
  });

  it('the node socket dir is the one given (the agents\' --launcher-socket-dir)', () => {
    const vm = fixtureVm();
    const p = withLibvirtDaemon(renderLauncherPod(vm), vm.spec.template.spec, 'pod', '/var/lib/x/launchers');
    expect(p.spec.volumes?.find((v) => v.name === 'node-sockets')).toEqual({ name: 'node-sockets', hostPath: { path: '/var/lib/x/launchers', type: 'DirectoryOrCreate' } });
    const d = withLibvirtDaemon(renderLauncherPod(vm), vm.spec.template.spec, 'pod');
    expect((d.spec.volumes?.find((v) => v.name === 'node-sockets') as { hostPath?: { path: string } }).hostPath?.path).toBe(DEFAULT_NODE_SOCKET_DIR);
  });

  it('keeps what git added to the compute container (an extra flag)', () => {
    const vm = fixtureVm();
    const t = renderLauncherPod(vm);
    t.spec.containers[0]!.args!.push('--insecure-registry', 'reg:5000');
    const args = withLibvirtDaemon(t, vm.spec.template.spec, 'pod').spec.containers[0]!.args!;
    expect(launcherFlagValue(args, 'insecureRegistries')).toBe('reg:5000');
    expect(launcherFlagValue(args, 'libvirtDaemon')).toBe('pod');
  });
});

describe('controller flag --launcher-libvirt-daemon', () => {
  it('pod or external, with the socket dir; unset keeps the templates as git has them', () => {
    const ok = validateControllerFlags({ repo: '/r', launcherLibvirtDaemon: 'pod' });
    expect(ok.ok && [ok.config.launcherLibvirtDaemon, ok.config.launcherSocketDir]).toEqual(['pod', DEFAULT_NODE_SOCKET_DIR]);
    const none = validateControllerFlags({ repo: '/r' });
    expect(none.ok && none.config.launcherLibvirtDaemon).toBeUndefined();
    const bad = validateControllerFlags({ repo: '/r', launcherLibvirtDaemon: 'host' });
    expect(bad.ok ? [] : bad.errors).toEqual([expect.stringMatching(/--launcher-libvirt-daemon "host".*pod.*external/)]);
    const rel = validateControllerFlags({ repo: '/r', launcherLibvirtDaemon: 'pod', launcherSocketDir: 'launchers' });
    expect(rel.ok ? [] : rel.errors).toEqual([expect.stringMatching(/--launcher-socket-dir "launchers" is not an absolute path/)]);
    const alone = validateControllerFlags({ repo: '/r', launcherSocketDir: '/x' });
    expect(alone.ok ? [] : alone.errors).toEqual([expect.stringMatching(/--launcher-socket-dir.*--launcher-libvirt-daemon pod/)]);
  });
});

describe('the install manifests', () => {
  type Deployment = { kind: string; metadata: { name: string }; spec: { template: { spec: { containers: { args: string[] }[] } } } };
  const controllerArgs = (processRuntimeAgents: boolean) => (Testing.synth(new InstallChart(new App(), 'install', { processRuntimeAgents })) as Deployment[])
    .find((o) => o.kind === 'Deployment' && o.metadata.name === 'virtops-controller')!.spec.template.spec.containers[0]!.args;

  it('run the controller with --launcher-libvirt-daemon pod (real kubelet nodes); with process-runtime agents the templates stay as git has them', () => {
    const args = controllerArgs(false);
    expect(args.slice(args.indexOf('--launcher-libvirt-daemon'), args.indexOf('--launcher-libvirt-daemon') + 4)).toEqual(['--launcher-libvirt-daemon', 'pod', '--launcher-socket-dir', DEFAULT_NODE_SOCKET_DIR]);
    const v = validateControllerFlags({ repo: '/r', launcherLibvirtDaemon: args[args.indexOf('--launcher-libvirt-daemon') + 1], launcherSocketDir: args[args.indexOf('--launcher-socket-dir') + 1] });
    expect(v.ok).toBe(true);
    expect(controllerArgs(true)).not.toContain('--launcher-libvirt-daemon');
  });
});
