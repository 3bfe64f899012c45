/**
 * DataVolumes, snapshots and restores under a real `virtops up` (qemu:///system, TCG, the
 * busybox test guest, real git, a real HTTP server on this host serving the guest's qcow2):
 *
 * 1. a VM whose dataVolumeTemplates import that qcow2 with a wrong checksum shows
 *    DataVolumeError (the DataVolume Failed, nothing became the claim, no domain);
 * 2. with the right checksum the claim is imported (raw, the requested size) and the VM
 *    runs; the guest reads the disk's label;
 * 3. a label written to the claim (from the host, VM stopped), an online snapshot of the
 *    running guest, another label, then a restore (StopTarget) → the guest sees the first
 *    label again; an offline snapshot and its delete; a snapshot declared in git; a
 *    restart of up keeps the claim (not imported again) and the snapshots;
 * 4. the VM leaving git takes its template's DataVolume and claim with it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { DataVolumeView } from '../../../reconciler/standalone/datavolumes.js';
import type { VirtualMachineRestore, VirtualMachineSnapshot } from '../../../api/snapshot.js';
import { serveDisk, type DiskServer } from '../../helpers/disk-server.js';
import { ensureTestGuest, GUEST_MARKERS, writeDiskLabel } from '../../helpers/test-guest.js';
import { bareVm, testGuestVm, vmDocuments } from '../standalone/fixture.js';
import { CLI, apiGet, guestUpFixture, startUp, vm, waitFor } from '../standalone/harness.js';

const NAME = 'vo-dv-guest';
const DOMAIN = `default_${NAME}`;
const DV = 'vo-dv-data';
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

describe('DataVolumes and snapshots under virtops up (qemu:///system, TCG)', () => {
  const f = guestUpFixture(DOMAIN, ({ git, registry }) => ['--repo', git.bare, '--emulation', 'tcg', '--interval', '2s', '--insecure-registry', registry.host]);
  let disk: DiskServer;

  beforeAll(async () => {
    disk = await serveDisk((await ensureTestGuest()).disk);
  });
  afterAll(async () => {
    await disk?.close();
  });

  const dvVm = (checksum: string): VirtualMachine => {
    const v = testGuestVm({ image: f.image, name: NAME });
    v.spec.dataVolumeTemplates = [{
      metadata: { name: DV, annotations: { 'virtops.io/checksum': `sha256:${checksum}` } },
      spec: { source: { http: { url: disk.url } }, storage: { resources: { requests: { storage: '16Mi' } } } },
    }];
    const spec = v.spec.template.spec;
    spec.domain.devices.disks = [...(spec.domain.devices.disks ?? []), { name: 'data', disk: { bus: 'virtio' } }];
    spec.volumes = [...(spec.volumes ?? []), { name: 'data', dataVolume: { name: DV } }];
    spec.terminationGracePeriodSeconds = 10;
    return v;
  };
  const claim = () => join(f.stateDir, 'pvcs', 'default', DV, 'disk.img');
  const dvs = async () => (await apiGet<{ items: DataVolumeView[] }>(f.up!.server, '/api/v1/datavolumes')).items;
  const cli = (...args: string[]) => execa(process.execPath, [CLI, ...args, '--server', f.up!.server], { reject: false });
  const status = async () => (await vm(f.up!.server, NAME))?.status?.printableStatus;
  /** The label the guest read from the data disk in its latest boot. */
  const bootLabel = async (): Promise<string | undefined> => {
    const v = await vm(f.up!.server, NAME);
    if (!v?.instance) return undefined;
    const text = await readFile(v.instance.serialLog, 'utf8').catch(() => '');
    const last = text.slice(text.lastIndexOf(GUEST_MARKERS.booted));
    if (!last.includes(GUEST_MARKERS.ready)) return undefined;
    const labels = [...last.matchAll(new RegExp(`${GUEST_MARKERS.diskLabel} (vd[a-z]) (\\S+)`, 'g'))].map((m) => m[2]!);
    return labels.find((l) => l !== 'test-disk' || labels.length === 1) ?? labels[0];
  };
  const writeLabel = (label: string) => writeDiskLabel(claim(), label);
  const waitStatus = (want: string, ms = 180_000) => waitFor(`VM ${want}`, async () => (await status()) === want, ms, 250);

  it('a wrong checksum: the DataVolume fails, the VM shows DataVolumeError, nothing becomes the claim', async () => {
    await f.git.commitVms([dvVm('0'.repeat(64))], 'a VM whose DataVolume has a wrong checksum');
    await waitStatus('DataVolumeError', 120_000);
    const dv = (await dvs()).find((d) => d.metadata.name === DV)!;
    expect(dv.status.phase).toBe('Failed');
    expect(dv.status.conditions.find((c) => c.type === 'Running')).toMatchObject({ status: 'False', reason: 'Error', message: expect.stringMatching(/checksum mismatch/) });
    expect(dv.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachine', name: NAME });
    const v = await vm(f.up!.server, NAME);
    expect(v?.instance).toBeUndefined();
    expect(v?.events.some((e) => e.reason === 'DataVolumeError' && /checksum mismatch/.test(e.message))).toBe(true);
    expect(existsSync(claim())).toBe(false);
    expect((await virsh('domstate', DOMAIN)).exitCode).not.toBe(0);
    const get = await cli('get', 'dv');
    expect(get.stdout).toMatch(new RegExp(`^${DV}\\s+Failed\\s+N/A\\s+[1-9]`, 'm'));
    expect((await cli('get', 'dv', '-o', 'wide')).stdout).toMatch(/checksum mismatch/);
  }, 200_000);

  it('the right checksum: imported once into a raw claim of the requested size, the VM runs and reads it', async () => {
    const before = disk.requests;
    await f.git.commitVms([dvVm(disk.sha256)], 'the right checksum');
    await waitStatus('Running');
    const dv = (await dvs()).find((d) => d.metadata.name === DV)!;
    expect(dv.status).toMatchObject({ phase: 'Succeeded', progress: '100.0%' });
    expect(dv.status.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Bound=True', 'Ready=True', 'Running=False']);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-U', claim()])).stdout) as { format: string; 'virtual-size': number };
    expect(info).toMatchObject({ format: 'raw', 'virtual-size': 16 * 1024 * 1024 });
    await waitFor('the guest reads the imported disk', async () => (await bootLabel()) === 'test-disk', 120_000, 500);
    expect(disk.requests - before).toBe(1);
    expect((await cli('get', 'dv')).stdout).toMatch(new RegExp(`^${DV}\\s+Succeeded\\s+100\\.0%`, 'm'));
  }, 300_000);

  it('snapshot of the running guest, more data, restore: the guest sees the first data again', async () => {
    // The first data: written to the claim from the host while the VM is stopped.
    expect((await cli('stop', NAME)).exitCode).toBe(0);
    await waitStatus('Stopped');
    await writeLabel('first');
    expect((await cli('start', NAME)).exitCode).toBe(0);
    await waitStatus('Running');
    await waitFor('the guest sees "first"', async () => (await bootLabel()) === 'first', 120_000, 500);

    // Online: the guest keeps running; the busybox guest has no agent (NoGuestAgent).
    const made = await cli('snapshot', 'create', NAME, '--name', 'snap1', '--wait');
    expect(made.stderr).toBe('');
    expect(made.stdout).toMatch(/snap1: Succeeded \(Online, NoGuestAgent\)/);
    expect(await status()).toBe('Running');
    const snaps = (await apiGet<{ items: VirtualMachineSnapshot[] }>(f.up!.server, '/api/v1/snapshots')).items;
    expect(snaps[0]!.status).toMatchObject({ phase: 'Succeeded', readyToUse: true, indications: ['Online', 'NoGuestAgent'], snapshotVolumes: { includedVolumes: ['data'] } });
    expect(snaps[0]!.status!.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Progressing=False', 'Ready=True']);
    const copy = join(f.stateDir, 'snapshots', 'default', 'snap1', 'data.img');
    expect((await readFile(copy)).subarray(0, 26).toString()).toBe('virtops-disk-label: first\n');
    expect((await cli('snapshot', 'list')).stdout).toMatch(/^snap1\s+VirtualMachine\s+vo-dv-guest\s+Succeeded\s+true/m);

    // More data.
    expect((await cli('stop', NAME)).exitCode).toBe(0);
    await waitStatus('Stopped');
    await writeLabel('second');
    expect((await cli('start', NAME)).exitCode).toBe(0);
    await waitStatus('Running');
    await waitFor('the guest sees "second"', async () => (await bootLabel()) === 'second', 120_000, 500);

    // Restore into the running VM: StopTarget stops it, the disks are copied back, it stays stopped.
    const restored = await cli('snapshot', 'restore', 'snap1', '--stop', '--name', 'back-to-first', '--wait');
    expect(restored.stdout).toMatch(/back-to-first: complete/);
    await waitStatus('Stopped');
    const restores = (await apiGet<{ items: VirtualMachineRestore[] }>(f.up!.server, '/api/v1/restores')).items;
    expect(restores[0]!.status).toMatchObject({ complete: true, restores: [{ volumeName: 'data', persistentVolumeClaim: DV }] });

    // Offline snapshot while it is stopped: no indications; then deleted.
    const offline = await cli('snapshot', 'create', NAME, '--name', 'snap2', '--wait');
    expect(offline.stdout).toMatch(/snap2: Succeeded$/m);
    expect((await cli('snapshot', 'delete', 'snap2')).exitCode).toBe(0);
    expect(existsSync(join(f.stateDir, 'snapshots', 'default', 'snap2'))).toBe(false);

    expect((await cli('start', NAME)).exitCode).toBe(0);
    await waitStatus('Running');
    await waitFor('the guest sees "first" again', async () => (await bootLabel()) === 'first', 120_000, 500);
  }, 600_000);

  it('a snapshot declared in git is taken once, cannot be deleted by hand, and goes with its manifest', async () => {
    const nightly = { apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name: 'nightly', namespace: 'default' }, spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: NAME } } };
    await f.git.commitDist({ [`${NAME}.k8s.yaml`]: vmDocuments(dvVm(disk.sha256)), 'nightly.yaml': YAML.stringify(nightly) }, 'a nightly snapshot as a manifest');
    const snap = await waitFor('the git snapshot taken', async () => {
      const s = (await apiGet<{ items: VirtualMachineSnapshot[] }>(f.up!.server, '/api/v1/snapshots')).items.find((x) => x.metadata.name === 'nightly');
      return s?.status?.phase === 'Succeeded' ? s : undefined;
    }, 120_000, 500);
    expect(snap.metadata.annotations?.['virtops.io/origin']).toBe('git');
    expect(snap.status?.indications).toEqual(['Online', 'NoGuestAgent']);
    const del = await cli('snapshot', 'delete', 'nightly');
    expect(del.stderr).toMatch(/declared in git: remove its manifest from git/);
    await f.git.commitDist({ [`${NAME}.k8s.yaml`]: vmDocuments(dvVm(disk.sha256)) }, 'the nightly snapshot leaves git');
    await waitFor('the git snapshot deleted with its manifest', async () => !existsSync(join(f.stateDir, 'snapshots', 'default', 'nightly')), 60_000, 250);
    expect(await status()).toBe('Running');
  }, 200_000);

  it('a restart of virtops up keeps the claim, the DataVolume (not imported again) and the snapshots', async () => {
    const before = disk.requests;
    await f.up!.stop();
    f.up = await startUp(['--repo', f.git.bare, '--emulation', 'tcg', '--interval', '2s', '--insecure-registry', f.registry.host], f.stateDir);
    await waitFor('the VM adopted, Running', async () => (await status()) === 'Running', 120_000, 250);
    expect(existsSync(claim())).toBe(true);
    await waitFor('the DataVolume known again', async () => (await dvs()).find((d) => d.metadata.name === DV)?.status.phase === 'Succeeded', 60_000, 250);
    expect(disk.requests).toBe(before);
    expect((await apiGet<{ items: VirtualMachineSnapshot[] }>(f.up!.server, '/api/v1/snapshots')).items.map((x) => x.metadata.name)).toEqual(['snap1']);
  }, 200_000);

  it('a restore of a missing snapshot and a delete of a missing one say so', async () => {
    const r = await cli('snapshot', 'restore', 'nope');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/VirtualMachineSnapshot default\/nope not found/);
    const d = await cli('snapshot', 'delete', 'nope');
    expect(d.stderr).toMatch(/not found; see virtops snapshot list/);
  });

  it('the VM leaving git takes its DataVolume and claim; snapshots stay, restore into a new VM, deleted when asked', async () => {
    // dist/ must not be empty (git keeps no empty dir): a stopped VM without disks stays.
    await f.git.commitVms([bareVm('placeholder', { runStrategy: 'Halted' })], 'remove the VM');
    await waitFor('the VM pruned', async () => (await vm(f.up!.server, NAME)) === undefined, 120_000, 250);
    await waitFor('the claim removed', async () => !existsSync(join(f.stateDir, 'pvcs', 'default', DV)), 60_000, 250);
    expect((await dvs()).length).toBe(0);
    expect(existsSync(join(f.stateDir, 'snapshots', 'default', 'snap1', 'data.img'))).toBe(true);
    // Into a VM not in git: a new claim with the snapshot's data, for a VM the user then adds.
    const r = await cli('snapshot', 'restore', 'snap1', '--target', 'vo-dv-new', '--name', 'to-new', '--wait');
    expect(r.stdout).toMatch(/to-new: complete: VirtualMachine vo-dv-new is not in git: add it with these claims \(data → restore-[0-9a-f]{8}-data\)/);
    const made = /restore-[0-9a-f]{8}-data/.exec(r.stdout)![0];
    expect((await readFile(join(f.stateDir, 'pvcs', 'default', made, 'disk.img'))).subarray(0, 26).toString()).toBe('virtops-disk-label: first\n');
    expect((await cli('snapshot', 'delete', 'snap1')).exitCode).toBe(0);
  }, 200_000);
});
