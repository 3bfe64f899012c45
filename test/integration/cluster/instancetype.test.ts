/**
 * Instancetypes and preferences in cluster mode on the real control plane (etcd,
 * kube-apiserver, scheduler, controller-manager), real git and real launchers on libvirt's
 * test:///default driver; the controller and the agent run as synth/install.ts's service
 * accounts with exactly its RBAC. A VM sized by a namespaced instancetype (2 vCPUs, 256Mi)
 * with a preference, from git: the VMI carries the expanded CPU and memory, the launcher Pod
 * requests them, a ControllerRevision per object exists and the VM status names it. An
 * instancetype edit in git leaves the VMI alone with RestartRequired; `virtops restart` gives
 * a VMI of the new size and replaces the old revision.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import type { InstancetypeObject } from '../../../api/instancetype.js';
import { ALL_CRDS, renderCrd } from '../../../synth/crds.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { computeOverhead } from '../../../synth/overhead.js';
import { MiB, parseQuantity } from '../../../synth/quantity.js';
import { CLI_BIN, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { clusterTestenv } from './testenv-fixture.js';
import {
  deleteNode, deleteVmsAndWait, getVm, gitFixture, identities, listJson, startAgent, startController, stopLaunchersUnder, tempDir, until, type Env, type Identities,
} from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-it-${suffix}`;
const NODE = `vo-it-node-${suffix}`;
const IT = 'instancetype.kubevirt.io/v1beta1';

const instancetype = (memory: string): InstancetypeObject => ({
  apiVersion: IT, kind: 'VirtualMachineInstancetype', metadata: { name: 'small', namespace: NS }, spec: { cpu: { guest: 2 }, memory: { guest: memory } },
});
const preference: InstancetypeObject = {
  apiVersion: IT, kind: 'VirtualMachinePreference', metadata: { name: 'cores', namespace: NS }, spec: { cpu: { preferredCPUTopology: 'cores' } },
};
const vm: VirtualMachine = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'sized', namespace: NS },
  spec: {
    runStrategy: 'Always',
    instancetype: { kind: 'VirtualMachineInstancetype', name: 'small' },
    preference: { kind: 'VirtualMachinePreference', name: 'cores' },
    template: { spec: { domain: { devices: {} }, terminationGracePeriodSeconds: 0 } },
  },
};

/** dist/ as synth writes it: all CRDs, the instancetype and preference, the VM and its launcher Pod (sized from the expansion). */
function dist(memory: string): Record<string, string> {
  const objects = [instancetype(memory), preference];
  const docs = (list: unknown[]) => list.map((d) => YAML.stringify(d)).join('---\n');
  return {
    'crds.k8s.yaml': docs(ALL_CRDS.map(renderCrd)),
    'instancetypes.k8s.yaml': docs(objects),
    'sized.k8s.yaml': docs([vm, renderLauncherPod(vm, {}, objects)]),
  };
}

