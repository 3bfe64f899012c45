import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STATE_DIR,
  baseEnv,
  hostFlags,
  podDir,
  podsDir,
  validateEmulation,
  validateHostFlags,
  validateInsecureRegistries,
  validateLibvirtUri,
  validateStateDir,
} from '../../../reconciler/agent/host-config.js';
import { MAX_DURATION_MS, durationFlag, formatDuration } from '../../../reconciler/agent/duration-flag.js';
import { DEFAULT_STATE_DIR as CONVERTER_STATE_DIR } from '../../../launcher/convert/index.js';
import { validateAgentFlags } from '../../../reconciler/cluster/run.js';
import { validateUpFlags } from '../../../reconciler/standalone/up.js';

/** Runs a validator on a fresh errors array. */
function run<T>(f: (errors: string[]) => T): { value: T; errors: string[] } {
  const errors: string[] = [];
  return { value: f(errors), errors };
}

describe('durationFlag', () => {
  it.each([
    ['500ms', 100, 500],
    ['30s', 100, 30_000],
    ['1m', 100, 60_000],
    ['1m30s', 100, 90_000],
    ['1.5s', 100, 1500],
    [' 2h ', 100, 7_200_000],
    ['100ms', 100, 100],
    ['0s', 0, 0],
  ])('%j (min %d) → %d ms', (value, min, ms) => {
    expect(run((e) => durationFlag(value, '--interval', e, { min }))).toEqual({ value: ms, errors: [] });
  });

  it.each([
    ['5', '--interval "5" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s'],
    ['soon', '--interval "soon" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s'],
    ['', '--interval "" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s'],
    ['-1s', '--interval "-1s" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s'],
    ['1d', '--interval "1d" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s'],
    ['10ms', '--interval "10ms" is too short: use at least 100ms'],
    ['999h', '--interval "999h" is too long: use at most 576h'],
  ])('%j → %s', (value, message) => {
    expect(run((e) => durationFlag(value, '--interval', e, { min: 100 }))).toEqual({ value: undefined, errors: [message] });
  });

  it('names the flag it was given and honours min and max', () => {
    expect(run((e) => durationFlag('1s', '--lease-duration', e, { min: 2000 })).errors).toEqual(['--lease-duration "1s" is too short: use at least 2s']);
    expect(run((e) => durationFlag('2m', '--x', e, { min: 0, max: 60_000 })).errors).toEqual(['--x "2m" is too long: use at most 1m']);
  });

  it('caps durations below what Node timers take (2^31-1 ms)', () => {
    expect(MAX_DURATION_MS).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(run((e) => durationFlag('576h', '--interval', e, { min: 0 })).value).toBe(MAX_DURATION_MS);
  });

  it.each([
    [100, '100ms'],
    [1500, '1500ms'],
    [2000, '2s'],
    [90_000, '90s'],
    [60_000, '1m'],
    [3_600_000, '1h'],
  ])('formatDuration(%d) → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('host flag validators', () => {
  it.each([
    ['/var/lib/virtops', []],
    ['/tmp/x', []],
    ['rel', ['--state-dir "rel" is not an absolute path: pass e.g. --state-dir /var/lib/virtops']],
    ['./state', ['--state-dir "./state" is not an absolute path: pass e.g. --state-dir /var/lib/virtops']],
  ])('state dir %j', (value, errors) => {
    expect(run((e) => validateStateDir(value, e)).errors).toEqual(errors);
  });

  it.each([
    ['auto', 'auto', []],
    ['kvm', 'kvm', []],
    ['tcg', 'tcg', []],
    ['hvf', undefined, ['--emulation "hvf" is not one of auto, kvm, tcg: pass --emulation tcg where KVM is unusable']],
    ['KVM', undefined, ['--emulation "KVM" is not one of auto, kvm, tcg: pass --emulation tcg where KVM is unusable']],
  ])('emulation %j → %j', (value, result, errors) => {
    expect(run((e) => validateEmulation(value, e))).toEqual({ value: result, errors });
  });

  it.each([
    ['qemu:///system', []],
    ['test:///default', []],
    ['qemu+ssh://host/system', []],
    ['qemu', ['--libvirt-uri "qemu" is not a libvirt URI: use e.g. qemu:///system or test:///default']],
    ['/var/run/libvirt', ['--libvirt-uri "/var/run/libvirt" is not a libvirt URI: use e.g. qemu:///system or test:///default']],
  ])('libvirt URI %j', (value, errors) => {
    expect(run((e) => validateLibvirtUri(value, e)).errors).toEqual(errors);
  });

  it.each([
    [[], []],
    [['127.0.0.1:5000', 'registry.local'], []],
    [['http://x'], ['--insecure-registry "http://x" is not host[:port]: use e.g. 127.0.0.1:5000']],
    [['ok:1', 'a/b', 'h:port'], ['--insecure-registry "a/b" is not host[:port]: use e.g. 127.0.0.1:5000', '--insecure-registry "h:port" is not host[:port]: use e.g. 127.0.0.1:5000']],
  ])('insecure registries %j', (values, errors) => {
    expect(run((e) => validateInsecureRegistries(values, e)).errors).toEqual(errors);
  });

  it('validateHostFlags fills the defaults', () => {
    expect(run((e) => validateHostFlags({}, e))).toEqual({
      value: { stateDir: DEFAULT_STATE_DIR, emulation: 'auto', libvirtUri: 'qemu:///system', insecureRegistries: [] },
      errors: [],
    });
  });

  it('validateHostFlags reports every bad flag, keeps earlier errors and returns undefined', () => {
    const errors = ['--repo is required'];
    const value = validateHostFlags({ stateDir: 'rel', emulation: 'x', libvirtUri: 'nope', insecureRegistry: ['http://x'] }, errors);
    expect(value).toBeUndefined();
    expect(errors.map((m) => m.split(' ')[0])).toEqual(['--repo', '--state-dir', '--emulation', '--libvirt-uri', '--insecure-registry']);
  });

  it('up and agent give the same message for the same bad host flag', () => {
    const bad = { stateDir: 'rel', emulation: 'x', libvirtUri: 'nope', insecureRegistry: ['http://x'] };
    const expected = run((e) => validateHostFlags(bad, e)).errors;
    const up = validateUpFlags({ repo: '/srv/vms.git', ...bad });
    const agent = validateAgentFlags({ node: 'n1', ...bad });
    expect(up.ok ? [] : up.errors).toEqual(expected);
    expect(agent.ok ? [] : agent.errors).toEqual(expected);
  });
});

describe('host layout', () => {
  it('a --state-dir over 64 bytes is refused at start-up, naming the flag and the fix', () => {
    const ok = run((e) => validateHostFlags({ stateDir: `/${'s'.repeat(63)}` }, e));
    expect(ok.errors).toEqual([]);
    const long = run((e) => validateHostFlags({ stateDir: `/${'s'.repeat(64)}` }, e));
    expect(long.errors.join('\n')).toMatch(/--state-dir .* is 65 bytes, over 64: .*pass a shorter path/);
  });


  it('lays pods out under <state-dir>/pods', () => {
    expect(podsDir('/s')).toBe('/s/pods');
    expect(podDir('/s', 'lab', 'web')).toMatch(/^\/s\/pods\/[0-9a-f]{12}$/);
    // Fixed length whatever the names; distinct for distinct VMs.
    expect(podDir('/s', 'n'.repeat(63), 'v'.repeat(63))).toHaveLength(podDir('/s', 'lab', 'web').length);
    expect(podDir('/s', 'lab', 'web')).not.toBe(podDir('/s', 'lab', 'web2'));
    expect(podDir('/s', 'a', 'b_c')).not.toBe(podDir('/s', 'a_b', 'c'));
  });

  it('builds the host flags every launcher gets; auto leaves the Pod\'s emulation alone', () => {
    expect(hostFlags({ stateDir: '/s', emulation: 'auto', libvirtUri: 'test:///default' })).toEqual({
      libvirtUri: 'test:///default', imageStore: '/s/images', pvcDir: '/s/pvcs', secretsDir: '/s/secrets', insecureRegistries: [],
    });
    expect(hostFlags({ stateDir: '/s', emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: ['r:5000'] })).toMatchObject({ emulation: 'tcg', insecureRegistries: ['r:5000'] });
  });

  it('the converter\'s DEFAULT_STATE_DIR is the same one', () => {
    expect(CONVERTER_STATE_DIR).toBe(DEFAULT_STATE_DIR);
  });

  it('baseEnv passes only the allow-listed variables', () => {
    expect(baseEnv({ PATH: '/bin', HOME: '/root', TMPDIR: '/tmp', VIRTOPS_LOG_LEVEL: 'debug', KUBECONFIG: '/k', SECRET: 's' })).toEqual({
      PATH: '/bin', HOME: '/root', TMPDIR: '/tmp', VIRTOPS_LOG_LEVEL: 'debug',
    });
  });
});

describe('up --crash-loop-backoff', () => {
  it('defaults to KubeVirt-like 10s doubling to 5m, takes shorter ones, and names the flag when wrong', () => {
    const def = validateUpFlags({ repo: '/srv/vms.git' });
    expect(def.ok && def.config.backoffPolicy).toMatchObject({ initialMs: 10_000, maxMs: 300_000 });
    const short = validateUpFlags({ repo: '/srv/vms.git', crashLoopBackoff: '1s', crashLoopBackoffMax: '4s' });
    expect(short.ok && short.config.backoffPolicy).toMatchObject({ initialMs: 1000, maxMs: 4000 });
    const bad = validateUpFlags({ repo: '/srv/vms.git', crashLoopBackoff: 'soon', crashLoopBackoffMax: '5m' });
    expect(bad.ok ? [] : bad.errors).toEqual(['--crash-loop-backoff "soon" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s']);
    const below = validateUpFlags({ repo: '/srv/vms.git', crashLoopBackoff: '10s', crashLoopBackoffMax: '2s' });
    expect(below.ok ? [] : below.errors).toEqual(['--crash-loop-backoff-max "2s" is below --crash-loop-backoff "10s": raise it to at least 10s']);
  });
});
