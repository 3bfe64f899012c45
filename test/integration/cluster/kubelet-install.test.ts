/**
 * `kubectl apply -f dist/install.k8s.yaml` as shipped (issue 10, part 5), on a control plane
 * with a real kubelet + containerd node: the image name rewritten to the node's registry (the
 * only edit), the controller's git URL in ConfigMap virtops-config (`repo`), git served to the
 * controller Pod by `git daemon` on this host (git://<CNI bridge gateway>:<port>/vms.git: the
 * smallest server a Pod reaches over the Pod network, no credentials). The controller
 * Deployment and the agent DaemonSet then run as real Pods under the kubelet and take a VM from
 * a git push to Running and Ready.
 *
 * What a real cluster has and this testenv lacks, set up here: the `kubernetes` Service
 * (10.0.0.1:443) routed to the API server (kube-proxy's job; here one iptables DNAT rule to a
 * relay on the bridge gateway, since the API server listens on loopback), and Pods' service
 * account tokens (the control plane is started with the ServiceAccount admission plugin on).
 * The launcher socket dir is the real default, /var/lib/virtops/launchers, removed at the end
 * when this test made it.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { NOT_ROOT, skipReason } from '../../helpers/skip.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import type { V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { HttpKubeClient, loadKubeConfig } from '../../../reconciler/cluster/kube.js';
import { freePorts } from '../../../reconciler/cluster/testenv/ports.js';
import { DEFAULT_NODE_SOCKET_DIR, renderLauncherPod } from '../../../synth/launcher-pod.js';
import { launcherFlagValue } from '../../../launcher/flags.js';
import { IMAGE_BUILD_MS, relay, startKubeletEnv, type KubeletEnv } from '../../helpers/kubelet.js';
import { waitFor } from '../../helpers/wait.js';
import { gitFixture, testGuestVm, type GitFixture } from '../standalone/fixture.js';
import { crdDocuments, getVm, listJson } from './harness.js';
import { clusterTestenv } from './testenv-fixture.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const testenv = await clusterTestenv();
const skip = skipReason(`${import.meta.url.split('/').pop()}`, { 'no control plane (Go and the kube binaries are missing)': !testenv, [NOT_ROOT]: process.getuid?.() !== 0 });
const NS = 'virtops-install';
const VM = 'ki';
const SHIPPED_IMAGE = /localhost:5000\/virtops:[^\s"]+/g;
const KUBERNETES_SERVICE = '10.0.0.1';
const progress = (l: string) => process.stderr.write(`[kubelet-install] ${l}\n`);

describe.skipIf(skip !== undefined)('dist/install.k8s.yaml as shipped on a kubelet node', () => {
  let env: KubeletEnv;
  let admin: HttpKubeClient;
  let git: GitFixture;
  let gitDaemon: ChildProcess | undefined;
  let apiRelay: Awaited<ReturnType<typeof relay>> | undefined;
  let dnat: string[] | undefined;
  /** The outermost directory of DEFAULT_NODE_SOCKET_DIR that did not exist before (the kubelet makes the hostPath with its parents). */
  let madeDir: string | undefined;
  let gateway: string;
  let manifest: string;

  const kubectl = (args: string[], input?: string) => execa('kubectl', ['--kubeconfig', env.cp.kubeconfigPath, ...args], { ...(input !== undefined ? { input } : {}), reject: false });
  const pods = (namespace: string, selector: string) => listJson<V1Pod>(admin, 'v1', 'Pod', namespace, selector);

  beforeAll(async () => {
    const parts = DEFAULT_NODE_SOCKET_DIR.split('/');
    madeDir = parts.map((_p, i) => parts.slice(0, i + 1).join('/')).filter((d) => d !== '').find((d) => !existsSync(d));
    env = await startKubeletEnv({ prefix: 'virtops-ki-', progress, serviceAccountAdmission: true });
    admin = new HttpKubeClient(loadKubeConfig(env.cp.kubeconfigPath));
    gateway = env.node.subnet.replace(/\.0\/\d+$/, '.1');

    // kube-proxy's part for the one Service the virtops Pods use: kubernetes:443 → the API server.
    apiRelay = await relay(`127.0.0.1:${env.cp.ports.apiserver}`);
    dnat = ['-t', 'nat', 'PREROUTING', '-d', `${KUBERNETES_SERVICE}/32`, '-p', 'tcp', '--dport', '443', '-j', 'DNAT', '--to-destination', `${gateway}:${apiRelay.port}`];
    await execa('iptables', [dnat[0]!, dnat[1]!, '-I', ...dnat.slice(2)]);

    git = await gitFixture();
    const [port] = await freePorts(1);
    gitDaemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${git.dir}`, `--port=${port}`, git.dir], { stdio: 'ignore' });
    manifest = readFileSync(join(REPO, 'dist', 'install.k8s.yaml'), 'utf8');
    await admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    // The git URL, through the documented ConfigMap (created before the install, as the README says).
    await kubectl(['create', 'namespace', 'virtops-system']);
    const cm = await kubectl(['-n', 'virtops-system', 'create', 'configmap', 'virtops-config', `--from-literal=repo=git://${gateway}:${port}/vms.git`]);
    expect(cm.exitCode, cm.stderr).toBe(0);
  }, IMAGE_BUILD_MS);

  afterAll(async () => {
    if (admin) {
      for (const v of await listJson(admin, 'kubevirt.io/v1', 'VirtualMachine', NS).catch(() => [])) await admin.delete(v).catch(() => undefined);
      await waitFor('launcher Pods gone', async () => (await pods(NS, 'kubevirt.io=virt-launcher')).length === 0, 120_000).catch(() => undefined);
      await kubectl(['delete', '--wait=true', '--timeout=90s', '-f', '-'], manifest.replace(SHIPPED_IMAGE, env.launcherImage)).catch(() => undefined);
    }
    gitDaemon?.kill('SIGTERM');
    if (dnat) await execa('iptables', [dnat[0]!, dnat[1]!, '-D', ...dnat.slice(2)], { reject: false });
    await new Promise((r) => (apiRelay ? apiRelay.server.close(r) : r(undefined)));
    await env?.stop();
    await git?.cleanup();
    if (madeDir) rmSync(madeDir, { recursive: true, force: true });
  }, 300_000);

  it('kubectl apply brings up the controller Deployment and the agent DaemonSet as real Pods on the kubelet node', async () => {
    expect(manifest.match(SHIPPED_IMAGE)?.length).toBe(2);
    expect(manifest).toContain('--launcher-libvirt-daemon');
    const r = await kubectl(['apply', '-f', '-'], manifest.replace(SHIPPED_IMAGE, env.launcherImage));
    expect(r.exitCode, r.stderr).toBe(0);
    for (const name of ['virtops-controller', 'virtops-agent']) {
      const pod = await waitFor(`${name} Running and ready`, async () => {
        const [p] = await pods('virtops-system', `app.kubernetes.io/name=${name}`);
        return p?.status?.phase === 'Running' && p.status.containerStatuses?.every((c) => c.ready) ? p : undefined;
      }, 240_000, 1000);
      expect(pod.spec?.nodeName).toBe(env.node.name);
      expect(pod.status?.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\//);
    }
    // The agent, beside the kubelet, labels its Node for VMs.
    await waitFor('the node labelled schedulable', async () => ((await env.core.readNode({ name: env.node.name })).metadata?.labels?.['kubevirt.io/schedulable'] === 'true' ? true : undefined), 60_000);
  }, 300_000);

  it('a git push → the VM Running and Ready, its launcher Pod Running on the node', async () => {
    const vm: VirtualMachine = testGuestVm({ image: `${env.podRegistry}/virtops/test-guest:latest`, name: VM });
    vm.metadata.namespace = NS;
    // The template as dist/ ships it (libvirt external): the installed controller's
    // --launcher-libvirt-daemon pod makes the Pod run its own libvirt daemon.
    const template = renderLauncherPod(vm, { launcherImage: env.launcherImage, emulation: 'tcg' });
    expect(launcherFlagValue(template.spec.containers[0]!.args!, 'libvirtDaemon')).toBeUndefined();
    template.spec.containers[0]!.args!.push('--insecure-registry', env.podRegistry);
    await git.commitDist({ 'crds.k8s.yaml': crdDocuments(), [`${VM}.k8s.yaml`]: [vm, template].map((d) => YAML.stringify(d)).join('---\n') }, 'a VM');

    await waitFor('VM Running and Ready', async () => {
      const v = await getVm(admin, NS, VM);
      return v?.status?.printableStatus === 'Running' && v.status.ready === true ? true : undefined;
    }, 600_000, 1000);
    const [launcher] = await pods(NS, 'kubevirt.io=virt-launcher');
    expect(launcher?.status?.phase).toBe('Running');
    expect(launcher?.spec?.nodeName).toBe(env.node.name);
    expect(existsSync(join(DEFAULT_NODE_SOCKET_DIR, launcher!.metadata!.uid!, 'launcher-sock'))).toBe(true);
    expect(launcherFlagValue(launcher!.spec!.containers.find((c) => c.name === 'compute')!.args!, 'libvirtDaemon')).toBe('pod');
    expect(launcher!.spec!.volumes?.find((v) => v.name === 'node-sockets')?.hostPath?.path).toBe(DEFAULT_NODE_SOCKET_DIR);

    await git.commitDist({ 'crds.k8s.yaml': crdDocuments() }, 'the VM leaves');
    await waitFor('the VM and its launcher Pod gone', async () => (!(await getVm(admin, NS, VM)) && (await pods(NS, 'kubevirt.io=virt-launcher')).length === 0 ? true : undefined), 240_000, 1000);
  }, 900_000);
});
