import { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  buildLauncherArgs, LAUNCHER_FLAGS, launcherFlag, launcherFlagValue, type LauncherConfig, parseLauncherArgs,
  parseLauncherArgv, setLauncherFlag, validateLauncherFlags,
} from '../../../launcher/flags.js';
import { registerLauncher } from '../../../cli/commands/launcher.js';
import { launcherArgv, renderLauncherPod } from '../../../synth/launcher-pod.js';
import { fixtureVm } from '../synth/fixtures.js';

/** A config with every field set to a value other than its default. */
const FULL: LauncherConfig = {
  name: 'web-1', uid: '6f1c2a3b-0000-4000-8000-000000000001', namespace: 'lab',
  kubevirtShareDir: '/run/share', ephemeralDiskDir: '/run/ephemeral', containerDiskDir: '/run/container-disks',
  gracePeriodSeconds: 45, hookSidecars: 0, qemuTimeoutMs: 90_000, emulation: 'tcg',
  libvirtUri: 'qemu+unix:///session?socket=/run/libvirt/libvirt-sock', libvirtDaemon: 'pod',
  stateDir: '/var/lib/launcher', imageStore: '/var/cache/images', secretsDir: '/run/secrets', pvcDir: '/run/pvcs',
  vmiDisksDir: '/run/vmi-disks', insecureRegistries: ['127.0.0.1:5000', 'registry.lab:5001'],
};

/** build → parse → validate */
function roundTrip(config: LauncherConfig): LauncherConfig {
  const r = validateLauncherFlags(parseLauncherArgs(buildLauncherArgs(config)), '/home/nobody');
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.config;
}

describe('the flag table', () => {
  it('names each option the way commander does, and each flag and field once', () => {
    for (const f of LAUNCHER_FLAGS) expect(new Option(f.flag).attributeName()).toBe(f.key);
    expect(new Set(LAUNCHER_FLAGS.map((f) => f.flag)).size).toBe(LAUNCHER_FLAGS.length);
    expect(new Set(LAUNCHER_FLAGS.map((f) => f.field)).size).toBe(LAUNCHER_FLAGS.length);
  });

  it('covers every LauncherConfig field', () => {
    expect(LAUNCHER_FLAGS.map((f) => f.field).sort()).toEqual(Object.keys(FULL).sort());
  });

  it('is what the launcher and launcher-monitor commands accept (launcher-monitor also --cleanup-only)', () => {
    const program = new Command();
    registerLauncher(program);
    for (const name of ['launcher', 'launcher-monitor']) {
      const cmd = program.commands.find((c) => c.name() === name)!;
      expect(cmd.options.map((o) => o.flags)).toEqual([...LAUNCHER_FLAGS.map((f) => f.flag), ...(name === 'launcher-monitor' ? ['--cleanup-only'] : [])]);
    }
  });
});

describe('build → parse → validate', () => {
  it.each(LAUNCHER_FLAGS.map((f) => [f.flag, f] as const))('%s survives on its own', (_flag, f) => {
    const args = buildLauncherArgs({ [f.field]: FULL[f.field] });
    const raw = parseLauncherArgs(args);
    expect(Object.keys(raw)).toEqual([f.key]);
    // The only flag given: validation may fail for the required ones, but not for this one.
    const r = validateLauncherFlags(raw, '/home/nobody');
    const flag = launcherFlag(f.field);
    if (r.ok) expect(r.config[f.field]).toEqual(FULL[f.field]);
    else expect(r.errors.filter((e) => e.startsWith(`${flag} `) && !e.startsWith(`${flag} is required`))).toEqual([]);
  });

  it.each<[string, Partial<LauncherConfig>]>([
    ['every field set', {}],
    ['no insecure registry', { insecureRegistries: [] }],
    ['one insecure registry', { insecureRegistries: ['127.0.0.1:5000'] }],
    ['a timeout in milliseconds', { qemuTimeoutMs: 1500 }],
    ['a timeout in hours', { qemuTimeoutMs: 7_200_000 }],
    ['kvm', { emulation: 'kvm' }],
    ['auto', { emulation: 'auto' }],
    ['no grace period', { gracePeriodSeconds: 0 }],
    ['a dotted name', { name: 'web.lab-2' }],
  ])('a whole config survives: %s', (_name, change) => {
    const config = { ...FULL, ...change };
    expect(roundTrip(config)).toEqual(config);
  });

  it('--libvirt-daemon: external by default; pod needs a session URI with socket=, naming both flags', () => {
    const base = buildLauncherArgs({ ...FULL, libvirtDaemon: undefined, libvirtUri: undefined });
    const plain = validateLauncherFlags(parseLauncherArgs(base), '/home/nobody');
    expect(plain.ok && plain.config.libvirtDaemon).toBe('external');
    const bad = validateLauncherFlags(parseLauncherArgs([...base, '--libvirt-daemon', 'pod']), '/home/nobody');
    expect(bad.ok ? [] : bad.errors).toEqual([expect.stringMatching(/^--libvirt-uri "qemu:\/\/\/system" .*--libvirt-daemon pod.*socket=/)]);
    const unknown = validateLauncherFlags(parseLauncherArgs([...base, '--libvirt-daemon', 'host']), '/home/nobody');
    expect(unknown.ok ? [] : unknown.errors).toEqual([expect.stringMatching(/^--libvirt-daemon "host" is not one of external, pod/)]);
  });

  it('writes flags in table order and leaves undefined fields out', () => {
    expect(buildLauncherArgs({ emulation: 'kvm', name: 'a', qemuTimeoutMs: 240_000 })).toEqual(['--qemu-timeout', '240s', '--name', 'a', '--emulation', 'kvm']);
    expect(buildLauncherArgs({})).toEqual([]);
    const order = buildLauncherArgs(FULL).filter((a) => a.startsWith('--'));
    expect([...new Set(order)]).toEqual(LAUNCHER_FLAGS.map((f) => launcherFlag(f.field)));
  });

  it('reads back the launcher Pod synth renders as the config synth meant', () => {
    const argv = launcherArgv(renderLauncherPod(fixtureVm(), { uid: 'abc-123', emulation: 'tcg' }), { VMI_UID: 'abc-123' });
    const r = validateLauncherFlags(parseLauncherArgv(argv), '/home/nobody');
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.config).toMatchObject({
        name: 'web', uid: 'abc-123', namespace: 'prod', kubevirtShareDir: '/var/run/kubevirt',
        ephemeralDiskDir: '/var/run/kubevirt-ephemeral-disks', containerDiskDir: '/var/run/kubevirt/container-disks',
        gracePeriodSeconds: 45, hookSidecars: 0, qemuTimeoutMs: 240_000, emulation: 'tcg',
      });
    }
  });
});

