/**
 * Shared pieces of the cluster-mode tests: the service accounts of synth/install.ts bound to
 * exactly the RBAC objects it renders (with process-runtime agents), a real git
 * repository whose dist/ holds the CRDs, VMs and launcher Pod templates, the controller and
 * agent run in-process (or as `virtops` CLI processes), and polling helpers.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import YAML from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { renderCrd, VM_CRD, VMI_CRD } from '../../../synth/crds.js';
import { App, Testing } from 'cdk8s';
import { AGENT_NAME, CONTROLLER_NAME, InstallChart } from '../../../synth/install.js';
import { HttpKubeClient, loadKubeConfig } from '../../../reconciler/cluster/kube.js';
import { runAgent, runController, CLI_BIN, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { serviceAccountKubeconfig, type ControlPlane } from '../../../reconciler/cluster/testenv/index.js';
import { gitFixture, testGuestVm, vmDocuments, type GitFixture } from '../standalone/fixture.js';
import type { ClusterTestenv } from './testenv-fixture.js';
import { waitFor as until } from '../../helpers/wait.js';

export type Env = ControlPlane & ClusterTestenv;

export const log = pino({ level: process.env['VIRTOPS_TEST_LOG'] ?? 'warn' });

export { until };

/** The CRDs exactly as synth renders them (the same documents `dist/crds.k8s.yaml` holds). */
export function crdDocuments(): string {
  return [renderCrd(VM_CRD), renderCrd(VMI_CRD)].map((d) => YAML.stringify(d)).join('---\n');
}

/**
 * The test guest (`image`) in `namespace` with a second disk `data` on a blank 16Mi
 * DataVolume `dv` (a dataVolumeTemplate), for the snapshot tests of both node kinds.
 */
export function guestWithBlankDataVolume(p: { image: string; name: string; namespace: string; dv: string; runStrategy: 'Always' | 'Halted' }): VirtualMachine {
  const v = testGuestVm({ image: p.image, name: p.name });
  v.metadata.namespace = p.namespace;
  delete v.spec.running;
  v.spec.runStrategy = p.runStrategy;
  v.spec.dataVolumeTemplates = [{ metadata: { name: p.dv }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '16Mi' } } } } }];
  const spec = v.spec.template.spec;
  spec.domain.devices.disks = [...(spec.domain.devices.disks ?? []), { name: 'data', disk: { bus: 'virtio' } }];
  spec.volumes = [...(spec.volumes ?? []), { name: 'data', dataVolume: { name: p.dv } }];
  spec.terminationGracePeriodSeconds = 10;
  return v;
}

export async function commitVms(git: GitFixture, vms: VirtualMachine[], message: string): Promise<string> {
  return git.commitDist({ 'crds.k8s.yaml': crdDocuments(), ...Object.fromEntries(vms.map((v) => [`${v.metadata.name}.k8s.yaml`, vmDocuments(v)])) }, message);
}

export interface Identities {
  controller: { kubeconfigPath: string; client: HttpKubeClient };
  agent: { kubeconfigPath: string; client: HttpKubeClient };
  admin: HttpKubeClient;
}

const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/**
 * The RBAC objects synth/install.ts renders for install namespace `namespace` (with
 * process-runtime agents unless `processRuntimeAgents: false`, the default install beside a
 * kubelet), and nothing else. Cluster-scoped names and Roles outside `namespace` get a
 * `<namespace>-` prefix, so test files with their own namespaces never rebind each other's
 * service accounts.
 */
