/**
 * Pure parts of `npm run image` (scripts/image/build.ts): flags, the Debian package list,
 * the mmdebstrap command line, cache keys, tags and sizes. No I/O here.
 */
import { createHash } from 'node:crypto';
import { IMAGE_REPOSITORY } from '../../synth/image.js';

/**
 * Debian packages of the image, with their dependencies but no Recommends:
 * - libvirt-daemon + libvirt-daemon-driver-qemu: the compute container may run its own
 *   libvirtd/virtqemud and virtlogd so the guest lives in the Pod's cgroup (seed 2.4);
 * - libvirt-clients: the launcher calls `virsh`;
 * - qemu-system-x86: the emulator (Debian 12 has no headless variant; the GUI part is the
 *   separate qemu-system-gui, which we leave out); qemu-utils: `qemu-img` overlays;
 * - genisoimage: cloud-init NoCloud/ConfigDrive ISOs; skopeo: containerDisk/kernelBoot pulls;
 * - ovmf: UEFI guests; git + ca-certificates: the controller's git source;
 * - libstdc++6: the Node binary copied in links it.
 */
export const IMAGE_PACKAGES = [
  'libvirt-daemon',
  'libvirt-daemon-driver-qemu',
  'libvirt-clients',
  'qemu-system-x86',
  'qemu-utils',
  'genisoimage',
  'skopeo',
  'ovmf',
  'git',
  'ca-certificates',
  'libstdc++6',
] as const;

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';
export const DEFAULT_SUITE = 'bookworm';

/** dpkg filters: no docs (copyright files stay), man pages, info, locales. */
const DPKG_EXCLUDES = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-exclude=/usr/share/lintian/*',
  'path-exclude=/usr/share/bash-completion/*',
];

export interface RootfsRecipe {
  readonly mirror: string;
  readonly securityMirror: string;
  readonly suite: string;
  readonly packages: readonly string[];
}

export const DEFAULT_ROOTFS: RootfsRecipe = {
  mirror: DEFAULT_MIRROR,
  securityMirror: DEFAULT_SECURITY_MIRROR,
  suite: DEFAULT_SUITE,
  packages: IMAGE_PACKAGES,
};

/**
 * mmdebstrap's argv writing the root filesystem as an uncompressed tar to `out`. Variant
 * `essential` (Essential: yes packages, no apt) plus the packages: the smallest base that
 * holds them. SOURCE_DATE_EPOCH (set by the caller) makes file times reproducible.
 */
export function mmdebstrapArgs(r: RootfsRecipe, out: string, hook: string): string[] {
  return [
    '--variant=essential',
    '--mode=root',
    '--format=tar',
    '--skip=output/dev',
    '--aptopt=APT::Install-Recommends "false"',
    ...DPKG_EXCLUDES.map((o) => `--dpkgopt=${o}`),
    `--include=${r.packages.join(',')}`,
    // Trims and libvirt configuration (scripts/image/rootfs-hook.sh; its hash is in the key).
    `--customize-hook=sh ${hook} "$1"`,
    r.suite,
    out,
    `deb ${r.mirror} ${r.suite} main`,
    `deb ${r.mirror} ${r.suite}-updates main`,
    `deb ${r.securityMirror} ${r.suite}-security main`,
  ];
}

/** A short hex key over the parts (order matters). */
export function cacheKey(parts: readonly (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 20);
}

/** The rootfs cache key: the mmdebstrap command line (packages, mirrors, suite, filters), the hook script and mmdebstrap's version. */
export function rootfsKey(r: RootfsRecipe, mmdebstrapVersion: string, hookText: string): string {
  return cacheKey(['rootfs-v1', mmdebstrapVersion, hookText, ...mmdebstrapArgs(r, '-', 'HOOK')]);
}

/** `<version>-<first 12 hex digits of the manifest digest>`. */
export function imageTag(version: string, manifestDigest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(manifestDigest);
  if (!m) throw new Error(`manifest digest ${JSON.stringify(manifestDigest)} is not sha256:<64 hex digits>`);
  return `${version}-${m[1]!.slice(0, 12)}`;
}

export function imageRef(registry: string | undefined, tag: string): string {
  return `${registry ? `${registry}/` : ''}${IMAGE_REPOSITORY}:${tag}`;
}

export interface ImageOptions {
  readonly registry?: string;
  readonly push: boolean;
  readonly out?: string;
  readonly json: boolean;
  readonly rebuild: boolean;
  readonly help: boolean;
}

export const USAGE = `usage: npm run image -- [--registry HOST[:PORT][/PATH]] [--push] [--out DIR] [--json] [--rebuild]

Builds the virtops OCI image from Debian packages (mmdebstrap, no base image pulled) and
umoci, cached in ~/.cache/virtops/image/ by its inputs. Needs root.
  --registry R   name the image R/virtops:<tag> (e.g. 127.0.0.1:5000)
  --push         push <tag> and <version> to --registry with skopeo (plain HTTP allowed)
  --out DIR      also copy the image as an OCI layout to DIR (tags <tag> and <version>)
  --json         print a JSON line (ref, digest, sizes, build time) before the reference
  --rebuild      ignore the cache (fetch current Debian packages)
The last line on stdout is the image reference.`;

const REGISTRY_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

