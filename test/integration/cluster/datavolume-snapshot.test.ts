/**
 * DataVolumes in cluster mode on the real control plane (etcd, kube-apiserver, scheduler,
 * controller-manager), real git, a real HTTP server on this host serving the test guest's
 * qcow2, and real launchers on libvirt's test:///default driver (the claim is materialized
 * and handed to the domain; nothing boots). git holds the CRDs (virtops' and the DataVolume
 * CRD of reconciler/cluster/datavolumes.ts) and one VM whose dataVolumeTemplates import that
 * qcow2:
 *
 * 1. a wrong checksum: the controller creates the DataVolume (owned by the VM), the node
 *    agent takes it (`virtops.io/import-node`), the import fails, the DataVolume is Failed
 *    (Running=False reason Error, the mismatch named), the VM shows DataVolumeError, no VMI,
 *    no claim file;
 * 2. the right checksum in git: the DataVolume is updated from the template, imported once
 *    into `<state-dir>/pvcs/<ns>/<dv>/disk.img` (raw, the requested size), Succeeded 100.0%,
 *    and the VM runs;
 * 3. the VM leaves git (pruned): the garbage collector deletes its DataVolume, the agent
 *    removes the claim.
 *
 * The controller and agent run under exactly the RBAC synth/install.ts renders (DataVolumes,
 * their status, the claim's PV and PVC). Snapshots in cluster mode: snapshot.test.ts beside
 * this file (a guest that boots, on qemu:///system).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataVolume } from '../../../api/datavolume.js';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { ALL_CRDS, renderCrd } from '../../../synth/crds.js';
import { IMPORT_NODE_ANNOTATION } from '../../../reconciler/cluster/datavolumes.js';
import { CLI_BIN } from '../../../reconciler/cluster/run.js';
import { serveDisk, type DiskServer } from '../../helpers/disk-server.js';
import { ensureTestGuest } from '../../helpers/test-guest.js';
import { bareVm, vmDocuments } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';
import { getVm, gitFixture, identities, listJson, startAgent, startController, teardownGuestTest, tempDir, until, type Env, type Identities } from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-it-dv-${suffix}`;
const NODE = `vo-it-node-${suffix}`;
const VM = 'dv-vm';
const DV = 'dv-vm-root';

describe.skipIf(!env)('cluster mode: DataVolume import (real control plane, HTTP server, test:///default launchers)', () => {
  /** What beforeAll starts, in the shape teardownGuestTest stops it. */
  const t: Omit<Parameters<typeof teardownGuestTest>[0], 'ns' | 'node' | 'domain' | 'git'> & { git?: Awaited<ReturnType<typeof gitFixture>>; disk?: DiskServer } = {};
  let ids: Identities;
  const stateDir = () => t.state!.dir;

  const vm = (checksum: string): VirtualMachine => {
    const v = bareVm(VM);
    v.metadata.namespace = NS;
    v.spec.dataVolumeTemplates = [{
      metadata: { name: DV, annotations: { 'virtops.io/checksum': `sha256:${checksum}` } },
      spec: { source: { http: { url: t.disk!.url } }, storage: { resources: { requests: { storage: '16Mi' } } } },
    }];
    const spec = v.spec.template.spec;
    spec.domain.devices.disks = [{ name: 'root', disk: { bus: 'virtio' } }];
    spec.volumes = [{ name: 'root', dataVolume: { name: DV } }];
    return v;
  };
  const crds = () => ALL_CRDS.map((c) => renderCrd(c)).map((d) => YAML.stringify(d)).join('---\n');
  const commit = (checksum: string | undefined, message: string) => t.git!.commitDist({
    'crds.k8s.yaml': crds(),
    ...(checksum ? { [`${VM}.k8s.yaml`]: vmDocuments(vm(checksum)) } : {}),
  }, message);
  const dv = async () => (await listJson<DataVolume>(ids.admin, 'cdi.kubevirt.io/v1beta1', 'DataVolume', NS)).find((d) => d.metadata.name === DV);
  const vmStatus = async () => (await getVm(ids.admin, NS, VM))?.status?.printableStatus;
  const claim = () => join(stateDir(), 'pvcs', NS, DV, 'disk.img');

  beforeAll(async () => {
    t.disk = await serveDisk((await ensureTestGuest()).disk);
    ids = await identities(env as Env, NS);
    t.ids = ids;
    const git = (t.git = await gitFixture());
    t.state = await tempDir('vo-it-dv-agent-');
    t.agent = await startAgent(ids, NODE, stateDir(), 'test:///default');
    t.controller = await startController(ids, git, NS);
  }, 180_000);

  const pvs = async () => listJson(ids.admin, 'v1', 'PersistentVolume', undefined, `virtops.io/datavolume-namespace=${NS}`);

  afterAll(async () => {
    // The claims' PVs are cluster-scoped: none may outlive this file on the shared control plane.
    if (ids) for (const pv of await pvs().catch(() => [])) await ids.admin.delete(pv).catch(() => undefined);
    await teardownGuestTest({ ...t, ns: NS, node: NODE, domain: `${NS}_${VM}` });
    await t.disk?.close();
  }, 180_000);

  it('a wrong checksum: the DataVolume fails, the VM shows DataVolumeError, no VMI, no claim', async () => {
    await commit('0'.repeat(64), 'a VM whose DataVolume has a wrong checksum');
    await until('VM DataVolumeError', async () => (await vmStatus()) === 'DataVolumeError', 120_000);
    const d = (await dv())!;
    expect(d.status?.phase).toBe('Failed');
    expect(d.status?.restartCount).toBeGreaterThanOrEqual(1);
    expect(d.status?.conditions.find((c) => c.type === 'Running')).toMatchObject({ status: 'False', reason: 'Error', message: expect.stringMatching(/checksum mismatch/) });
    expect(d.metadata.annotations?.[IMPORT_NODE_ANNOTATION]).toBe(NODE);
    const owner = (await getVm(ids.admin, NS, VM))!;
    expect(d.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'VirtualMachine', name: VM, uid: owner.metadata.uid, controller: true })]);
    const ready = owner.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.message ?? '').toMatch(/checksum mismatch/);
    expect(await listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS)).toEqual([]);
    expect(existsSync(claim())).toBe(false);
  }, 200_000);

  it('the right checksum: imported once into a raw claim of the requested size, the VM runs', async () => {
    await commit(t.disk!.sha256, 'the right checksum');
    await until('VM Running', async () => (await vmStatus()) === 'Running', 180_000);
    const d = (await dv())!;
    expect(d.status).toMatchObject({ phase: 'Succeeded', progress: '100.0%', claimName: DV });
    expect(d.status?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Bound=True', 'Ready=True', 'Running=False']);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-U', claim()])).stdout) as { format: string; 'virtual-size': number };
    expect(info).toMatchObject({ format: 'raw', 'virtual-size': 16 * 1024 * 1024 });
    // Imported once: a Succeeded DataVolume is never fetched again. (A retry of the old spec
    // may have fetched it once more before the controller applied the new one.)
    const after = t.disk!.requests;
    await new Promise((r) => setTimeout(r, 3000));
    expect(t.disk!.requests).toBe(after);
    const vmis = await listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
    expect(vmis.map((v) => v.spec.volumes?.find((x) => x.name === 'root')?.dataVolume?.name)).toEqual([DV]);
    // The claim as the scheduler sees it: a PVC (owned by the DataVolume) bound to a local PV pinned to the node.
    const pvc = (await listJson<{ status?: { phase?: string }; spec: { volumeName?: string } }>(ids.admin, 'v1', 'PersistentVolumeClaim', NS)).find((c) => c.metadata?.name === DV);
    expect(pvc?.status?.phase).toBe('Bound');
    expect(pvc?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'DataVolume', name: DV, uid: d.metadata.uid });
    expect((await pvs()).map((p) => p.metadata?.name)).toEqual([pvc?.spec.volumeName]);
    const pods = await listJson<{ spec: { nodeName?: string } }>(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher');
    expect(pods.map((p) => p.spec.nodeName)).toEqual([NODE]);
    // The CLI reads it from the API server with CDI's columns.
    const get = await execa(process.execPath, [CLI_BIN, 'get', 'dv', '-n', NS, '--kubeconfig', (env as Env).kubeconfigPath], { reject: false });
    expect(get.stderr).toBe('');
    expect(get.stdout).toMatch(new RegExp(`^NAMESPACE\\s+NAME\\s+PHASE\\s+PROGRESS\\s+RESTARTS\\s+AGE\\n${NS}\\s+${DV}\\s+Succeeded\\s+100\\.0%\\s+[1-9]`, 'm'));
  }, 240_000);

  it('the VM leaves git: its DataVolume goes with it (garbage collector) and the agent removes the claim', async () => {
    await commit(undefined, 'the VM leaves git');
    await until('VM gone', async () => (await getVm(ids.admin, NS, VM)) === undefined, 120_000);
    await until('DataVolume gone', async () => (await dv()) === undefined, 120_000);
    await until('claim removed', async () => !existsSync(join(stateDir(), 'pvcs', NS, DV)), 60_000);
    await until('its PersistentVolume deleted', async () => (await pvs()).length === 0, 60_000);
  }, 240_000);
});