export function installRbac(namespace: string, { processRuntimeAgents = true }: { processRuntimeAgents?: boolean } = {}): KubernetesObject[] {
  const objects = Testing.synth(new InstallChart(new App(), 'install', { installNamespace: namespace, processRuntimeAgents })) as (KubernetesObject & { roleRef?: { name: string } })[];
  const shared = (o: KubernetesObject) => o.metadata?.namespace !== namespace;
  return objects.filter((o) => RBAC_KINDS.has(o.kind!)).map((o) => {
    if (!shared(o)) return o;
    const renamed = { ...o, metadata: { ...o.metadata, name: `${namespace}-${o.metadata!.name}` } };
    return o.roleRef ? { ...renamed, roleRef: { ...o.roleRef, name: `${namespace}-${o.roleRef.name}` } } : renamed;
  });
}

/**
 * Service accounts virtops-controller and virtops-agent in `namespace`, bound to exactly the
 * RBAC synth/install.ts renders (`installRbac`).
 */
export async function identities(env: Env, namespace: string, rbac: Parameters<typeof installRbac>[1] = {}): Promise<Identities> {
  const admin = new HttpKubeClient(loadKubeConfig(env.kubeconfigPath));
  await admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } as KubernetesObject);
  for (const o of installRbac(namespace, rbac)) await admin.apply(o);
  const ck = await serviceAccountKubeconfig(env, { namespace, name: CONTROLLER_NAME });
  const ak = await serviceAccountKubeconfig(env, { namespace, name: AGENT_NAME });
  return {
    admin,
    controller: { kubeconfigPath: ck.kubeconfigPath, client: new HttpKubeClient(loadKubeConfig(ck.kubeconfigPath)) },
    agent: { kubeconfigPath: ak.kubeconfigPath, client: new HttpKubeClient(loadKubeConfig(ak.kubeconfigPath)) },
  };
}

export async function startController(ids: Identities, git: GitFixture, namespace: string, opts: { intervalMs?: number } = {}): Promise<ControllerHandle> {
  return runController(
    { repo: git.bare, branch: 'main', distPath: 'dist', namespace, leaderElect: false, intervalMs: opts.intervalMs ?? 2000, freshness: false, identity: 'test', leaseDurationMs: 15_000 },
    log.child({ c: 'controller' }),
    { client: ids.controller.client },
  );
}

export async function startAgent(ids: Identities, node: string, stateDir: string, libvirtUri: string, extra: { insecureRegistries?: string[]; emulation?: 'tcg' } = {}): Promise<AgentHandle> {
  return runAgent(
    { node, processRuntime: true, stateDir, emulation: extra.emulation ?? 'tcg', libvirtUri, insecureRegistries: extra.insecureRegistries ?? [], intervalMs: 5000 },
    log.child({ c: 'agent' }),
    { client: ids.agent.client },
  );
}

/**
 * The `--lease-duration` of `controllerProcess` replicas. Short, so a takeover test is quick,
 * but not 3 s: at load 18 on 2 cores a leader missed its renewals for 3 s and lost the lease
 * before the test killed it (controller-crash.test.ts, 2026-12-04).
 */
export const LEASE_DURATION_MS = 8000;

