import { describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { launcherFlagValue } from '../../../launcher/flags.js';
import { launcherProcessSpec, rewritePath, PodProcessError, type HostDir } from '../../../reconciler/agent/pod-process.js';

const vm: VirtualMachine = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'web', namespace: 'prod' },
  spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {}, memory: { guest: '128Mi' } }, terminationGracePeriodSeconds: 20 } } },
} as VirtualMachine;

const pod = renderLauncherPod(vm);
const base = { pod, uid: 'u-123', podDir: '/s/pods/prod_web', virtopsCommand: ['/usr/bin/node', '/repo/cli/bin.js'], hostFlags: {} };

describe('launcherProcessSpec', () => {
  it('runs the compute container of the Pod from git, with virtops resolved to this checkout', () => {
    const s = launcherProcessSpec(base);
    expect(s.argv.slice(0, 3)).toEqual(['/usr/bin/node', '/repo/cli/bin.js', 'launcher-monitor']);
    const compute = pod.spec.containers.find((c) => c.name === 'compute')!;
    // Same flags in the same order as the Pod; only paths and $(VMI_UID) differ.
    expect(s.argv.slice(3).filter((a) => a.startsWith('--'))).toEqual(compute.args!.filter((a) => a.startsWith('--')));
    expect(launcherFlagValue(s.argv, 'uid')).toBe('u-123');
    expect(launcherFlagValue(s.argv, 'gracePeriodSeconds')).toBe(launcherFlagValue(compute.args!, 'gracePeriodSeconds'));
    expect(s.hostFlagChanges).toEqual([]);
  });

  it('maps emptyDir mount paths to per-VM host dirs, nested mounts as links into the parent', () => {
    const s = launcherProcessSpec(base);
    expect(launcherFlagValue(s.argv, 'kubevirtShareDir')).toBe('/s/pods/prod_web/public');
    expect(launcherFlagValue(s.argv, 'ephemeralDiskDir')).toBe('/s/pods/prod_web/ephemeral-disks');
    expect(launcherFlagValue(s.argv, 'containerDiskDir')).toBe('/s/pods/prod_web/container-disks');
    const sockets = s.dirs.find((d) => d.volume === 'sockets')!;
    expect(sockets.hostPath).toBe('/s/pods/prod_web/sockets');
    expect(sockets.linkTo).toBe('/s/pods/prod_web/public/sockets');
    expect(s.socketPath).toBe('/s/pods/prod_web/sockets/launcher-sock');
    expect(s.domainName).toBe('prod_web');
  });

  it('resolves env: values with mount paths rewritten, downward-API fields from the Pod with the real uid', () => {
    const s = launcherProcessSpec(base);
    expect(s.env['XDG_CACHE_HOME']).toBe('/s/pods/prod_web/private');
    expect(s.env['VMI_UID']).toBe('u-123');
    expect(s.env['POD_NAME']).toBe('virt-launcher-web');
  });

  it('replaces or adds host flags and reports each change', () => {
    const s = launcherProcessSpec({ ...base, hostFlags: { emulation: 'tcg', libvirtUri: 'test:///default', insecureRegistries: ['127.0.0.1:5000'] } });
    expect(s.argv.filter((a) => a === '--emulation')).toHaveLength(1);
    expect(launcherFlagValue(s.argv, 'emulation')).toBe('tcg');
    expect(launcherFlagValue(s.argv, 'libvirtUri')).toBe('test:///default');
    expect(launcherFlagValue(s.argv, 'insecureRegistries')).toBe('127.0.0.1:5000');
    expect(s.hostFlagChanges).toEqual([
      { flag: '--emulation', pod: 'auto', host: 'tcg' },
      { flag: '--libvirt-uri', host: 'test:///default' },
      { flag: '--insecure-registry', host: '127.0.0.1:5000' },
    ]);
  });

  it('a host flag equal to the Pod is not a change', () => {
    expect(launcherProcessSpec({ ...base, hostFlags: { emulation: 'auto' } }).hostFlagChanges).toEqual([]);
  });

  it('refuses a Pod without a compute container, naming the field and the fix', () => {
    const broken = { ...pod, spec: { ...pod.spec, containers: pod.spec.containers.filter((c) => c.name !== 'compute') } };
    expect(() => launcherProcessSpec({ ...base, pod: broken })).toThrow(PodProcessError);
    expect(() => launcherProcessSpec({ ...base, pod: broken })).toThrow(/spec.containers.*re-run virtops synth/);
  });

  it('refuses a downward-API field it cannot provide', () => {
    const compute = { ...pod.spec.containers[0]!, env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] };
    const odd = { ...pod, spec: { ...pod.spec, containers: [compute] } };
    expect(() => launcherProcessSpec({ ...base, pod: odd })).toThrow(/env\[0\].valueFrom.fieldRef.fieldPath: "status.podIP" is not supported/);
  });
});

describe('rewritePath', () => {
  const dirs: HostDir[] = [
    { volume: 'public', mountPath: '/var/run/kubevirt', hostPath: '/h/public' },
    { volume: 'sockets', mountPath: '/var/run/kubevirt/sockets', hostPath: '/h/sockets', linkTo: '/h/public/sockets' },
  ];
  it.each([
    ['/var/run/kubevirt', '/h/public'],
    ['/var/run/kubevirt/logs/x.log', '/h/public/logs/x.log'],
    ['/var/run/kubevirt/sockets/launcher-sock', '/h/sockets/launcher-sock'],
    ['/var/run/kubevirtual', '/var/run/kubevirtual'],
    ['/var/run', '/var/run'],
    ['relative/path', 'relative/path'],
    ['auto', 'auto'],
  ])('%s → %s', (from, to) => expect(rewritePath(from, dirs)).toBe(to));
});
