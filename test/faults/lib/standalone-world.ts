/**
 * The single-host fault test's world: the VMs it may push (a model of what git says), their
 * manifests, and an observation of what runs (`virtops up`'s API, its state dir, /proc and
 * libvirt), in the shape invariants.ts checks.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { podDir } from '../../../reconciler/agent/host-config.js';
import { apiCall } from '../../../reconciler/standalone/client.js';
import type { VmList } from '../../../reconciler/standalone/format.js';
import type { VmRecord } from '../../../reconciler/standalone/state-store.js';
import { bareVm, testGuestVm, vmDocuments } from '../../integration/standalone/fixture.js';
import { launcherPids } from '../../integration/standalone/harness.js';
import { libvirtDomains, qemuProcesses, walk } from './host.js';
import type { ExpectedVm, Observation } from './invariants.js';

export const NAMESPACE = 'default';

export interface VmModel {
  name: string;
  /** `guest`: the test guest (kernel boot from the registry image, cloud-init, emptyDisk, a PVC); `blank`: no bootable disk (QEMU idles in firmware), emptyDisk + cloud-init ISO. */
  kind: 'guest' | 'blank';
  present: boolean;
  strategy: 'Always' | 'Halted';
  memoryMi: number;
  /** The test's own `virtops start|stop` since the last commit that touched the VM. */
  override?: 'start' | 'stop';
}

export function shouldRun(v: VmModel): boolean {
  if (!v.present) return false;
  if (v.override === 'start') return true;
  if (v.override === 'stop') return false;
  return v.strategy === 'Always';
}

export function expected(model: readonly VmModel[]): ExpectedVm[] {
  return model.map((v) => ({ name: v.name, present: v.present, shouldRun: shouldRun(v) }));
}

export const PVC_CLAIM = 'vo-ft-data';

/** The VirtualMachine manifest for a model entry. */
export function manifest(v: VmModel, image: string): VirtualMachine {
  const vm = v.kind === 'guest' ? testGuestVm({ image, name: v.name, memory: `${v.memoryMi}Mi` }) : bareVm(v.name, { memory: `${v.memoryMi}Mi` });
  vm.spec.runStrategy = v.strategy;
  const spec = vm.spec.template.spec;
  // Short grace: stops and prunes are part of every sequence.
  spec.terminationGracePeriodSeconds = 3;
  spec.domain.devices.disks ??= [];
  spec.volumes ??= [];
  if (v.kind === 'guest') {
    spec.domain.devices.disks.push({ name: 'data', disk: { bus: 'virtio' } });
    spec.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: PVC_CLAIM } });
  } else {
    spec.domain.devices.disks.push({ name: 'scratch', disk: { bus: 'virtio' } }, { name: 'cloudinitdisk', disk: { bus: 'virtio' } });
    spec.volumes.push({ name: 'scratch', emptyDisk: { capacity: '16Mi' } }, { name: 'cloudinitdisk', cloudInitNoCloud: { userData: `#cloud-config\nvirtops-marker: ${v.name}\n` } });
  }
  return vm;
}

/** dist/ files for the VMs of the model that are in git (the test never deletes the last one: an empty dist/ is refused). */
export function distFiles(model: readonly VmModel[], image: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const v of model.filter((m) => m.present)) files[`${v.name}.k8s.yaml`] = vmDocuments(manifest(v, image));
  return files;
}

/** Persistent disk paths of a VM (emptyDisks in its pod dir); PVC files are the test's own. */
export function persistentDiskPaths(stateDir: string, v: VmModel): string[] {
  return v.kind === 'blank' ? [join(podDir(stateDir, NAMESPACE, v.name), 'ephemeral-disks', 'volumes', 'persistent', 'scratch.qcow2')] : [];
}

export function pvcPath(stateDir: string): string {
  return join(stateDir, 'pvcs', NAMESPACE, `${PVC_CLAIM}.img`);
}

async function inode(path: string): Promise<number | undefined> {
  return stat(path).then((s) => s.ino, () => undefined);
}

