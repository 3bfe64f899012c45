import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Volume, VirtualMachineInstance } from '../../../api/kubevirt.js';
import {
  CommandError, DirectorySecretSource, ImagePullError, ImageStore, materializeVolumes, releaseVolumes, VolumeError,
  type MaterializeOptions, type TransferRetry,
} from '../../../launcher/volumes/index.js';
import { pushOciLayout, pushTestGuestImages, startBreakingProxy, startRegistry, type LocalRegistry, type PushedTestGuest } from '../../helpers/registry.js';
import { ensureTestGuest, type TestGuest } from '../../helpers/test-guest.js';

// Real registry (docker-registry), real skopeo/qemu-img/xorriso, the real test guest's images.
let guest: TestGuest;
let registry: LocalRegistry;
let images: PushedTestGuest;
let work: string;
let store: ImageStore;
let secretsDir: string;
let pvcDir: string;

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);
const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');
const qemuInfo = async (p: string): Promise<Record<string, unknown>> =>
  JSON.parse((await execa('qemu-img', ['info', '--output=json', '--force-share', p])).stdout) as Record<string, unknown>;

function vmi(name: string, volumes: Volume[], uid = `uid-${name}`): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'tests', uid },
    spec: { domain: { devices: {} }, volumes },
  };
}

function options(vmName: string, extra: Partial<MaterializeOptions> = {}): MaterializeOptions {
  return {
    vmDir: join(work, 'vms', vmName),
    imageStore: store,
    secrets: new DirectorySecretSource({ secretsDir, configMapsDir: join(work, 'configmaps') }),
    pvcDir,
    ...extra,
  };
}