describe.skipIf(!env)('cluster mode: instancetypes and preferences (real control plane, test:///default launchers)', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let controller: ControllerHandle;
  let agent: AgentHandle;

  const vmi = async () => (await listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS)).find((x) => x.metadata?.name === 'sized');
  const podOf = async (uid: string) => (await listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, `kubevirt.io/created-by=${uid}`))[0];
  const status = async () => (await getVm(ids.admin, NS, 'sized'))?.status;
  const memoryRequest = (pod: V1Pod | undefined) => parseQuantity(pod?.spec?.containers.find((c) => c.name === 'compute')?.resources?.requests?.['memory'] ?? '0');

  beforeAll(async () => {
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-it-agent-');
    agent = await startAgent(ids, NODE, state.dir, 'test:///default');
    controller = await startController(ids, git, NS);
  }, 120_000);

  afterAll(async () => {
    if (ids) await deleteVmsAndWait(ids.admin, NS);
    await controller?.stop();
    await agent?.stop();
    if (state) await stopLaunchersUnder(state.dir);
    if (ids) {
      await deleteNode(ids.admin, NODE);
      await ids.admin.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }).catch(() => undefined);
    }
    await git?.cleanup();
    await state?.cleanup();
  }, 120_000);

  it('expanded VMI and Pod, revisions in status; an edit is RestartRequired until virtops restart', async () => {
    await git.commitDist(dist('256Mi'), 'a VM sized by instancetype small');
    await until('VM sized Running', async () => (await status())?.printableStatus === 'Running', 90_000);

    const first = (await vmi())!;
    expect(first.spec.domain.cpu).toMatchObject({ sockets: 1, cores: 2, threads: 1 });
    expect(first.spec.domain.memory?.guest).toBe('256Mi');
    expect(first.metadata.annotations).toMatchObject({ 'kubevirt.io/instancetype-name': 'small', 'kubevirt.io/preference-name': 'cores' });
    const pod = await podOf(first.metadata.uid!);
    expect(memoryRequest(pod)).toBe(256 * MiB + computeOverhead(first.spec).total);

    const revisions = await listJson<{ metadata: { name: string; ownerReferences?: { kind: string; name: string }[] }; data: InstancetypeObject }>(ids.admin, 'apps/v1', 'ControllerRevision', NS);
    const itRev = revisions.find((r) => r.data.kind === 'VirtualMachineInstancetype');
    expect(itRev?.data.spec).toEqual({ cpu: { guest: 2 }, memory: { guest: '256Mi' } });
    expect(itRev?.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachine', name: 'sized' });
    const s1 = await status();
    expect(s1?.instancetypeRef).toEqual({ kind: 'VirtualMachineInstancetype', name: 'small', controllerRevisionRef: { name: itRev!.metadata.name } });
    expect(s1?.preferenceRef?.controllerRevisionRef?.name).toBe(revisions.find((r) => r.data.kind === 'VirtualMachinePreference')?.metadata.name);

    // Git sizes the instancetype up: the running VMI stays as it is, the VM says RestartRequired.
    await git.commitDist(dist('384Mi'), 'instancetype small: 384Mi');
    await until('RestartRequired', async () => (await status())?.conditions?.some((c) => c.type === 'RestartRequired' && c.status === 'True') === true, 60_000);
    const still = (await vmi())!;
    expect(still.metadata.uid).toBe(first.metadata.uid);
    expect(still.spec.domain.memory?.guest).toBe('256Mi');
    expect((await status())?.instancetypeRef?.controllerRevisionRef?.name).toBe(itRev!.metadata.name);

    const r = await execa(process.execPath, [CLI_BIN, 'restart', 'sized', '-n', NS, '--kubeconfig', e.kubeconfigPath], { reject: false, env: { VIRTOPS_STATE_DIR: '', VIRTOPS_SERVER: '' } });
    expect(r.exitCode, r.stderr).toBe(0);
    const second = await until('a new VMI Running', async () => {
      const v = await vmi();
      return v && v.metadata.uid !== first.metadata.uid && v.status?.phase === 'Running' ? v : undefined;
    }, 90_000);
    expect(second.spec.domain.memory?.guest).toBe('384Mi');
    expect(memoryRequest(await podOf(second.metadata.uid!))).toBe(384 * MiB + computeOverhead(second.spec).total);
    const s2 = await until('status names the new revision', async () => {
      const s = await status();
      return s?.instancetypeRef?.controllerRevisionRef?.name !== itRev!.metadata.name && !s?.conditions?.some((c) => c.type === 'RestartRequired') ? s : undefined;
    }, 30_000);
    const newRev = (await listJson<{ metadata: { name: string }; data: InstancetypeObject }>(ids.admin, 'apps/v1', 'ControllerRevision', NS)).find((x) => x.metadata.name === s2.instancetypeRef?.controllerRevisionRef?.name);
    expect(newRev?.data.spec).toEqual({ cpu: { guest: 2 }, memory: { guest: '384Mi' } });
    const names = (await listJson<{ metadata: { name: string } }>(ids.admin, 'apps/v1', 'ControllerRevision', NS)).map((x) => x.metadata.name);
    expect(names).not.toContain(itRev!.metadata.name);
  }, 240_000);
});
