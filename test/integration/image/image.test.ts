/**
 * `npm run image`: builds (or takes from ~/.cache/virtops/image) the virtops OCI image,
 * pushes it to a real local registry, and checks what is inside by unpacking it with umoci
 * and running the image's own Node, CLI, bundles, virsh and QEMU in the unpacked rootfs
 * (bwrap). A cold build (mmdebstrap from the Debian mirror) takes a few minutes; later runs
 * with unchanged inputs reuse the cache.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { ensureTestGuest, GUEST_MARKERS } from '../../helpers/test-guest.js';
import { IMAGE_CHECKS } from '../../../scripts/image/plan.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const COLD_BUILD_MS = 20 * 60_000;

interface BuildJson {
  ref: string;
  tag: string;
  digest: string;
  layout: string;
  compressedBytes: number;
  uncompressedBytes: number;
  buildSeconds: number;
  cached: boolean;
}

/**
 * A snapshot of the committed checkout (a local clone of HEAD, node_modules hard-linked), which
 * the image is built from: its inputs cannot change between the two builds of this test
 * (the working tree may, while someone edits it), as in CI's fresh clone.
 */
async function snapshot(dir: string): Promise<string> {
  const src = join(dir, 'src');
  const head = (await execa('git', ['-C', REPO, 'rev-parse', 'HEAD'])).stdout.trim();
  await execa('git', ['clone', '--quiet', '--shared', '--no-checkout', REPO, src]);
  await execa('git', ['-C', src, 'checkout', '--quiet', '--detach', head]);
  await execa('cp', ['-al', join(REPO, 'node_modules'), join(src, 'node_modules')]);
  return src;
}