/** Files and volume id of an ISO, read back with xorriso. */
async function readIso(iso: string): Promise<{ volumeId: string; files: Record<string, string> }> {
  const pvd = await execa('xorriso', ['-indev', iso, '-pvd_info']);
  const volumeId = /Volume Id\s*:\s*(\S*)/.exec(pvd.stdout)?.[1] ?? '';
  const out = await mkdtemp(join(tmpdir(), 'virtops-iso-read-'));
  try {
    await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
    const files: Record<string, string> = {};
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(dir, e.name), `${prefix}${e.name}/`);
        else files[`${prefix}${e.name}`] = await readFile(join(dir, e.name), 'utf8');
      }
    };
    await walk(out, '');
    return { volumeId, files };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  guest = await ensureTestGuest();
  registry = await startRegistry();
  images = await pushTestGuestImages(registry);
  work = await mkdtemp(join(tmpdir(), 'virtops-volumes-it-'));
  store = new ImageStore({ dir: join(work, 'store'), insecureRegistries: [registry.host] });
  secretsDir = join(work, 'secrets');
  pvcDir = join(work, 'pvcs');
  const put = async (dir: string, files: Record<string, string>): Promise<void> => {
    await mkdir(dir, { recursive: true });
    for (const [k, v] of Object.entries(files)) await writeFile(join(dir, k), v);
  };
  await put(join(secretsDir, 'tests', 'ci-secret'), { userdata: '#cloud-config\nvirtops-marker: from-secret\n', networkdata: 'version: 2\n' });
  await put(join(secretsDir, 'tests', 'app-secret'), { 'db-password': 's3cret', '.hidden-key': 'h' });
  await put(join(work, 'configmaps', 'tests', 'app-config'), { 'app.conf': 'debug=1\n' });
  await mkdir(join(pvcDir, 'tests'), { recursive: true });
  await execa('qemu-img', ['create', '-q', '-f', 'raw', join(pvcDir, 'tests', 'data.img'), '16M']);
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('containerDisk', () => {
  it('pulls the image into the store and attaches a per-VMI qcow2 overlay backed by the base', async () => {
    const opts = options('cd-a');
    const v = vmi('cd-a', [{ name: 'root', containerDisk: { image: images.diskImage } }]);
    const { volumes } = await materializeVolumes(v, opts);
    const root = volumes.root!;
    expect(root).toMatchObject({ name: 'root', type: 'file', format: 'qcow2', backingStore: { format: 'qcow2' } });
    expect(root.path).toBe(join(opts.vmDir, 'volumes', 'ephemeral', 'uid-cd-a', 'root.qcow2'));
    const base = root.backingStore!.path;
    expect(base.startsWith(join(work, 'store', 'images'))).toBe(true);
    expect(await sha(base)).toBe(await sha(guest.disk)); // the disk file from /disk/ of the image
    const info = await qemuInfo(root.path);
    expect(info.format).toBe('qcow2');
    expect(info['backing-filename']).toBe(base);
    expect(info['backing-filename-format']).toBe('qcow2');

    // Materialising again (a restarted launcher) keeps the same overlay file.
    const before = await stat(root.path);
    const again = await materializeVolumes(v, opts);
    expect(again.volumes.root!.path).toBe(root.path);
    expect((await stat(root.path)).ino).toBe(before.ino);

    // A launcher restarted under the running VMI keeps the overlay even when the registry is
    // unreachable (it must not re-pull, and must never recreate the overlay under QEMU).
    const offline = new ImageStore({ dir: join(work, 'store-offline') });
    expect((await materializeVolumes(v, { ...opts, imageStore: offline })).volumes.root).toEqual(root);
    expect(await exists(join(work, 'store-offline'))).toBe(false);

    // The VMI stops: the overlay goes, the shared base stays.
    await releaseVolumes(v, opts, { deleteVm: false });
    expect(await exists(root.path)).toBe(false);
    expect(await exists(base)).toBe(true);
    await releaseVolumes(v, opts, { deleteVm: true });
    expect(await exists(opts.vmDir)).toBe(true); // the launcher's dir: not ours to remove
    expect(await readdir(opts.vmDir)).toEqual([]);
  });

  it('concurrent pulls of one image into one store all succeed (no shared temp file names)', async () => {
    const fresh = new ImageStore({ dir: join(work, 'store-concurrent'), insecureRegistries: [registry.host] });
    const pulls = await Promise.all(Array.from({ length: 8 }, () => fresh.pull({ image: images.diskImage, pullPolicy: 'Always' })));
    expect(new Set(pulls.map((p) => p.digest)).size).toBe(1);
    expect((await fresh.localDigest(images.diskImage))).toBe(pulls[0]!.digest);
    // One at a time: the first downloads, the rest ask the registry and find its copy.
    expect(pulls.filter((p) => p.downloaded)).toHaveLength(1);
  });

  it('launcher processes starting together download an image and extract a file from it once', async () => {
    // As N launchers of a fleet do: separate processes, one store. Each prints whether it downloaded.
    const dir = join(work, 'store-processes');
    const script = `
      import { ImageStore } from ${JSON.stringify(new URL('../../../launcher/volumes/image-store.ts', import.meta.url).pathname)};
      const store = new ImageStore({ dir: ${JSON.stringify(dir)}, insecureRegistries: [${JSON.stringify(registry.host)}] });
      const pulled = await store.pull({ image: ${JSON.stringify(images.kernelBootImage)}, pullPolicy: 'IfNotPresent' });
      const kernel = await store.extractFile(pulled, '/boot/vmlinuz');
      console.log(JSON.stringify({ downloaded: pulled.downloaded, kernel: kernel.path }));
    `;
    const tar = join(work, 'tar-calls');
    const shims = join(work, 'shims');
    await mkdir(shims, { recursive: true });
    // Counts tar runs (the extraction), then runs the real tar.
    await writeFile(join(shims, 'tar'), `#!/bin/sh\necho "$@" >> ${tar}\nexec ${(await execa('sh', ['-c', 'command -v tar'])).stdout} "$@"\n`, { mode: 0o755 });
    const runs = await Promise.all(Array.from({ length: 4 }, () => execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { PATH: `${shims}:${process.env['PATH']}` } })));
    const results = runs.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { downloaded: boolean; kernel: string });
    expect(results.filter((r) => r.downloaded)).toHaveLength(1);
    expect(new Set(results.map((r) => r.kernel)).size).toBe(1);
    expect(await sha(results[0]!.kernel)).toBe(await sha(guest.vmlinuz));
    // Extracting is listing the layer(s) and one `tar -x`, done by one of them.
    expect((await readFile(tar, 'utf8')).split('\n').filter((l) => l.startsWith('-xf'))).toHaveLength(1);
    // No lock is left behind.
    expect(await readdir(join(dir, 'locks'))).toEqual([]);
  });

  it('a pull whose transfer breaks halfway is tried again and succeeds', async () => {
    // The registry's answer is cut off mid-blob twice (skopeo: "unexpected EOF"); the third try gets through.
    const proxy = await startBreakingProxy(registry, 2);
    try {
      const retries: TransferRetry[] = [];
      const flaky = new ImageStore({ dir: join(work, 'store-flaky'), insecureRegistries: [proxy.host], onTransferRetry: (r) => retries.push(r) });
      const image = images.kernelBootImage.replace(registry.host, proxy.host);
      const pulled = await flaky.pull({ image, pullPolicy: 'IfNotPresent' });
      expect(proxy.broken()).toBe(2);
      // Each broken try is reported (the launcher logs it), with skopeo's message.
      expect(retries.map((r) => [r.image, r.step, r.attempt, r.attempts])).toEqual([[image, 'copy', 1, 3], [image, 'copy', 2, 3]]);
      expect(retries[0]!.error).toMatch(/EOF/);
      expect(pulled.downloaded).toBe(true);
      expect(await sha((await flaky.extractFile(pulled, '/boot/vmlinuz')).path)).toBe(await sha(guest.vmlinuz));
      expect(await readdir(join(work, 'store-flaky', 'tmp'))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('shares the cached base between VMs without downloading it again', async () => {
    const ref = { image: images.diskImage, pullPolicy: 'Always' as const };
    const first = await store.pull(ref);
    const second = await store.pull(ref);
    expect(second.digest).toBe(first.digest);
    expect(second.downloaded).toBe(false);

    const a = await materializeVolumes(vmi('share-a', [{ name: 'root', containerDisk: { image: images.diskImage } }]), options('share-a'));
    const b = await materializeVolumes(vmi('share-b', [{ name: 'root', containerDisk: { image: images.diskImage } }]), options('share-b'));
    expect(a.volumes.root!.backingStore!.path).toBe(b.volumes.root!.backingStore!.path);
    expect(a.volumes.root!.path).not.toBe(b.volumes.root!.path);
    await releaseVolumes(vmi('share-a', []), options('share-a'), { deleteVm: true });
    await releaseVolumes(vmi('share-b', []), options('share-b'), { deleteVm: true });
  });

  it('honours imagePullPolicy: IfNotPresent and Never use the store, Always asks the registry', async () => {
    // A second registry that we can take away.
    const other = await startRegistry();
    let stopped = false;
    try {
      const image = await pushOciLayout(other, guest.ociDisk, 'virtops/policy-disk');
      const local = new ImageStore({ dir: join(work, 'store-policy'), insecureRegistries: [other.host] });
      await expect(local.pull({ image, pullPolicy: 'Never' })).rejects.toMatchObject({ reason: 'ErrImageNeverPull' });
      expect((await local.pull({ image, pullPolicy: 'IfNotPresent' })).downloaded).toBe(true);
      await other.stop();
      stopped = true;
      expect((await local.pull({ image, pullPolicy: 'IfNotPresent' })).downloaded).toBe(false);
      expect((await local.pull({ image, pullPolicy: 'Never' })).downloaded).toBe(false);
      const err = await local.pull({ image, pullPolicy: 'Always' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImagePullError);
      expect((err as ImagePullError).reason).toBe('ErrImagePull');
      expect((err as ImagePullError).registryMessage).toMatch(/connection refused/);
    } finally {
      if (!stopped) await other.stop();
    }
  });

  it('reports a missing image as ImagePullError(ErrImagePull) with the registry message and leaves nothing behind', async () => {
    const opts = options('missing');
    const v = vmi('missing', [
      { name: 'scratch', emptyDisk: { capacity: '1Mi' } },
      { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\n' } },
      { name: 'root', containerDisk: { image: `${registry.host}/virtops/does-not-exist:latest` } },
    ]);
    const err = await materializeVolumes(v, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImagePullError);
    expect(err).toMatchObject({ reason: 'ErrImagePull', volume: 'root', image: `${registry.host}/virtops/does-not-exist:latest` });
    expect((err as Error).message).toMatch(/volume "root": cannot pull image .*manifest unknown/);
    expect(await exists(join(opts.vmDir, 'volumes', 'ephemeral', 'uid-missing'))).toBe(false);
    expect(await readdir(join(work, 'store', 'tmp'))).toEqual([]);
    await releaseVolumes(v, opts, { deleteVm: true });
    expect(await exists(opts.vmDir + '/volumes')).toBe(false);
  });
});

describe('kernelBoot container', () => {
  it('extracts kernel and initrd from the image into the store', async () => {
    const v = vmi('kb', []);
    v.spec.domain.firmware = { kernelBoot: { container: { image: images.kernelBootImage, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' } } };
    const { kernelBoot } = await materializeVolumes(v, options('kb'));
    expect(await sha(kernelBoot!.kernelPath!)).toBe(await sha(guest.vmlinuz));
    expect(await sha(kernelBoot!.initrdPath!)).toBe(await sha(guest.initrd));
    expect((await stat(kernelBoot!.kernelPath!)).mode & 0o222).toBe(0); // shared: read-only

    // A restarted launcher finds the same files without the registry.
    const offline = new ImageStore({ dir: join(work, 'store-offline') });
    expect((await materializeVolumes(v, options('kb', { imageStore: offline }))).kernelBoot).toEqual(kernelBoot);
    await releaseVolumes(v, options('kb'), { deleteVm: false });

    v.spec.domain.firmware.kernelBoot!.container!.kernelPath = '/boot/nope';
    await expect(materializeVolumes(v, options('kb'))).rejects.toThrow(/has no file \/boot\/nope/);
    await releaseVolumes(v, options('kb'), { deleteVm: true });
  });
});

describe('emptyDisk', () => {
  it('is created with the capacity, kept across VMI restarts and removed with the VM', async () => {
    const opts = options('empty');
    const first = vmi('empty', [{ name: 'scratch', emptyDisk: { capacity: '64Mi' } }], 'uid-1');
    const { volumes } = await materializeVolumes(first, opts);
    const disk = volumes.scratch!;
    expect(disk).toEqual({ name: 'scratch', type: 'file', format: 'qcow2', path: join(opts.vmDir, 'volumes', 'persistent', 'scratch.qcow2') });
    expect((await qemuInfo(disk.path))['virtual-size']).toBe(64 * 1024 * 1024);
    // The guest writes something; a new incarnation must see the same disk.
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 4k', disk.path]);
    const ino = (await stat(disk.path)).ino;
    await releaseVolumes(first, opts, { deleteVm: false });
    const second = vmi('empty', [{ name: 'scratch', emptyDisk: { capacity: '64Mi' } }], 'uid-2');
    await materializeVolumes(second, opts);
    expect((await stat(disk.path)).ino).toBe(ino);
    const read = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x5a 0 4k', disk.path]);
    expect(read.stdout).not.toMatch(/Pattern verification failed/);
    await releaseVolumes(second, opts, { deleteVm: true });
    expect(await exists(disk.path)).toBe(false);
    expect(await exists(join(opts.vmDir, 'volumes'))).toBe(false);
  });
});

describe('cloud-init', () => {
  it('NoCloud: an ISO with volume id cidata, instance-id from the uid, decoded userDataBase64', async () => {
    const v = vmi('ci', [{
      name: 'ci',
      cloudInitNoCloud: {
        userDataBase64: Buffer.from('#cloud-config\nvirtops-marker: b64\n').toString('base64'),
        networkData: 'version: 2\nethernets: {}\n',
      },
    }]);
    v.spec.hostname = 'ci-host';
    const { volumes } = await materializeVolumes(v, options('ci'));
    expect(volumes.ci).toMatchObject({ type: 'file', format: 'raw', readOnly: true });
    expect(await readIso(volumes.ci!.path)).toEqual({
      volumeId: 'cidata',
      files: {
        'meta-data': 'instance-id: uid-ci\nlocal-hostname: ci-host\n',
        'user-data': '#cloud-config\nvirtops-marker: b64\n',
        'network-config': 'version: 2\nethernets: {}\n',
      },
    });
    await releaseVolumes(v, options('ci'), { deleteVm: true });
  });

  it('ConfigDrive: openstack/latest files under config-2, user and network data from a secret', async () => {
    const v = vmi('cd', [{ name: 'cfg', cloudInitConfigDrive: { secretRef: { name: 'ci-secret' } } }]);
    const { volumes } = await materializeVolumes(v, options('cd'));
    const iso = await readIso(volumes.cfg!.path);
    expect(iso.volumeId).toBe('config-2');
    expect(JSON.parse(iso.files['openstack/latest/meta_data.json']!)).toEqual({ instance_id: 'uid-cd', uuid: 'uid-cd', hostname: 'cd' });
    expect(iso.files['openstack/latest/user_data']).toBe('#cloud-config\nvirtops-marker: from-secret\n');
    expect(iso.files['openstack/latest/network_data.json']).toBe('version: 2\n');
    await releaseVolumes(v, options('cd'), { deleteVm: true });
  });

  it('NoCloud: network data from networkDataSecretRef, accessCredentials\' ssh keys in the meta-data (public-keys)', async () => {
    await mkdir(join(secretsDir, 'tests', 'net-secret'), { recursive: true });
    await writeFile(join(secretsDir, 'tests', 'net-secret', 'networkData'), 'version: 2\nethernets: {enp1s0: {dhcp4: true}}\n');
    await mkdir(join(secretsDir, 'tests', 'keys'), { recursive: true });
    await writeFile(join(secretsDir, 'tests', 'keys', 'a'), 'ssh-ed25519 AAAA a@x\nssh-rsa BBBB b@x\n');
    const v = vmi('nk', [{ name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\n', networkDataSecretRef: { name: 'net-secret' } } }]);
    v.spec.accessCredentials = [{ sshPublicKey: { source: { secret: { secretName: 'keys' } }, propagationMethod: { noCloud: {} } } }];
    const { volumes } = await materializeVolumes(v, options('nk'));
    expect(await readIso(volumes.ci!.path)).toEqual({
      volumeId: 'cidata',
      files: {
        'meta-data': 'instance-id: uid-nk\nlocal-hostname: nk\npublic-keys:\n  "0": "ssh-ed25519 AAAA a@x"\n  "1": "ssh-rsa BBBB b@x"\n',
        'user-data': '#cloud-config\n',
        'network-config': 'version: 2\nethernets: {enp1s0: {dhcp4: true}}\n',
      },
    });
    await releaseVolumes(v, options('nk'), { deleteVm: true });
    const noDisk = vmi('nodisk', []);
    noDisk.spec.accessCredentials = v.spec.accessCredentials;
    await expect(materializeVolumes(noDisk, options('nodisk'))).rejects.toThrow(/spec\.accessCredentials\[0\]\.sshPublicKey\.propagationMethod: propagation noCloud needs a cloudInitNoCloud volume/);
  });

  it('names the volume, the field and where it looked when a secret is missing', async () => {
    const v = vmi('nosecret', [{ name: 'ci', cloudInitNoCloud: { secretRef: { name: 'absent' } } }]);
    const err = await materializeVolumes(v, options('nosecret')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeError);
    expect(err).toMatchObject({ reason: 'SecretNotFound', volume: 'ci' });
    expect((err as Error).message).toBe(
      `volume "ci": secret "tests/absent" (spec.volumes[0].cloudInitNoCloud.secretRef) not found (${join(secretsDir, 'tests', 'absent')})`,
    );
    const noKey = vmi('nokey', [{ name: 'ci', cloudInitNoCloud: { secretRef: { name: 'app-secret' } } }]);
    await expect(materializeVolumes(noKey, options('nokey'))).rejects.toThrow(/has no userdata or userData key \(keys: \.hidden-key, db-password\)/);
    await releaseVolumes(v, options('nosecret'), { deleteVm: true });
    await releaseVolumes(noKey, options('nokey'), { deleteVm: true });
  });
});

describe('secret / configMap volumes', () => {
  it('are presented as ISOs of their keys; optional missing ones are empty, required missing ones fail', async () => {
    const v = vmi('objs', [
      { name: 'sec', secret: { secretName: 'app-secret', volumeLabel: 'APPSEC' } },
      { name: 'cm', configMap: { name: 'app-config' } },
      { name: 'opt', secret: { secretName: 'not-there', optional: true } },
    ]);
    const { volumes } = await materializeVolumes(v, options('objs'));
    expect(await readIso(volumes.sec!.path)).toEqual({ volumeId: 'APPSEC', files: { 'db-password': 's3cret', '.hidden-key': 'h' } });
    expect(await readIso(volumes.cm!.path)).toEqual({ volumeId: 'cm', files: { 'app.conf': 'debug=1\n' } });
    expect((await readIso(volumes.opt!.path)).files).toEqual({});
    const required = vmi('objs2', [{ name: 'sec', secret: { secretName: 'not-there' } }]);
    await expect(materializeVolumes(required, options('objs2'))).rejects.toThrow(/volume "sec": secret "tests\/not-there" \(spec\.volumes\[0\]\.secret\.secretName\) not found/);
    await releaseVolumes(v, options('objs'), { deleteVm: true });
    await releaseVolumes(required, options('objs2'), { deleteVm: true });
  });
});

describe('hostDisk and PVCs', () => {
  it('DiskOrCreate makes a sparse raw file of the capacity; Disk requires it; neither is ever deleted', async () => {
    const path = join(work, 'host', 'nested', 'data.img');
    const v = vmi('host', [{ name: 'data', hostDisk: { path, type: 'DiskOrCreate', capacity: '256Mi' } }]);
    const { volumes } = await materializeVolumes(v, options('host'));
    expect(volumes.data).toEqual({ name: 'data', type: 'file', path, format: 'raw' });
    const st = await stat(path);
    expect(st.size).toBe(256 * 1024 * 1024);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024); // sparse
    await releaseVolumes(v, options('host'), { deleteVm: true });
    expect(await exists(path)).toBe(true);

    const mustExist = vmi('host2', [{ name: 'data', hostDisk: { path: join(work, 'host', 'absent.img'), type: 'Disk' } }]);
    await expect(materializeVolumes(mustExist, options('host2'))).rejects.toMatchObject({ reason: 'HostDiskNotFound', volume: 'data' });
    await releaseVolumes(mustExist, options('host2'), { deleteVm: true });
  });

  it('maps claims to <pvcDir>/<namespace>/<claim>.img and reports missing ones as ErrorPvcNotFound', async () => {
    const v = vmi('pvc', [
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
      { name: 'golden', ephemeral: { persistentVolumeClaim: { claimName: 'data' } } },
    ]);
    const { volumes } = await materializeVolumes(v, options('pvc'));
    const img = join(pvcDir, 'tests', 'data.img');
    expect(volumes.data).toEqual({ name: 'data', type: 'file', path: img, format: 'raw' });
    expect(volumes.golden!.backingStore).toEqual({ path: img, format: 'raw' });
    expect((await qemuInfo(volumes.golden!.path))['backing-filename']).toBe(img);

    // KubeVirt's filesystem-PVC layout works too.
    await mkdir(join(pvcDir, 'tests', 'kv'), { recursive: true });
    await execa('qemu-img', ['create', '-q', '-f', 'raw', join(pvcDir, 'tests', 'kv', 'disk.img'), '1M']);
    const kv = vmi('pvc3', [{ name: 'kv', persistentVolumeClaim: { claimName: 'kv', readOnly: true } }]);
    expect((await materializeVolumes(kv, options('pvc3'))).volumes.kv).toEqual({
      name: 'kv', type: 'file', path: join(pvcDir, 'tests', 'kv', 'disk.img'), format: 'raw', readOnly: true,
    });
    await releaseVolumes(kv, options('pvc3'), { deleteVm: true });

    const missing = vmi('pvc2', [{ name: 'db', dataVolume: { name: 'db-dv' } }]);
    const err = await materializeVolumes(missing, options('pvc2')).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'ErrorPvcNotFound', volume: 'db' });
    expect((err as Error).message).toContain(join(pvcDir, 'tests', 'db-dv.img'));
    await releaseVolumes(v, options('pvc'), { deleteVm: true });
    await releaseVolumes(missing, options('pvc2'), { deleteVm: true });
    expect(await exists(img)).toBe(true);
  });

  it('in a kubelet-run Pod (vmiDisksDir) finds a claim where the Pod mounts it, <vmiDisksDir>/<volume>/disk.img, and never under pvcDir', async () => {
    const vmiDisks = join(work, 'vmi-disks');
    await mkdir(join(vmiDisks, 'data'), { recursive: true });
    const mounted = join(vmiDisks, 'data', 'disk.img');
    await execa('qemu-img', ['create', '-q', '-f', 'raw', mounted, '1M']);
    // Claim "data" also exists under pvcDir (tests/data.img): the Pod's mount wins, by volume name.
    const v = vmi('mounted', [
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
    ]);
    const { volumes } = await materializeVolumes(v, options('mounted', { vmiDisksDir: vmiDisks }));
    expect(volumes.data).toEqual({ name: 'data', type: 'file', path: mounted, format: 'raw' });
    await releaseVolumes(v, options('mounted'), { deleteVm: true });

    // A volume the Pod mounts but whose claim is empty, and one the Pod does not mount.
    await mkdir(join(vmiDisks, 'empty'), { recursive: true });
    const empty = vmi('mounted2', [{ name: 'empty', dataVolume: { name: 'empty-dv' } }]);
    const e1 = await materializeVolumes(empty, options('mounted2', { vmiDisksDir: vmiDisks })).catch((e: unknown) => e);
    expect(e1).toMatchObject({ reason: 'ErrorPvcNotFound', volume: 'empty' });
    expect((e1 as Error).message).toMatch(/mounted at .*vmi-disks\/empty but has no disk\.img/);
    const gone = vmi('mounted3', [{ name: 'other', persistentVolumeClaim: { claimName: 'data' } }]);
    const e2 = await materializeVolumes(gone, options('mounted3', { vmiDisksDir: vmiDisks })).catch((e: unknown) => e);
    expect(e2).toMatchObject({ reason: 'ErrorPvcNotFound', volume: 'other' });
    expect((e2 as Error).message).toMatch(/is not mounted at .*vmi-disks\/other: the launcher Pod has no volume "other"/);
    await releaseVolumes(empty, options('mounted2'), { deleteVm: true });
    await releaseVolumes(gone, options('mounted3'), { deleteVm: true });
  });

  it('in a kubelet-run Pod (vmiDisksDir) opens a hostDisk under the Pod\'s mount of its directory, not at its host path', async () => {
    // synth mounts the hostDisk's directory at <vmi-disks>/<volume>; the host path is not in the Pod.
    const vmiDisks = join(work, 'vmi-disks-host');
    const hostPath = join(work, 'not-in-the-pod', 'data.img');
    await mkdir(join(vmiDisks, 'data'), { recursive: true });
    const v = vmi('hostpod', [{ name: 'data', hostDisk: { path: hostPath, type: 'DiskOrCreate', capacity: '1Mi' } }]);
    const { volumes } = await materializeVolumes(v, options('hostpod', { vmiDisksDir: vmiDisks }));
    expect(volumes.data).toEqual({ name: 'data', type: 'file', path: join(vmiDisks, 'data', 'data.img'), format: 'raw' });
    expect(await exists(hostPath)).toBe(false);
    await releaseVolumes(v, options('hostpod'), { deleteVm: true });
    expect(await exists(join(vmiDisks, 'data', 'data.img'))).toBe(true); // the user's disk is never removed

    const mustExist = vmi('hostpod2', [{ name: 'other', hostDisk: { path: hostPath, type: 'Disk' } }]);
    const err = await materializeVolumes(mustExist, options('hostpod2', { vmiDisksDir: vmiDisks })).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'HostDiskNotFound', volume: 'other' });
    expect((err as Error).message).toContain(`hostDisk ${hostPath} (in this Pod ${join(vmiDisks, 'other', 'data.img')}) does not exist`);
    await releaseVolumes(mustExist, options('hostpod2'), { deleteVm: true });
  });
});

describe('tool failures', () => {
  it.skipIf(process.getuid?.() !== 0)('surfaces genisoimage running out of space with its own message', async () => {
    const small = join(work, 'small');
    await mkdir(small, { recursive: true });
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    try {
      const big = `#cloud-config\n# ${'x'.repeat(3 * 1024 * 1024)}\n`;
      const v = vmi('full', [{ name: 'ci', cloudInitNoCloud: { userData: big } }]);
      const err = await materializeVolumes(v, options('full', { vmDir: small })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommandError);
      expect(err).toMatchObject({ command: 'genisoimage', noSpace: true });
      expect((err as Error).message).toMatch(/exceeds free space|No space left/);
      expect(await readdir(join(small, 'volumes', 'ephemeral'))).toEqual([]);
    } finally {
      await execa('umount', [small]);
    }
  });
});

describe('release', () => {
  it('leaves nothing behind after every VM above is deleted', async () => {
    expect(await readdir(join(work, 'vms')).then(async (vms) => {
      const left: string[] = [];
      for (const vm of vms) left.push(...(await readdir(join(work, 'vms', vm))).map((e) => `${vm}/${e}`));
      return left;
    })).toEqual([]);
    expect(await readdir(join(work, 'store', 'tmp'))).toEqual([]);
  });
});
