/**
 * DataVolumes and snapshots beside a real kubelet: `virtops agent` without `--process-runtime`
 * (as the agent's service account, under the RBAC of the default install: no process-runtime
 * rights) next to a real kubelet + containerd node, and the controller with
 * `--launcher-libvirt-daemon pod` (as the install runs it) applying a git repository whose
 * launcher Pod template is dist/'s (`external`).
 *
 * 1. A VM (Halted) with a blank DataVolume: the agent imports it into the node's claim dir,
 *    publishes the PVC bound to a `local` PV on the kubelet node; the claim's dir and file are
 *    the launcher Pods' group (107). The label "first" is written into the claim from the host.
 * 2. Started: the kubelet bind-mounts the claim into the launcher Pod at KubeVirt's place
 *    (`/var/run/kubevirt-private/vmi-disks/data/disk.img`, the launcher's `--vmi-disks-dir`),
 *    QEMU (user 107 in the Pod) opens it, the guest reads "first".
 * 3. An online snapshot of the running VM: the agent reaches the Pod's own libvirt daemon
 *    (its socket through the launcher monitor's /proc/<pid>/root), QEMU stages the copy in the
 *    claim's dir (the one place the Pod and the host both see), the agent moves it to the
 *    snapshot dir; the VM keeps running.
 * 4. Stopped: an offline snapshot Succeeds (the copy holds "first"); "second" is written into
 *    the claim; a restore puts "first" back (the claim keeps its group and mode); started again,
 *    the guest reads "first".
 * One testenv (control plane + node) and one VM for the file, torn down at the end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { NOT_ROOT, skipReason } from '../../helpers/skip.js';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import YAML from 'yaml';
import type { KubernetesObject, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataVolume } from '../../../api/datavolume.js';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { VirtualMachineRestore, VirtualMachineSnapshot } from '../../../api/snapshot.js';
import { launcherFlagValue } from '../../../launcher/flags.js';
import { OVERRIDE_ANNOTATION, serializeOverride } from '../../../reconciler/core/overrides.js';
import { runAgent, runController, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { SNAPSHOT_NODE_ANNOTATION } from '../../../reconciler/cluster/snapshots.js';
import { ALL_CRDS, renderCrd } from '../../../synth/crds.js';
import { LAUNCHER_USER, PATHS, renderLauncherPod } from '../../../synth/launcher-pod.js';
import { IMAGE_BUILD_MS, inPod, pidsWhere, startKubeletEnv, type KubeletEnv } from '../../helpers/kubelet.js';
import { GUEST_MARKERS, writeDiskLabel } from '../../helpers/test-guest.js';
import { waitFor } from '../../helpers/wait.js';
import { gitFixture, type GitFixture } from '../standalone/fixture.js';
import { getVm, guestWithBlankDataVolume, identities, listJson, type Env, type Identities } from './harness.js';
import { clusterTestenv } from './testenv-fixture.js';

const testenv = await clusterTestenv();
const skip = skipReason(`${import.meta.url.split('/').pop()}`, { 'no control plane (Go and the kube binaries are missing)': !testenv, [NOT_ROOT]: process.getuid?.() !== 0 });
const NS = 'virtops-ks';
const VM = 'ks';
const DV = 'ks-data';
const DOMAIN = `${NS}_${VM}`;
const SNAPSHOT_API = 'snapshot.kubevirt.io/v1beta1';
const progress = (l: string) => process.stderr.write(`[kubelet-storage] ${l}\n`);
const log = pino({ level: process.env['VIRTOPS_TEST_LOG'] ?? 'warn' });

describe.skipIf(skip !== undefined)('DataVolumes and snapshots beside a real kubelet', () => {
  let env: KubeletEnv;
  let ids: Identities;
  let git: GitFixture;
  let controller: ControllerHandle | undefined;
  let agent: AgentHandle | undefined;
  let stateDir: string;

  const crds = () => ALL_CRDS.map((c) => YAML.stringify(renderCrd(c))).join('---\n');
  const vm = (runStrategy: 'Always' | 'Halted'): VirtualMachine => guestWithBlankDataVolume({ image: `${env.podRegistry}/virtops/test-guest:latest`, name: VM, namespace: NS, dv: DV, runStrategy });
  /** The VM and dist/'s template (`external`: the controller makes it `pod`), the image from the node's registry. */
  const commit = (runStrategy: 'Always' | 'Halted', message: string) => {
    const v = vm(runStrategy);
    const template = renderLauncherPod(v, { launcherImage: env.launcherImage, emulation: 'tcg' });
    template.spec.containers[0]!.args!.push('--insecure-registry', env.podRegistry);
    return git.commitDist({ 'crds.k8s.yaml': crds(), [`${VM}.k8s.yaml`]: [v, template].map((d) => YAML.stringify(d)).join('---\n') }, message);
  };
  const status = async () => (await getVm(ids.admin, NS, VM))?.status?.printableStatus;
  const waitStatus = (want: string, ms = 300_000) => waitFor(`VM ${want}`, async () => ((await status()) === want ? true : undefined), ms, 500);
  const claimDir = () => join(stateDir, 'pvcs', NS, DV);
  const claim = () => join(claimDir(), 'disk.img');
  const launcherPod = async () => (await listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher')).find((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running');
  const serialLog = (podUid: string) => join(env.node.dir, 'kubelet', 'pods', podUid, 'volumes', 'kubernetes.io~empty-dir', 'public', 'logs', `${DOMAIN}-serial0.log`);
  /**
   * Waits until the guest, in the running launcher Pod's boot, read `label` from its data disk.
   * Under TCG on a loaded host the guest kernel sometimes panics at boot in its timer check
   * (as snapshot.test.ts saw): that boot is restarted (`virtops restart`'s override), at most twice.
   */
  const guestReads = async (label: string) => {
    let last = '';
    let restarts = 0;
    let panicked: string | undefined;
    await waitFor(`the guest reads "${label}"`, async () => {
      const pod = await launcherPod();
      if (!pod || pod.metadata!.uid === panicked) return undefined;
      last = existsSync(serialLog(pod.metadata!.uid!)) ? readFileSync(serialLog(pod.metadata!.uid!), 'utf8') : '';
      if (last.includes('Kernel panic') && restarts < 2) {
        restarts++;
        panicked = pod.metadata!.uid;
        const v = (await getVm(ids.admin, NS, VM))!;
        await ids.admin.mergePatch(v as unknown as KubernetesObject, { metadata: { annotations: { [OVERRIDE_ANNOTATION]: serializeOverride({ action: 'restart', at: Date.now(), revision: 'test' }) } } });
        return undefined;
      }
      const boot = last.slice(last.lastIndexOf(GUEST_MARKERS.booted));
      if (!boot.includes(GUEST_MARKERS.ready)) return undefined;
      const labels = [...boot.matchAll(new RegExp(`${GUEST_MARKERS.diskLabel} (vd[a-z]) (\\S+)`, 'g'))].map((m) => m[2]!);
      return labels.includes(label) ? true : undefined;
    }, 420_000, 1000).catch((err: Error) => {
      throw new Error(`${err.message}; the serial log ends with: ${last.slice(-1500)}`);
    });
  };
  const snapshotEnded = (name: string) => waitFor(`snapshot ${name} ended`, async () => {
    const x = (await listJson<VirtualMachineSnapshot>(ids.admin, SNAPSHOT_API, 'VirtualMachineSnapshot', NS)).find((s) => s.metadata.name === name);
    return x?.status?.phase === 'Succeeded' || x?.status?.phase === 'Failed' ? x : undefined;
  }, 180_000, 500);
  const createSnapshot = (name: string) => ids.admin.create({ apiVersion: SNAPSHOT_API, kind: 'VirtualMachineSnapshot', metadata: { name, namespace: NS }, spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: VM } } } as KubernetesObject);
  const head = async (file: string) => (await readFile(file)).subarray(0, 26).toString();

  beforeAll(async () => {
    env = await startKubeletEnv({ prefix: 'virtops-ks-', progress });
    const socketDir = join(env.dir, 'launchers');
    stateDir = join(env.dir, 'agent');
    // The default install's RBAC: the agent beside a kubelet has no process-runtime rights.
    ids = await identities(env.cp as unknown as Env, NS, { processRuntimeAgents: false });
    git = await gitFixture();
    agent = await runAgent(
      { node: env.node.name, processRuntime: false, stateDir, emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [], intervalMs: 5000, launcherSocketDir: socketDir },
      log.child({ c: 'agent' }),
      { client: ids.agent.client },
    );
    controller = await runController(
      {
        repo: git.bare, branch: 'main', distPath: 'dist', namespace: NS, leaderElect: false, intervalMs: 2000, freshness: false, identity: 'test', leaseDurationMs: 15_000,
        launcherLibvirtDaemon: 'pod', launcherSocketDir: socketDir,
      },
      log.child({ c: 'controller' }),
      { client: ids.controller.client },
    );
  }, IMAGE_BUILD_MS);

  afterAll(async () => {
    if (git && controller) {
      await git.commitDist({ 'crds.k8s.yaml': crds() }, 'the VM leaves').catch(() => undefined);
      await waitFor('VM pruned', async () => ((await getVm(ids.admin, NS, VM)) === undefined ? true : undefined), 120_000, 500).catch(() => undefined);
      await waitFor('launcher Pods gone', async () => ((await listJson(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher')).length === 0 ? true : undefined), 120_000).catch(() => undefined);
    }
    if (ids) for (const pv of await listJson(ids.admin, 'v1', 'PersistentVolume', undefined, `virtops.io/datavolume-namespace=${NS}`).catch(() => [])) await ids.admin.delete(pv).catch(() => undefined);
    await controller?.stop();
    await agent?.stop();
    await env?.stop();
    await git?.cleanup();
  }, 300_000);

  it('a blank DataVolume → the claim on the kubelet node (PVC bound to a local PV there), given to the launcher Pods\' group', async () => {
    await commit('Halted', 'the VM, halted, with a blank data DataVolume');
    const dv = await waitFor('DataVolume Succeeded', async () => (await listJson<DataVolume>(ids.admin, 'cdi.kubevirt.io/v1beta1', 'DataVolume', NS)).find((d) => d.metadata.name === DV && d.status?.phase === 'Succeeded'), 180_000, 500);
    expect(dv.metadata.annotations?.['virtops.io/import-node']).toBe(env.node.name);
    const pv = (await listJson<V1PersistentVolume>(ids.admin, 'v1', 'PersistentVolume', undefined, `virtops.io/datavolume-namespace=${NS}`))[0];
    expect(pv?.spec?.local?.path).toBe(claimDir());
    expect(pv?.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values).toEqual([env.node.name]);
    // The node's hostname label is what the local PV's affinity names.
    expect((await env.core.readNode({ name: env.node.name })).metadata?.labels?.['kubernetes.io/hostname']).toBe(env.node.name);
    await waitFor('the PVC Bound', async () => ((await listJson<V1PersistentVolumeClaim>(ids.admin, 'v1', 'PersistentVolumeClaim', NS)).find((c) => c.metadata?.name === DV)?.status?.phase === 'Bound' ? true : undefined), 60_000, 500);
    const [d, f] = await Promise.all([stat(claimDir()), stat(claim())]);
    expect([d.gid, d.mode & 0o777]).toEqual([LAUNCHER_USER, 0o770]);
    expect([f.gid, f.mode & 0o777]).toEqual([LAUNCHER_USER, 0o660]);
    await writeDiskLabel(claim(), 'first');
  }, 600_000);

  it('started: the kubelet mounts the claim at KubeVirt\'s place in the launcher Pod, QEMU there opens it, the guest reads "first"', async () => {
    await commit('Always', 'run it');
    await waitStatus('Running');
    const pod = (await launcherPod())!;
    expect(pod.spec?.nodeName).toBe(env.node.name);
    expect(pod.spec?.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe(DV);
    const compute = pod.spec!.containers.find((c) => c.name === 'compute')!;
    expect(compute.volumeMounts?.find((m) => m.name === 'data')?.mountPath).toBe(`${PATHS.vmiDisks}/data`);
    expect(launcherFlagValue(compute.args ?? [], 'vmiDisksDir')).toBe(PATHS.vmiDisks);
    await guestReads('first');
    const qemu = pidsWhere((c) => /qemu-system-x86_64/.test(c) && c.includes(`guest=${DOMAIN}`));
    expect(qemu).toHaveLength(1);
    expect(inPod(qemu[0]!, pod.metadata!.uid!)).toBe(true);
    expect(readFileSync(`/proc/${qemu[0]}/cmdline`, 'utf8')).toContain(`${PATHS.vmiDisks}/data/disk.img`);
  }, 900_000);

  it('an online snapshot of the running VM: through its launcher Pod\'s own libvirt daemon, staged in the claim\'s dir; the VM keeps running', async () => {
    await createSnapshot('online');
    const s = await snapshotEnded('online');
    expect(s.status?.error).toBeUndefined();
    expect(s.metadata.annotations?.[SNAPSHOT_NODE_ANNOTATION]).toBe(env.node.name);
    expect(s.status).toMatchObject({ phase: 'Succeeded', readyToUse: true, indications: ['Online', 'NoGuestAgent'], snapshotVolumes: { includedVolumes: ['data'] } });
    expect(await head(join(stateDir, 'snapshots', NS, 'online', 'data.img'))).toBe('virtops-disk-label: first\n');
    // Nothing staged is left in the claim's dir.
    expect((await readdir(claimDir())).sort()).toEqual(['disk.img']);
    expect(await status()).toBe('Running');
  }, 240_000);

  it('stopped: an offline snapshot, "second" written, a restore → the claim has "first" again, and started the guest reads it', async () => {
    await commit('Halted', 'halt it');
    await waitStatus('Stopped');
    await createSnapshot('offline');
    const s = await snapshotEnded('offline');
    expect(s.status?.error).toBeUndefined();
    expect(s.status).toMatchObject({ phase: 'Succeeded', readyToUse: true, snapshotVolumes: { includedVolumes: ['data'] } });
    expect(s.status?.indications ?? []).not.toContain('Online');
    expect(await head(join(stateDir, 'snapshots', NS, 'offline', 'data.img'))).toBe('virtops-disk-label: first\n');

    await writeDiskLabel(claim(), 'second');
    await ids.admin.create({ apiVersion: SNAPSHOT_API, kind: 'VirtualMachineRestore', metadata: { name: 'back', namespace: NS }, spec: { target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: VM }, virtualMachineSnapshotName: 'offline' } } as KubernetesObject);
    const r = await waitFor('restore ended', async () => {
      const x = (await listJson<VirtualMachineRestore>(ids.admin, SNAPSHOT_API, 'VirtualMachineRestore', NS)).find((y) => y.metadata.name === 'back');
      return x?.status?.complete || x?.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'Operation failed') ? x : undefined;
    }, 180_000, 500);
    expect(r.status?.conditions.find((c) => c.type === 'Ready')?.message).toBeUndefined();
    expect(r.status).toMatchObject({ complete: true, restores: [{ volumeName: 'data', persistentVolumeClaim: DV }] });
    expect(await head(claim())).toBe('virtops-disk-label: first\n');
    const f = await stat(claim());
    expect([f.gid, f.mode & 0o777]).toEqual([LAUNCHER_USER, 0o660]);

    await commit('Always', 'run it again');
    await waitStatus('Running');
    await guestReads('first');
  }, 900_000);
});