/** `virtops controller` as a real process (for SIGKILL and leader-election tests). */
export function controllerProcess(kubeconfig: string, git: GitFixture, namespace: string, identity: string, logFile: string, cacheDir: string): ResultPromise {
  return execa(process.execPath, [CLI_BIN, 'controller', '--kubeconfig', kubeconfig, '--repo', git.bare, '--namespace', namespace, '--leader-elect', '--lease-duration', `${LEASE_DURATION_MS / 1000}s`, '--identity', identity, '--interval', '2s', '--no-freshness-check', '--cache-dir', cacheDir], {
    reject: false, stdout: { file: logFile }, stderr: { file: `${logFile}.err` }, env: { VIRTOPS_LOG_LEVEL: 'info' },
  });
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

// ---- reading the cluster as admin --------------------------------------------------------------

export async function listJson<T = Record<string, unknown>>(admin: HttpKubeClient, apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<(T & KubernetesObject)[]> {
  const l = await admin.list(apiVersion, kind, { ...(namespace ? { namespace } : {}), ...(labelSelector ? { labelSelector } : {}) });
  return l.items as (T & KubernetesObject)[];
}

export async function getVm(admin: HttpKubeClient, namespace: string, name: string): Promise<VirtualMachine | undefined> {
  return admin.read<KubernetesObject>({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace } }) as Promise<VirtualMachine | undefined>;
}

/** Processes whose command line mentions `marker` (a VMI uid), i.e. launchers still alive. */
export async function processesWith(marker: string): Promise<number> {
  const r = await execa('pgrep', ['-f', marker], { reject: false });
  return r.stdout.trim() ? r.stdout.trim().split('\n').length : 0;
}

/**
 * Last-resort cleanup: launcher processes whose command line points into `dir` (the agent's
 * state dir). Normally the agent stops them when their VMIs go; if a test failed before that,
 * they must not outlive the test.
 */
export async function stopLaunchersUnder(dir: string): Promise<void> {
  const pids = async () => (await execa('pgrep', ['-f', `${dir}/`], { reject: false })).stdout.trim().split('\n').filter(Boolean).map(Number);
  for (const pid of await pids()) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  }
  // Up to 10 s to exit on SIGTERM; whatever is left then gets SIGKILL.
  await until(`launchers under ${dir} to exit`, async () => (await pids()).length === 0, 10_000).catch(() => undefined);
  for (const pid of await pids()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/**
 * Teardown: deletes every VM in `namespace` and waits (bounded, never failing) until their
 * VMIs and launcher Pods are gone, i.e. the agent has stopped the launchers and finalised them.
 */
export async function deleteVmsAndWait(admin: HttpKubeClient, namespace: string, timeoutMs = 60_000): Promise<void> {
  for (const v of await listJson(admin, 'kubevirt.io/v1', 'VirtualMachine', namespace).catch(() => [])) await admin.delete(v as KubernetesObject).catch(() => undefined);
  await until('VMIs and launcher Pods gone', async () => (await listJson(admin, 'kubevirt.io/v1', 'VirtualMachineInstance', namespace)).length === 0 && (await listJson(admin, 'v1', 'Pod', namespace, 'kubevirt.io=virt-launcher')).length === 0, timeoutMs).catch(() => undefined);
}

/**
 * The teardown of a test that ran a real guest in namespace `ns` on node `node`: VMs deleted
 * and their VMIs awaited, controller and agent stopped, leftover launchers and the domain
 * removed, the Node and namespace deleted, temp dirs and the registry gone. Each part may be
 * missing (a beforeAll that failed half-way).
 */
export async function teardownGuestTest(t: {
  ids?: Identities; controller?: ControllerHandle; agent?: AgentHandle; state?: { dir: string; cleanup(): Promise<void> };
  git?: { cleanup(): Promise<void> }; registry?: { stop(): Promise<void> }; ns: string; node: string; domain: string;
}): Promise<void> {
  const { ids, ns } = t;
  const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });
  if (ids) {
    for (const v of await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachine', ns).catch(() => [])) await ids.admin.delete(v as KubernetesObject);
    await until('VMIs gone', async () => (await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', ns)).length === 0, 90_000).catch(() => undefined);
  }
  await t.controller?.stop();
  await t.agent?.stop();
  if (t.state) await stopLaunchersUnder(t.state.dir);
  if ((await virsh('domstate', t.domain)).exitCode === 0) {
    await virsh('destroy', t.domain);
    await virsh('undefine', t.domain);
  }
  if (ids) {
    await deleteNode(ids.admin, t.node);
    await ids.admin.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }).catch(() => undefined);
  }
  await t.git?.cleanup();
  await t.state?.cleanup();
  await t.registry?.stop();
}

export async function deleteNode(admin: HttpKubeClient, name: string): Promise<void> {
  await admin.delete({ apiVersion: 'v1', kind: 'Node', metadata: { name } }).catch(() => undefined);
}

export { gitFixture };
