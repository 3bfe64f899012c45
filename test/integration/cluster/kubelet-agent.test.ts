/**
 * The node agent beside a real kubelet (issue 10, part 4): `virtops agent` without
 * `--process-runtime` (in-process, as the agent's service account) next to a real kubelet +
 * containerd node, and the controller (as its service account) applying a git repository
 * whose launcher Pod template runs QEMU under the Pod's own libvirt daemon. The agent
 * registers no Node (the kubelet did; the agent labels it schedulable), finds each launcher
 * through the node's launcher socket directory, checks the peer, hands it its VMI and writes
 * VMI status; Pod status is the kubelet's.
 *
 * Push a VM → Running and Ready, the Pod `virt-launcher-<vm>-xxxxx` Running on the kubelet
 * node, the guest's markers on its serial log; SIGKILL of the compute container's main process
 * → a new VMI and Pod (runStrategy Always); a kubelet restart → the same QEMU keeps running;
 * the VM leaves git → Pod, domain, socket and Pod dirs gone; a VM whose containerDisk image
 * does not exist → ErrImagePull/ImagePullBackOff on the VM and its VMI, Running once the image
 * is pushed. One testenv (control plane + node) for the file, torn down at the end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { NOT_ROOT, skipReason } from '../../helpers/skip.js';
import { join } from 'node:path';
import { pino } from 'pino';
import YAML from 'yaml';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { DEFAULT_BACKOFF_POLICY } from '../../../reconciler/core/index.js';
import { runAgent, runController, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { IMAGE_BUILD_MS, inPod, pidsWhere, ppidOf, startKubeletEnv, type KubeletEnv } from '../../helpers/kubelet.js';
import { ensureTestGuest, GUEST_MARKERS } from '../../helpers/test-guest.js';
import { waitFor } from '../../helpers/wait.js';
import { gitFixture, testGuestVm, type GitFixture } from '../standalone/fixture.js';
import { crdDocuments, getVm, identities, listJson, type Env, type Identities } from './harness.js';
import { clusterTestenv } from './testenv-fixture.js';

const testenv = await clusterTestenv();
const skip = skipReason(`${import.meta.url.split('/').pop()}`, { 'no control plane (Go and the kube binaries are missing)': !testenv, [NOT_ROOT]: process.getuid?.() !== 0 });
const NS = 'virtops-ka';
const VM = 'ka';
const DOMAIN = `${NS}_${VM}`;
const progress = (l: string) => process.stderr.write(`[kubelet-agent] ${l}\n`);
const log = pino({ level: process.env['VIRTOPS_TEST_LOG'] ?? 'warn' });

const qemuPids = () => pidsWhere((c) => /qemu-system-x86_64/.test(c) && c.includes(`guest=${DOMAIN}`));

describe.skipIf(skip !== undefined)('the agent beside a real kubelet', () => {
  let env: KubeletEnv;
  let ids: Identities;
  let git: GitFixture;
  let controller: ControllerHandle | undefined;
  let agent: AgentHandle | undefined;
  let socketDir: string;
  let first: { vmi: VirtualMachineInstance; pod: V1Pod };

  const launcherPods = () => listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher');
  const vmis = () => listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
  const serialLog = (podUid: string) => join(env.node.dir, 'kubelet', 'pods', podUid, 'volumes', 'kubernetes.io~empty-dir', 'public', 'logs', `${DOMAIN}-serial0.log`);

  /** The VM Running and Ready, its one VMI Running on the node and its launcher Pod Running there; returns the VMI and Pod. */
  const runningAndReady = async (what: string, notUid?: string) => {
    await waitFor(`${what}: VM Running and Ready`, async () => {
      const vm = await getVm(ids.admin, NS, VM);
      return vm?.status?.printableStatus === 'Running' && vm.status.ready === true ? vm : undefined;
    }, 600_000, 500);
    const vmi = await waitFor(`${what}: the VMI Running`, async () => (await vmis()).find((v) => v.status?.phase === 'Running' && v.metadata.uid !== notUid), 60_000);
    const pod = await waitFor(`${what}: its launcher Pod Running`, async () => (await launcherPods()).find((p) => p.metadata?.labels?.['kubevirt.io/created-by'] === vmi.metadata.uid && p.status?.phase === 'Running'), 60_000);
    return { vmi, pod };
  };

  beforeAll(async () => {
    env = await startKubeletEnv({ prefix: 'virtops-ka-', progress });
    socketDir = join(env.dir, 'launchers');
    ids = await identities(env.cp as unknown as Env, NS);
    git = await gitFixture();
    agent = await runAgent(
      { node: env.node.name, processRuntime: false, stateDir: join(env.dir, 'agent'), emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [], intervalMs: 5000, launcherSocketDir: socketDir },
      log.child({ c: 'agent' }),
      { client: ids.agent.client },
    );
    controller = await runController(
      {
        repo: git.bare, branch: 'main', distPath: 'dist', namespace: NS, leaderElect: false, intervalMs: 2000, freshness: false, identity: 'test', leaseDurationMs: 15_000,
        // A restart after the kill test comes within seconds, not the default 10 s doubling.
        backoffPolicy: { ...DEFAULT_BACKOFF_POLICY, initialMs: 1000, maxMs: 4000 },
      },
      log.child({ c: 'controller' }),
      { client: ids.controller.client },
    );
  }, IMAGE_BUILD_MS);

  afterAll(async () => {
    if (ids) {
      for (const v of await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachine', NS).catch(() => [])) await ids.admin.delete(v).catch(() => undefined);
      await waitFor('launcher Pods gone', async () => (await launcherPods()).length === 0, 120_000).catch(() => undefined);
    }
    await controller?.stop();
    await agent?.stop();
    await env?.stop();
    await git?.cleanup();
  }, 300_000);

  it('push a VM → the agent labels the node, drives the launcher the kubelet runs, and the VM is Running and Ready', async () => {
    const vm: VirtualMachine = testGuestVm({ image: `${env.podRegistry}/virtops/test-guest:latest`, name: VM });
    vm.metadata.namespace = NS;
    expect(vm.spec.runStrategy).toBe('Always');
    // The template as a kubelet node needs it: QEMU under the Pod's own libvirt daemon, the
    // socket published in this test's socket dir, the image from the node's registry.
    const template = renderLauncherPod(vm, { launcherImage: env.launcherImage, libvirtDaemon: 'pod', nodeSocketDir: socketDir, emulation: 'tcg' });
    template.spec.containers[0]!.args!.push('--insecure-registry', env.podRegistry);
    await git.commitDist({ 'crds.k8s.yaml': crdDocuments(), [`${VM}.k8s.yaml`]: [vm, template].map((d) => YAML.stringify(d)).join('---\n') }, 'a VM on the kubelet node');

    first = await runningAndReady('first start');
    const node = (await env.core.readNode({ name: env.node.name }));
    expect(node.metadata?.labels?.['kubevirt.io/schedulable']).toBe('true');
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    expect(first.pod.metadata?.name).toMatch(new RegExp(`^virt-launcher-${VM}-[a-z0-9]{5}$`));
    expect(first.pod.spec?.nodeName).toBe(env.node.name);
    expect(first.vmi.status?.nodeName).toBe(env.node.name);
    // The kubelet's Pod status: containerd container IDs (the agent writes none).
    for (const s of first.pod.status?.containerStatuses ?? []) expect(s.containerID, s.name).toMatch(/^containerd:\/\//);
    // The socket dir: the Pod's uid, handed to the Pod's user (107), mode 0700.
    const podUid = first.pod.metadata!.uid!;
    const st = await import('node:fs/promises').then((f) => f.lstat(join(socketDir, podUid)));
    expect([st.uid, st.mode & 0o777]).toEqual([107, 0o700]);
    const text = await waitFor('the guest ready marker on the serial log', async () => {
      const t = existsSync(serialLog(podUid)) ? readFileSync(serialLog(podUid), 'utf8') : '';
      return t.includes(GUEST_MARKERS.ready) ? t : undefined;
    }, 300_000);
    expect(text).toContain(GUEST_MARKERS.booted);
    const qemu = qemuPids();
    expect(qemu).toHaveLength(1);
    expect(inPod(qemu[0]!, podUid)).toBe(true);
  }, 900_000);

  it("SIGKILL of the compute container's main process → a new VMI and Pod (runStrategy Always)", async () => {
    expect(first, 'the first test').toBeDefined();
    const podUid = first.pod.metadata!.uid!;
    const [monitor] = pidsWhere((c, pid) => c.includes('launcher-monitor') && inPod(pid, podUid));
    expect(monitor, 'the launcher monitor').toBeDefined();
    // The container's main process: its parent is the runtime's shim, outside the Pod.
    expect(inPod(ppidOf(monitor!), podUid)).toBe(false);
    process.kill(monitor!, 'SIGKILL');

    const failed = await waitFor('the old launcher Pod Failed', async () => {
      const p = (await launcherPods()).find((x) => x.metadata?.uid === podUid);
      return p === undefined || p.status?.phase === 'Failed' ? true : undefined;
    }, 120_000);
    expect(failed).toBe(true);
    const second = await runningAndReady('after the kill', first.vmi.metadata.uid);
    expect(second.vmi.metadata.uid).not.toBe(first.vmi.metadata.uid);
    expect(second.pod.metadata?.uid).not.toBe(podUid);
    await waitFor('the new guest ready marker', async () => (existsSync(serialLog(second.pod.metadata!.uid!)) && readFileSync(serialLog(second.pod.metadata!.uid!), 'utf8').includes(GUEST_MARKERS.ready) ? true : undefined), 300_000);
    // The old incarnation is gone, with its socket dir.
    await waitFor('the old VMI and Pod gone', async () => ((await vmis()).some((v) => v.metadata.uid === first.vmi.metadata.uid) || (await launcherPods()).some((p) => p.metadata?.uid === podUid) ? undefined : true), 120_000);
    await waitFor('the old socket dir gone', () => (existsSync(join(socketDir, podUid)) ? undefined : true), 30_000);
    expect(qemuPids()).toHaveLength(1);
    first = second;
  }, 900_000);

  it('a kubelet restart leaves the running VM running: same VMI, same Pod, same QEMU', async () => {
    const [qemu] = qemuPids();
    expect(qemu).toBeDefined();
    const kubeletBefore = env.node.pids().kubelet;
    await env.node.restartKubelet();
    expect(env.node.pids().kubelet).not.toBe(kubeletBefore);
    // Give the new kubelet a sync of its Pods (it re-reads their state from containerd).
    await new Promise((r) => setTimeout(r, 15_000));
    expect(qemuPids()).toEqual([qemu]);
    const now = await runningAndReady('after the kubelet restart');
    expect(now.vmi.metadata.uid).toBe(first.vmi.metadata.uid);
    expect(now.pod.metadata?.uid).toBe(first.pod.metadata?.uid);
    expect(now.pod.status?.containerStatuses?.find((c) => c.name === 'compute')?.restartCount ?? 0).toBe(0);
  }, 300_000);

  it('the VM leaves git → VMI, Pod, domain, socket dir and the Pod dir gone', async () => {
    const podUid = first.pod.metadata!.uid!;
    await git.commitDist({ 'crds.k8s.yaml': crdDocuments() }, 'the VM leaves');
    await waitFor('the VM, VMI and launcher Pod gone', async () => (!(await getVm(ids.admin, NS, VM)) && (await vmis()).length === 0 && (await launcherPods()).length === 0 ? true : undefined), 240_000, 500);
    await waitFor('QEMU gone', () => (qemuPids().length === 0 ? true : undefined), 60_000);
    await waitFor('the socket dir gone', () => (existsSync(join(socketDir, podUid)) ? undefined : true), 30_000);
    await waitFor("the kubelet's Pod dir gone", () => (existsSync(join(env.node.dir, 'kubelet', 'pods', podUid)) ? undefined : true), 60_000);
    expect(pidsWhere((_c, pid) => inPod(pid, podUid))).toEqual([]);
  }, 300_000);

  it('a containerDisk image that does not exist → the VM shows ErrImagePull/ImagePullBackOff, the VMI names the image; pushed → Running', async () => {
    const name = 'ka-pull';
    const repo = `virtops/ka-late-disk-${Date.now().toString(36)}`;
    const vm: VirtualMachine = testGuestVm({ image: `${env.podRegistry}/virtops/test-guest:latest`, name });
    vm.metadata.namespace = NS;
    const spec = vm.spec.template.spec;
    spec.domain.devices.disks = [...(spec.domain.devices.disks ?? []), { name: 'containerdisk', disk: { bus: 'virtio' } }];
    spec.volumes = [...(spec.volumes ?? []), { name: 'containerdisk', containerDisk: { image: `${env.podRegistry}/${repo}:latest` } }];
    const template = renderLauncherPod(vm, { launcherImage: env.launcherImage, libvirtDaemon: 'pod', nodeSocketDir: socketDir, emulation: 'tcg' });
    template.spec.containers[0]!.args!.push('--insecure-registry', env.podRegistry);
    await git.commitDist({ 'crds.k8s.yaml': crdDocuments(), [`${name}.k8s.yaml`]: [vm, template].map((d) => YAML.stringify(d)).join('---\n') }, 'a VM whose disk image is not there yet');

    const pullReasons = ['ErrImagePull', 'ImagePullBackOff'];
    const shown = await waitFor('the VM ErrImagePull or ImagePullBackOff', async () => {
      const s = (await getVm(ids.admin, NS, name))?.status;
      return s?.printableStatus && pullReasons.includes(s.printableStatus) ? s : undefined;
    }, 180_000, 500);
    expect(shown.ready ?? false).toBe(false);
    expect(shown.conditions?.find((c) => c.type === 'Ready')?.message).toContain(repo);
    const cond = await waitFor("the VMI's Synchronized condition naming the image", async () => {
      const c = (await vmis()).find((v) => v.metadata.name === name)?.status?.conditions?.find((x) => x.type === 'Synchronized');
      return c && pullReasons.includes(c.reason ?? '') ? c : undefined;
    }, 60_000);
    expect(cond.status).toBe('False');
    expect(cond.message).toContain(`${repo}:latest`);

    // The image appears: the kubelet's next pull (back-off 10 s, doubling) succeeds.
    await env.node.pushImage((await ensureTestGuest()).ociDisk, repo);
    await waitFor('the VM Running and Ready once the image is there', async () => {
      const v = await getVm(ids.admin, NS, name);
      return v?.status?.printableStatus === 'Running' && v.status.ready === true ? true : undefined;
    }, 600_000, 500);
    const vmi = (await vmis()).find((v) => v.metadata.name === name);
    expect(vmi?.status?.conditions?.find((c) => c.type === 'Synchronized')?.reason ?? '').not.toMatch(/ImagePull/);

    await git.commitDist({ 'crds.k8s.yaml': crdDocuments() }, 'the pull VM leaves');
    await waitFor('its VMI and launcher Pod gone', async () => ((await vmis()).length === 0 && (await launcherPods()).length === 0 ? true : undefined), 240_000, 500);
    await waitFor('its QEMU gone', () => (pidsWhere((c) => /qemu-system-x86_64/.test(c) && c.includes(`guest=${NS}_${name}`)).length === 0 ? true : undefined), 60_000);
  }, 900_000);
});