describe('parseLauncherArgv', () => {
  it('takes the flags after the launcher command, whatever runs it', () => {
    const flags = ['--name', 'web', '--uid=u-1', '--insecure-registry', 'a:1', '--insecure-registry=b:2'];
    const want = { name: 'web', uid: 'u-1', insecureRegistry: ['a:1', 'b:2'] };
    expect(parseLauncherArgv(['virtops', 'launcher-monitor', ...flags])).toEqual(want);
    expect(parseLauncherArgv(['/usr/bin/node', '--import', 'tsx', '/repo/cli/main.ts', 'launcher-monitor', ...flags])).toEqual(want);
    expect(parseLauncherArgv(['node', 'entry.mjs', 'launcher', ...flags])).toEqual(want);
  });

  it('lets the last of a repeated single flag win, as the CLI does', () => {
    expect(parseLauncherArgs(['--emulation', 'auto', '--emulation', 'tcg'])).toEqual({ emulation: 'tcg' });
  });

  it.each<[string, string[], RegExp]>([
    ['an unknown flag', ['launcher-monitor', '--bogus', '1'], /^launcher argv: unknown option '--bogus'/],
    ['a flag without its value', ['launcher-monitor', '--name'], /^launcher argv: option '--name <vmi>' argument missing/],
    ['a stray argument', ['launcher-monitor', '--name', 'a', 'extra'], /^launcher argv: too many arguments/],
    ['no launcher command', ['virtops', '--name', 'a'], /^launcher argv: no launcher-monitor or launcher command/],
  ])('refuses %s', (_name, argv, message) => {
    expect(() => parseLauncherArgv(argv)).toThrow(message);
  });
});

describe('editing one flag in place', () => {
  const args = ['--name', 'web', '--emulation=auto', '--uid', 'u', '--emulation', 'kvm'];

  it('reads the value the launcher will use', () => {
    expect(launcherFlagValue(args, 'emulation')).toBe('kvm');
    expect(launcherFlagValue(args, 'name')).toBe('web');
    expect(launcherFlagValue(args, 'libvirtUri')).toBeUndefined();
  });

  it('replaces every occurrence by one where the first was, and leaves the rest alone', () => {
    expect(setLauncherFlag(args, 'emulation', 'tcg')).toEqual({ args: ['--name', 'web', '--emulation', 'tcg', '--uid', 'u'], previous: 'kvm' });
    expect(setLauncherFlag(args, 'libvirtUri', 'test:///default')).toEqual({ args: [...args, '--libvirt-uri', 'test:///default'] });
    expect(parseLauncherArgs(setLauncherFlag(args, 'emulation', 'tcg').args).emulation).toBe('tcg');
  });
});

describe('--vmi-disks-dir (claims a kubelet mounted into the Pod)', () => {
  it('is left out unless given (claims under --pvc-dir), and must be absolute', () => {
    const base = buildLauncherArgs({ ...FULL, vmiDisksDir: undefined });
    const plain = validateLauncherFlags(parseLauncherArgs(base), '/home/nobody');
    expect(plain.ok && 'vmiDisksDir' in plain.config).toBe(false);
    const rel = validateLauncherFlags(parseLauncherArgs([...base, '--vmi-disks-dir', 'vmi-disks']), '/home/nobody');
    expect(rel.ok ? [] : rel.errors).toEqual(['--vmi-disks-dir "vmi-disks" is not an absolute path: pass an absolute directory path']);
  });
});
