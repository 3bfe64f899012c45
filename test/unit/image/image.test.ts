import { describe, expect, it } from 'vitest';
import { UNWRITTEN_OUTDIR } from '../dsl/helpers.js';
import { imageRefProblem, virtopsImage, virtopsVersion } from '../../../synth/image.js';
import { VirtopsApp } from '../../../synth/app.js';
import {
  IMAGE_PACKAGES, DEFAULT_ROOTFS, imageRef, imageTag, mmdebstrapArgs, parseImageArgs, rootfsKey, topModuleDirs,
} from '../../../scripts/image/plan.js';
import pkg from '../../../package.json' with { type: 'json' };

describe('the virtops image name (synth/image.ts)', () => {
  it('defaults to localhost:5000/virtops:<package version>', () => {
    expect(virtopsVersion()).toBe(pkg.version);
    expect(virtopsImage()).toBe(`localhost:5000/virtops:${pkg.version}`);
    expect(virtopsImage('registry.example.com/team', '0.1.0-0123456789ab')).toBe('registry.example.com/team/virtops:0.1.0-0123456789ab');
    expect(virtopsImage('', 'x')).toBe('virtops:x');
  });

  it.each([
    ['localhost:5000/virtops:0.1.0', true],
    ['127.0.0.1:41234/virtops:0.1.0-0123456789ab', true],
    ['virtops', true],
    [`ghcr.io/acme/virtops@sha256:${'a'.repeat(64)}`, true],
    ['http://localhost:5000/virtops:0.1.0', false],
    ['Localhost:5000/Virtops', false],
    ['virtops:', false],
    ['', false],
  ])('image reference %j valid: %s', (ref, ok) => {
    const problem = imageRefProblem('VirtopsApp image', ref);
    if (ok) expect(problem).toBeUndefined();
    else expect(problem).toMatch(/^VirtopsApp image: .* is not an image reference; expected \[REGISTRY\[:PORT\]\/\]NAME/);
  });

  it('VirtopsApp({ image }) names it in every launcher Pod and in the controller and agent; a bad one is refused naming the field', () => {
    const app = new VirtopsApp({ outdir: UNWRITTEN_OUTDIR, image: '127.0.0.1:5000/virtops:9.9.9' });
    const install = app.charts.find((c) => c.node.id === 'install')!;
    const images = install.toJson().flatMap((o: { spec?: { template?: { spec?: { containers?: { image: string }[] } } } }) =>
      (o.spec?.template?.spec?.containers ?? []).map((c) => c.image));
    expect(images).toEqual(['127.0.0.1:5000/virtops:9.9.9', '127.0.0.1:5000/virtops:9.9.9']);
    expect(() => new VirtopsApp({ outdir: UNWRITTEN_OUTDIR, image: 'HTTP://x' })).toThrow(/VirtopsApp image: "HTTP:\/\/x" is not an image reference/);
  });
});

describe('npm run image: pure parts (scripts/image/plan.ts)', () => {
  it('parses the flags and names the flag and the fix when one is wrong', () => {
    expect(parseImageArgs([])).toEqual({ push: false, json: false, rebuild: false, help: false });
    expect(parseImageArgs(['--registry', '127.0.0.1:5000', '--push', '--out=/tmp/x', '--json'])).toEqual({
      registry: '127.0.0.1:5000', out: '/tmp/x', push: true, json: true, rebuild: false, help: false,
    });
    expect(() => parseImageArgs(['--push'])).toThrow(/--push needs --registry HOST\[:PORT\]/);
    expect(() => parseImageArgs(['--registry', 'http://x:5000'])).toThrow(/--registry "http:\/\/x:5000": expected HOST\[:PORT\]\[\/PATH\] without a scheme/);
    expect(() => parseImageArgs(['--registry'])).toThrow(/--registry needs a value/);
    expect(() => parseImageArgs(['--out', '--json'])).toThrow(/--out needs a value/);
    expect(() => parseImageArgs(['--bogus'])).toThrow(/unknown argument "--bogus"/);
    expect(() => parseImageArgs(['--out', '/tmp/a:b'])).toThrow(/--out "\/tmp\/a:b": the path may not contain ':'/);
  });

  it('tags <version>-<12 hex digits of the manifest digest>', () => {
    expect(imageTag('0.1.0', `sha256:${'0123456789abcdef'.repeat(4)}`)).toBe('0.1.0-0123456789ab');
    expect(() => imageTag('0.1.0', 'sha256:xyz')).toThrow(/is not sha256:<64 hex digits>/);
    expect(imageRef('127.0.0.1:5000', '0.1.0-0123456789ab')).toBe('127.0.0.1:5000/virtops:0.1.0-0123456789ab');
    expect(imageRef(undefined, '0.1.0')).toBe('virtops:0.1.0');
  });

  it('builds the rootfs from Debian packages only (essential variant, no recommends), keyed by what goes in', () => {
    const args = mmdebstrapArgs(DEFAULT_ROOTFS, '/out.tar', '/hook.sh');
    expect(args).toContain('--variant=essential');
    expect(args).toContain(`--include=${IMAGE_PACKAGES.join(',')}`);
    expect(args).toContain('--aptopt=APT::Install-Recommends "false"');
    expect(args).toContain('--dpkgopt=path-exclude=/usr/share/man/*');
    expect(args.slice(-5)).toEqual(['bookworm', '/out.tar', 'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main', 'deb http://deb.debian.org/debian-security bookworm-security main']);
    const key = rootfsKey(DEFAULT_ROOTFS, 'mmdebstrap 1.3.5', 'hook');
    expect(rootfsKey(DEFAULT_ROOTFS, 'mmdebstrap 1.3.5', 'hook')).toBe(key);
    expect(rootfsKey({ ...DEFAULT_ROOTFS, packages: [...IMAGE_PACKAGES, 'vim'] }, 'mmdebstrap 1.3.5', 'hook')).not.toBe(key);
    expect(rootfsKey({ ...DEFAULT_ROOTFS, mirror: 'http://mirror.example/debian' }, 'mmdebstrap 1.3.5', 'hook')).not.toBe(key);
    expect(rootfsKey(DEFAULT_ROOTFS, 'mmdebstrap 1.3.5', 'hook 2')).not.toBe(key);
  });

  it('copies each production module directory once (nested ones come with their parent)', () => {
    const listed = ['/r', '/r/node_modules/a', '/r/node_modules/a/node_modules/b', '/r/node_modules/@s/c', '/r/node_modules/a', '/elsewhere/x'].join('\n');
    expect(topModuleDirs('/r', listed)).toEqual(['node_modules/@s/c', 'node_modules/a']);
  });
});
