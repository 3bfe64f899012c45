import { describe, expect, it } from 'vitest';
import { launcherFlagValue, parseLauncherArgv, validateLauncherFlags } from '../../../launcher/flags.js';
import { daemonDirs, SESSION_QEMU_CONF, sessionSocketOf } from '../../../launcher/monitor/libvirt-daemon.js';
import { launcherArgv, PATHS, POD_LIBVIRT_URI, renderLauncherPod } from '../../../synth/launcher-pod.js';
import { fixtureVm } from '../synth/fixtures.js';

describe('the launcher Pod with its own libvirt daemon', () => {
  it("synth's libvirtDaemon 'pod' writes the session URI, the daemon flag and an image store in the private emptyDir, claims where the Pod mounts them; the default writes none", () => {
    const args = launcherArgv(renderLauncherPod(fixtureVm(), { uid: 'u-1', libvirtDaemon: 'pod' }), { VMI_UID: 'u-1' });
    expect(launcherFlagValue(args, 'libvirtUri')).toBe(POD_LIBVIRT_URI);
    expect(launcherFlagValue(args, 'libvirtDaemon')).toBe('pod');
    expect(launcherFlagValue(args, 'imageStore')).toBe('/var/run/kubevirt-private/images');
    expect(launcherFlagValue(args, 'vmiDisksDir')).toBe(PATHS.vmiDisks);
    const r = validateLauncherFlags(parseLauncherArgv(args), '/home/nobody');
    expect(r.ok && [r.config.libvirtDaemon, r.config.libvirtUri, r.config.vmiDisksDir]).toEqual(['pod', POD_LIBVIRT_URI, PATHS.vmiDisks]);

    const plain = launcherArgv(renderLauncherPod(fixtureVm(), { uid: 'u-1' }), { VMI_UID: 'u-1' });
    for (const field of ['libvirtUri', 'libvirtDaemon', 'imageStore', 'vmiDisksDir'] as const) expect(launcherFlagValue(plain, field)).toBeUndefined();
  });

  it('the socket the monitor waits for is the URI\'s socket=, in the libvirt-runtime emptyDir', () => {
    expect(sessionSocketOf(POD_LIBVIRT_URI)).toBe('/var/run/libvirt/libvirt-sock');
    expect(sessionSocketOf('qemu:///session?socket=/a/b&mode=direct')).toBe('/a/b');
    expect(sessionSocketOf('qemu:///system')).toBeUndefined();
  });

  it('needs the XDG dirs the compute container sets, and says where they come from', () => {
    expect(daemonDirs({ XDG_CONFIG_HOME: '/c', XDG_RUNTIME_DIR: '/r' })).toEqual({ config: '/c', runtime: '/r' });
    expect(daemonDirs({ XDG_CONFIG_HOME: '/c' })).toEqual({ error: expect.stringMatching(/XDG_RUNTIME_DIR.*re-run virtops synth/) });
  });

  it('configures QEMU without virtlogd and without cgroups of libvirt', () => {
    expect(SESSION_QEMU_CONF).toMatch(/^stdio_handler = "file"$/m);
    expect(SESSION_QEMU_CONF).toMatch(/^cgroup_controllers = \[ \]$/m);
  });
});