/** Top-level entries of the state dir that are `up`'s own (never a VM's). */
const OWN = new Set(['applied.json', 'vms', 'pods', 'images', 'pvcs', 'secrets', 'source', 'datavolumes', 'snapshots', 'restores', 'up.json', 'up.sock', 'api.token', 'lost+found', '.fault-fill']);

/** Everything the invariants need, read from up's API, the state dir, /proc and libvirt. */
export async function observe(opts: { server: string; stateDir: string; libvirtUri: string; prefix: string; model: readonly VmModel[] }): Promise<Observation> {
  const { stateDir, model } = opts;
  const list = await apiCall<VmList>(opts.server, 'GET', '/api/v1/vms');
  const domainPrefix = `${NAMESPACE}_${opts.prefix}`;
  const toVm = (domain: string) => (domain.startsWith(`${NAMESPACE}_`) ? domain.slice(NAMESPACE.length + 1) : domain);
  const records = new Map<string, VmRecord>();
  for (const f of await readdir(join(stateDir, 'vms')).catch(() => [] as string[])) {
    if (!f.endsWith('.json')) continue;
    const r = JSON.parse(await readFile(join(stateDir, 'vms', f), 'utf8')) as VmRecord;
    records.set(r.name, r);
  }
  const names = new Set([...model.map((m) => m.name), ...list.vms.map((v) => v.name), ...records.keys()]);
  const vms = [...names].map((name) => {
    const view = list.vms.find((v) => v.name === name && v.namespace === NAMESPACE);
    const rec = records.get(name);
    return {
      name,
      ...(view?.status?.printableStatus ? { status: view.status.printableStatus } : view ? { status: '(none)' } : {}),
      ...(view?.instance?.uid ? { instanceUid: view.instance.uid } : {}),
      recordUids: rec?.instance ? [rec.instance.uid] : [],
      hasRecord: rec !== undefined,
    };
  });
  const domains = (await libvirtDomains(opts.libvirtUri, domainPrefix)).map((d) => ({ vm: toVm(d.name), state: d.state }));
  const launchers = (await launcherPids(stateDir)).map((l) => ({ uid: l.uid, monitor: l.monitor, pid: l.pid }));
  const qemus = (await qemuProcesses(domainPrefix)).map((q) => ({ vm: toVm(q.domain), pid: q.pid }));

  // Pod dirs: which VM each belongs to (by the fixed-length key), its instances' ephemeral dirs and sockets.
  const keyToVm = new Map(model.map((m) => [podDir(stateDir, NAMESPACE, m.name), m.name]));
  const vmDirs: Observation['vmDirs'] = [];
  for (const d of await readdir(join(stateDir, 'pods')).catch(() => [] as string[])) {
    const dir = join(stateDir, 'pods', d);
    const files = await walk(dir);
    vmDirs.push({
      vm: keyToVm.get(dir),
      dir,
      ephemeralUids: await readdir(join(dir, 'ephemeral-disks', 'volumes', 'ephemeral')).catch(() => [] as string[]),
      sockets: files.filter((f) => f.type === 'socket').map((f) => relative(dir, f.path)),
    });
  }
  const strays: string[] = [];
  for (const e of await readdir(stateDir)) if (!OWN.has(e) && !e.startsWith('.')) strays.push(join(stateDir, e));
  for (const f of await walk(stateDir)) {
    // Sockets outside pods/ other than up.sock belong to nobody.
    if (f.type === 'socket' && !f.path.startsWith(join(stateDir, 'pods') + '/') && f.path !== join(stateDir, 'up.sock')) strays.push(f.path);
  }
  const persistentDisks: Record<string, number | undefined> = {};
  for (const m of model) for (const p of persistentDiskPaths(stateDir, m)) persistentDisks[p] = await inode(p);
  persistentDisks[pvcPath(stateDir)] = await inode(pvcPath(stateDir));
  return { ...(list.revision ? { revision: list.revision } : {}), vms, domains, launchers, qemus, vmDirs, strays, persistentDisks };
}