async function buildImage(src: string, registry: LocalRegistry): Promise<{ json: BuildJson; lastLine: string; stderr: string }> {
  const r = await execa('bash', [join(src, 'scripts', 'image', 'build.sh'), '--registry', registry.host, '--push', '--json'], { cwd: src, reject: false });
  if (r.exitCode !== 0) throw new Error(`npm run image failed (${r.exitCode}):\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { json: JSON.parse(lines.at(-2)!) as BuildJson, lastLine: lines.at(-1)!, stderr: r.stderr };
}

/** argv inside the unpacked rootfs, as the image's config would run it (PATH, workdir /opt/virtops). */
function inImage(rootfs: string, argv: readonly string[], extra: readonly string[] = []) {
  // Own pid namespace: whatever argv starts (daemons included) dies with it.
  return execa('bwrap', [
    '--bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--unshare-pid', '--unshare-net',
    '--die-with-parent', '--clearenv', '--setenv', 'PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--setenv', 'HOME', '/root', '--chdir', '/opt/virtops', ...extra, '--', ...argv,
  ], { reject: false });
}

/** A direct-kernel-boot domain of the test guest, serial console to a file. */
const SMOKE_DOMAIN = `<domain type='qemu'>
  <name>virtops-image-smoke</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>/guest/vmlinuz</kernel><initrd>/guest/initrd.img</initrd><cmdline>console=ttyS0</cmdline></os>
  <devices><serial type='file'><source path='/tmp/serial.log'/><target port='0'/></serial><memballoon model='none'/></devices>
</domain>`;

describe('npm run image', () => {
  let registry: LocalRegistry;
  let first: Awaited<ReturnType<typeof buildImage>>;
  let again: Awaited<ReturnType<typeof buildImage>>;
  let unpacked: string;
  let version: string;

  beforeAll(async () => {
    version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    registry = await startRegistry();
    unpacked = await mkdtemp(join(tmpdir(), 'virtops-image-test-'));
    const src = await snapshot(unpacked);
    first = await buildImage(src, registry);
    again = await buildImage(src, registry);
    await execa('umoci', ['unpack', '--image', `${first.json.layout}:${first.json.tag}`, join(unpacked, 'bundle')]);
  }, COLD_BUILD_MS);

  afterAll(async () => {
    await registry?.stop();
    if (unpacked) await rm(unpacked, { recursive: true, force: true });
  });

  it('prints the reference (last line) and a JSON line; the tag is <version>-<manifest digest prefix>', () => {
    expect(first.lastLine).toBe(`${registry.host}/virtops:${first.json.tag}`);
    expect(first.json.ref).toBe(first.lastLine);
    expect(first.json.tag).toBe(`${version}-${first.json.digest.slice('sha256:'.length, 'sha256:'.length + 12)}`);
    expect(first.json.compressedBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(first.json.uncompressedBytes).toBeGreaterThan(first.json.compressedBytes);
  });

  it('is in the registry under the printed tag and under <version>, with the same digest', async () => {
    for (const ref of [first.lastLine, `${registry.host}/virtops:${version}`]) {
      const r = await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
      const inspected = JSON.parse(r.stdout) as { Digest: string; Os: string; Architecture: string; Layers: string[] };
      expect(inspected.Digest).toBe(first.json.digest);
      expect([inspected.Os, inspected.Architecture]).toEqual(['linux', 'amd64']);
      expect(inspected.Layers).toHaveLength(2);
    }
  });

  it('unpacked, runs the CLI, the bundles, the native libvirt addon, virsh and QEMU from the image itself', async () => {
    const rootfs = join(unpacked, 'bundle', 'rootfs');
    const cli = await inImage(rootfs, ['node', 'cli/bin.js', '--help']);
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toMatch(/launcher-monitor/);
    for (const check of IMAGE_CHECKS) {
      const r = await inImage(rootfs, check.argv);
      expect(r.exitCode, `${check.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout, check.name).toMatch(check.expect);
    }
    // The bundles were built inside the image and are fresh there: on a read-only root (a
    // container with readOnlyRootFilesystem) cli/bin.js runs them without rebuilding (a stale
    // one would fail to rebuild and warn on stderr before falling back to tsx).
    for (const cmd of ['launcher-monitor', 'agent', 'controller']) {
      const r = await inImage(rootfs, ['virtops', cmd, '--help'], ['--remount-ro', '/']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr, cmd).toBe('');
    }
    // They record /opt/virtops paths, not this checkout's.
    const manifest = JSON.parse(await readFile(join(rootfs, 'opt/virtops/node_modules/.cache/virtops/launcher.json'), 'utf8')) as { dir: string };
    expect(manifest.dir).toMatch(/^\/opt\/virtops\/node_modules\/\.cache\/virtops\/launcher-/);
    // The Node binary is this machine's (the version engines.node asks for).
    expect((await inImage(rootfs, ['node', '--version'])).stdout.trim()).toBe(process.version);
    // Kept small: no man pages, docs other than copyright, locales or apt lists.
    const filesUnder = async (dir: string) =>
      existsSync(join(rootfs, dir)) ? (await execa('find', [join(rootfs, dir), '-type', 'f'])).stdout.split('\n').filter(Boolean) : [];
    expect(await filesUnder('usr/share/man')).toEqual([]);
    expect((await filesUnder('usr/share/doc')).filter((f) => !f.endsWith('/copyright'))).toEqual([]);
    expect(await filesUnder('usr/share/locale')).toEqual([]);
    expect((await filesUnder('var/lib/apt/lists')).filter((f) => !f.endsWith('/lock'))).toEqual([]);
    const config = JSON.parse(await readFile(join(unpacked, 'bundle', 'config.json'), 'utf8')) as { process: { args: string[]; cwd: string } };
    expect(config.process.args).toEqual(['/usr/local/bin/virtops', '--help']);
    expect(config.process.cwd).toBe('/opt/virtops');
  });

  it("the image's own virtlogd, libvirtd and QEMU boot the test guest (as a compute container would, without cgroups of libvirt's own)", async () => {
    const guest = await ensureTestGuest();
    const rootfs = join(unpacked, 'bundle', 'rootfs');
    const script = [
      'set -e; mkdir -p /run/libvirt; virtlogd -d; libvirtd -d',
      'for i in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done',
      'printf "%s" "$DOMAIN" > /tmp/dom.xml; virsh -q -c qemu:///system create /tmp/dom.xml',
      `for i in $(seq 120); do grep -q ${GUEST_MARKERS.ready} /tmp/serial.log 2>/dev/null && break; sleep 1; done`,
      'cat /tmp/serial.log; virsh -q -c qemu:///system destroy virtops-image-smoke',
    ].join('\n');
    const r = await inImage(rootfs, ['sh', '-c', script], [
      '--tmpfs', '/run', '--ro-bind', '/sys', '/sys', '--ro-bind', guest.vmlinuz, '/guest/vmlinuz', '--ro-bind', guest.initrd, '/guest/initrd.img',
      '--setenv', 'DOMAIN', SMOKE_DOMAIN,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(GUEST_MARKERS.booted);
    expect(r.stdout).toContain(GUEST_MARKERS.ready);
  });

  it('a second run with unchanged inputs takes the cached image (same digest, nothing rebuilt)', () => {
    expect(again.json.cached).toBe(true);
    expect(again.json.digest).toBe(first.json.digest);
    expect(again.stderr).toMatch(/root filesystem cached/);
    expect(again.stderr).toMatch(/image cached/);
    expect(again.stderr).not.toMatch(/mmdebstrap|packing with umoci/);
  });
});