/** Parses the flags; throws an Error naming the flag and the fix. */
export function parseImageArgs(argv: readonly string[]): ImageOptions {
  let registry: string | undefined;
  let out: string | undefined;
  let push = false;
  let json = false;
  let rebuild = false;
  let help = false;
  const value = (i: number, flag: string, what: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value: ${flag} ${what}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    switch (flag) {
      case '--registry':
        registry = inline ?? value(i++, flag, 'HOST[:PORT][/PATH], e.g. 127.0.0.1:5000');
        if (!REGISTRY_RE.test(registry)) {
          throw new Error(`--registry ${JSON.stringify(registry)}: expected HOST[:PORT][/PATH] without a scheme, e.g. 127.0.0.1:5000 or registry.example.com/team`);
        }
        break;
      case '--out':
        out = inline ?? value(i++, flag, 'DIR (an OCI layout directory to write)');
        if (out === '') throw new Error('--out: give a directory, e.g. --out /tmp/virtops-image');
        if (out.includes(':')) throw new Error(`--out ${JSON.stringify(out)}: the path may not contain ':' (skopeo's oci: transport reads the tag after it); pick another directory`);
        break;
      case '--push':
        push = true;
        break;
      case '--json':
        json = true;
        break;
      case '--rebuild':
        rebuild = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(a)}; see --help`);
    }
  }
  if (push && !registry) throw new Error('--push needs --registry HOST[:PORT] to push to, e.g. --registry 127.0.0.1:5000 --push');
  return { ...(registry ? { registry } : {}), ...(out ? { out } : {}), push, json, rebuild, help };
}

/**
 * Files of the virtops checkout that go into /opt/virtops: the runtime's sources (the full
 * CLI runs them through tsx; the bundles' freshness check hashes them), the bundle script
 * and the manifests that pin dependencies. Tests, benchmarks, examples, dist/ and the
 * control-plane build stay out.
 */
export const APP_PATHS = [
  'api', 'cli', 'dsl', 'launcher', 'reconciler', 'synth', 'templates',
  'scripts/build-bundles.mjs', 'scripts/build-bundles.d.mts', 'scripts/code-cache.mjs',
  // `virtops testenv` reads the control-plane versions at registration (its --help defaults).
  'tools/kube/versions.env',
  'package.json', 'package-lock.json', 'tsconfig.json', 'cdk8s.yaml', 'README.md',
] as const;

/** Production node_modules entries (from `npm ls --omit=dev --parseable --all`), relative, minus nested duplicates. */
export function topModuleDirs(repo: string, parseable: string): string[] {
  const prefix = `${repo.replace(/\/$/, '')}/`;
  const rel = parseable
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${prefix}node_modules/`))
    .map((l) => l.slice(prefix.length))
    .sort();
  return rel.filter((p, i) => !rel.slice(0, i).some((q) => p.startsWith(`${q}/`)) && rel.indexOf(p) === i);
}

/** Files in node_modules nothing runs: source maps, type declarations, docs, the native addon's build intermediates. */
export const NODE_MODULES_PRUNE_FIND = [
  '(', '-name', '*.map', '-o', '-name', '*.d.ts', '-o', '-name', '*.d.mts', '-o', '-name', '*.d.cts',
  '-o', '-iname', '*.md', '-o', '-iname', 'CHANGELOG*', ')', '-type', 'f',
];

/** What the image must be able to do, run inside its rootfs before packing (and by test/integration/image). */
export const IMAGE_CHECKS: readonly { readonly name: string; readonly argv: readonly string[]; readonly expect: RegExp }[] = [
  {
    name: 'the native libvirt addon loads against the image libvirt and opens test:///default',
    argv: ['node', '--input-type=module', '-e',
      "const { Hypervisor } = await import('@unraid/libvirt'); const h = new Hypervisor({ uri: 'test:///default' }); await h.connectOpen(); console.log('domains', (await h.connectListAllDomains()).length); await h.connectClose();"],
    expect: /^domains \d+/m,
  },
  { name: 'the full CLI (tsx)', argv: ['virtops', '--help'], expect: /launcher-monitor/ },
  { name: 'the launcher bundle', argv: ['virtops', 'launcher-monitor', '--help'], expect: /Usage: .*launcher-monitor/ },
  { name: 'the reconciler bundle', argv: ['virtops', 'agent', '--help'], expect: /Usage: .*agent/ },
  { name: 'virsh', argv: ['virsh', '--version'], expect: /^\d+\.\d+/ },
  { name: 'QEMU', argv: ['qemu-system-x86_64', '--version'], expect: /QEMU emulator version/ },
  { name: 'qemu-img', argv: ['qemu-img', '--version'], expect: /qemu-img version/ },
  { name: 'libvirtd', argv: ['libvirtd', '--version'], expect: /libvirtd \(libvirt\)/ },
  { name: 'skopeo', argv: ['skopeo', '--version'], expect: /skopeo version/ },
  { name: 'genisoimage', argv: ['genisoimage', '--version'], expect: /genisoimage/ },
  { name: 'git', argv: ['git', '--version'], expect: /git version/ },
  { name: 'container-disk (static, for the volume containers)', argv: ['sh', '-c', 'container-disk --no-op && echo "no-op ok"'], expect: /^no-op ok$/m },
  { name: 'the launcher Pod user', argv: ['getent', 'passwd', '107'], expect: /^qemu:x:107:107:/ },
];

/** The user the launcher Pod's containers run as (synth's runAsUser), named in the image's /etc/passwd as in KubeVirt's. */
export const POD_USER = { name: 'qemu', uid: 107, gid: 107 } as const;

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
