import { describe, expect, it } from 'vitest';
import { dependencyLinks, sandboxArgv, sandboxLimitProblems, sandboxNodeModules, sandboxSynthCommand, sandboxUnavailable, type SandboxLayout } from '../../../reconciler/source/sandbox.js';
import { installDirFor, pinnedVirtops } from '../../../reconciler/source/freshness.js';
import { validateUpFlags } from '../../../reconciler/standalone/up.js';
import { validateControllerFlags } from '../../../reconciler/cluster/run.js';

const layout: SandboxLayout = { src: '/tmp/v/src', project: '/opt/virtops', nodeModules: '/opt/virtops/node_modules', execPath: '/usr/bin/node' };

/** The value following `flag` in argv. */
const after = (argv: string[], flag: string): string | undefined => argv[argv.indexOf(flag) + 1];
/** Every [src, dest] of a given bind kind. */
const binds = (argv: string[], kind: string): Array<[string, string]> =>
  argv.flatMap((a, i) => (a === kind ? [[argv[i + 1]!, argv[i + 2]!] as [string, string]] : []));

describe('sandboxArgv', () => {
  const command = sandboxSynthCommand('/usr/bin/node');
  const argv = sandboxArgv(layout, command);

  it('limits first, then bwrap, then the uid drop, then the command', () => {
    expect(argv[0]).toBe('prlimit');
    expect(argv).toEqual(expect.arrayContaining(['--cpu=120', `--data=${2 * 1024 ** 3}`, `--fsize=${256 * 1024 ** 2}`, '--nproc=256', '--core=0']));
    const b = argv.indexOf('bwrap');
    const s = argv.indexOf('setpriv');
    expect(b).toBeGreaterThan(0);
    expect(s).toBeGreaterThan(b);
    expect(argv.slice(s, s + 8)).toEqual(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--']);
    expect(argv.slice(-command.length)).toEqual(command);
  });

  it('no network, new namespaces, and no user namespace (root inside one maps back to root)', () => {
    expect(argv).toEqual(expect.arrayContaining(['--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session']));
    expect(argv).not.toContain('--unshare-user');
    expect(argv).not.toContain('--unshare-all');
    expect(argv).not.toContain('--share-net');
  });

  it('a clean environment: nothing but what it sets', () => {
    expect(argv).toContain('--clearenv');
    const set = argv.flatMap((a, i) => (a === '--setenv' ? [argv[i + 1]] : []));
    expect(set.sort()).toEqual(['CI', 'HOME', 'NO_COLOR', 'PATH', 'TMPDIR', 'npm_config_offline', 'npm_config_update_notifier']);
    expect(after(argv, 'HOME')).toBe('/scratch');
  });

  it('read-only everywhere except the scratch dir; no state dir, /root, /tmp or /var', () => {
    expect(binds(argv, '--bind')).toEqual([]);
    const t = argv.indexOf('--tmpfs');
    expect(argv.slice(t - 4, t + 2)).toEqual(['--perms', '1777', '--size', String(512 * 1024 ** 2), '--tmpfs', '/scratch']);
    const ro = binds(argv, '--ro-bind').concat(binds(argv, '--ro-bind-try'));
    expect(ro).toEqual(expect.arrayContaining([['/usr', '/usr'], ['/opt/virtops', '/virtops'], ['/tmp/v/src', '/src']]));
    expect(ro.map(([s]) => s)).not.toContain('/opt/virtops/node_modules'); // already inside /virtops
    const dests = ro.map(([, d]) => d);
    for (const d of dests) expect(d).not.toMatch(/^\/(root|tmp|var|home|run)(\/|$)|^\/etc\/shadow/);
    expect(after(argv, '--remount-ro')).toBe('/');
    expect(after(argv, '--chdir')).toBe('/src');
  });

  it('mounts a node installed outside /usr, read-only', () => {
    const a = sandboxArgv({ ...layout, execPath: '/opt/node20/bin/node' }, ['true']);
    expect(binds(a, '--ro-bind')).toContainEqual(['/opt/node20', '/opt/node20']);
    expect(after(a, 'PATH')).toContain('/opt/node20/bin');
  });

  it('mounts other dependencies at /deps', () => {
    const other = { ...layout, nodeModules: '/srv/deps/node_modules' };
    expect(sandboxNodeModules(other)).toBe('/deps');
    expect(sandboxNodeModules({ ...layout, nodeModules: '/opt/virtops/node_modules/' })).toBe('/virtops/node_modules');
    expect(binds(sandboxArgv(other, ['true']), '--ro-bind')).toContainEqual(['/srv/deps/node_modules', '/deps']);
  });

  it('links the commit\'s node_modules into the dependencies, and virtops to this checkout', () => {
    expect(dependencyLinks(['.bin', '@types', 'cdk8s', '.package-lock.json'], '/virtops/node_modules')).toEqual([
      ['.bin', '/virtops/node_modules/.bin'], ['@types', '/virtops/node_modules/@types'], ['cdk8s', '/virtops/node_modules/cdk8s'], ['virtops', '/virtops'],
    ]);
    expect(dependencyLinks(['virtops'], '/deps')).toEqual([['virtops', '/deps/virtops']]);
  });

  it('binds /bin etc. as directories where the host has no merged /usr', () => {
    const a = sandboxArgv(layout, ['true'], {}, () => false);
    expect(binds(a, '--ro-bind-try')).toContainEqual(['/bin', '/bin']);
    expect(a).not.toContain('--symlink');
  });

  it('takes limits and refuses root or nonsense', () => {
    const a = sandboxArgv(layout, ['true'], { uid: 990, gid: 991, memoryBytes: 512 * 1024 ** 2, cpuSeconds: 30 });
    expect(a).toEqual(expect.arrayContaining(['--reuid=990', '--regid=991', `--data=${512 * 1024 ** 2}`, '--cpu=30']));
    expect(() => sandboxArgv(layout, ['true'], { uid: 0 })).toThrow(/uid must not be 0/);
    expect(() => sandboxArgv(layout, [])).toThrow(/empty/);
    expect(sandboxLimitProblems({ gid: 0, cpuSeconds: -1, memoryBytes: 1.5, scratchBytes: 0 })).toEqual([
      expect.stringMatching(/gid must not be 0/),
      expect.stringMatching(/memoryBytes must be a positive whole number/),
      expect.stringMatching(/cpuSeconds must be a positive whole number/),
      expect.stringMatching(/scratchBytes must be a positive whole number/),
    ]);
  });

  it('runs the CLI of the virtops the commit resolves (the pinned install)', () => {
    expect(sandboxSynthCommand('/usr/bin/node', 'out')).toEqual(['/usr/bin/node', '/src/node_modules/virtops/cli/bin.js', 'synth', '--check', '--out', 'out']);
  });
});

describe('pinnedVirtops: what the verifier installs from a commit\'s package-lock.json', () => {
  const lock = (packages: Record<string, unknown>) => JSON.stringify({ name: 'my-vms', lockfileVersion: 3, packages: { '': { name: 'my-vms' }, ...packages } });
  const reg = (name: string, version: string) => ({ version, resolved: `https://registry.npmjs.org/${name}/-/${name}-${version}.tgz`, integrity: 'sha512-x' });

  it('the pinned version, from npm\'s registry or a .tgz with an integrity hash', () => {
    expect(pinnedVirtops(lock({ 'node_modules/virtops': { version: '0.2.0', resolved: 'http://npm.internal:4873/virtops/-/virtops-0.2.0.tgz', integrity: 'sha512-x' } }), ['http://npm.internal:4873'])).toMatchObject({ ok: true, version: '0.2.0' });
    expect(pinnedVirtops(lock({ 'node_modules/virtops': reg('virtops', '0.2.0'), 'node_modules/cdk8s': reg('cdk8s', '2.70.106') }))).toEqual({ ok: true, version: '0.2.0', resolved: 'https://registry.npmjs.org/virtops/-/virtops-0.2.0.tgz' });
    expect(pinnedVirtops(lock({ 'node_modules/virtops': { version: '0.1.0', resolved: 'file:../virtops-0.1.0.tgz', integrity: 'sha512-y' } }))).toMatchObject({ ok: true, version: '0.1.0' });
  });

  it.each([
    [undefined, /no package-lock.json.*npm install/],
    ['{', /not valid JSON/],
    [JSON.stringify({ lockfileVersion: 1, dependencies: {} }), /no "packages" \(lockfileVersion 1/],
    [lock({ 'node_modules/cdk8s': reg('cdk8s', '2.70.106') }), /does not pin virtops.*npm install virtops@/],
    [lock({ 'node_modules/virtops': reg('virtops', '0.2.0'), 'node_modules/evil': { version: '1.0.0', resolved: 'git+ssh://git@example.com/evil.git#abc', integrity: 'sha512-z' } }), /resolves evil from git\+ssh.*no git or directory/],
    [lock({ 'node_modules/virtops': reg('virtops', '0.2.0'), 'node_modules/x': { version: '1.0.0', resolved: 'http://169.254.169.254/latest/x.tgz', integrity: 'sha512-z' } }), /resolves x from http:\/\/169\.254.*only from npm's registry \(https:\/\/registry\.npmjs\.org\/\).*no other hosts/],
    [lock({ 'node_modules/virtops': { version: '0.1.0', resolved: 'file:/root', integrity: 'sha512-z' } }), /resolves virtops from file:\/root/],
    [lock({ 'node_modules/virtops': { version: '0.1.0', resolved: 'file:/srv/v.tgz' } }), /no integrity hash for virtops/],
    [lock({ 'node_modules/virtops': { resolved: '../virtops', link: true } }), /links virtops to a directory/],
  ])('refuses %#, saying why and the fix', (text, problem) => {
    const got = pinnedVirtops(text);
    expect(got.ok).toBe(false);
    expect(!got.ok && got.problem).toMatch(problem);
  });

  it('one cache dir per lockfile content', () => {
    expect(installDirFor('/c', 'a')).toBe(installDirFor('/c', 'a'));
    expect(installDirFor('/c', 'a')).not.toBe(installDirFor('/c', 'b'));
    expect(installDirFor('/c', 'a')).toMatch(/^\/c\/[0-9a-f]{32}$/);
  });
});

describe('sandboxUnavailable', () => {
  it('needs root (to drop to another uid) and the tools, and says the fix', () => {
    expect(sandboxUnavailable({ uid: 1000, pathEnv: '/usr/bin' })).toMatch(/must start as root.*virtops synth --check/);
    expect(sandboxUnavailable({ uid: 0, pathEnv: '/nonexistent' })).toMatch(/needs bwrap, prlimit, setpriv.*bubblewrap and util-linux/);
  });
});

describe('--verify-synth (opt-in) and --no-freshness-check (accepted, ignored)', () => {
  it.each([
    ['up', (raw: Record<string, unknown>) => validateUpFlags({ repo: '/r.git', ...raw })],
    ['controller', (raw: Record<string, unknown>) => validateControllerFlags({ repo: '/r.git', ...raw })],
  ])('%s: off by default, on when asked, the old flag changes nothing, both together is an error', (_mode, validate) => {
    const def = validate({});
    expect(def.ok && def.config.freshness).toBe(false);
    const on = validate({ verifySynth: true, freshnessCheck: true }); // commander's default for --no-freshness-check
    expect(on.ok && on.config.freshness).toBe(true);
    const old = validate({ freshnessCheck: false });
    expect(old.ok && old.config.freshness).toBe(false);
    const both = validate({ verifySynth: true, freshnessCheck: false });
    expect(both.ok).toBe(false);
    expect(!both.ok && both.errors.join('\n')).toMatch(/--verify-synth and --no-freshness-check contradict each other/);
  });
});
