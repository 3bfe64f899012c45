/**
 * On a real kubelet + containerd node (one testenv for the file), with the agent beside it
 * and the controller applying git, launcher Pods under their own libvirt daemon:
 *
 * - `virtops console VM --kubeconfig F` reaches the guest's serial console through the API
 *   server's `pods/exec` on the compute container (cli/pod-console.ts): the test guest's
 *   markers show, a typed line reaches the guest (its tty echoes it back), and a user
 *   without RBAC for `pods/exec` is refused by the API server.
 * - The Debian guest (issue 11 part 2, cluster mode) is reachable at its launcher Pod's IP on
 *   the ports its pod interface declares: curl to the web server cloud-init started, ssh with
 *   the key cloud-init installed; an undeclared port (where the guest also serves) is closed.
 *
 * Both VMs go in one push, so the Debian boot (~2 min under TCG) overlaps the console checks.
 */
import { join } from 'node:path';
import { NOT_ROOT, skipReason } from '../../helpers/skip.js';
import { execa } from 'execa';
import { pino } from 'pino';
import YAML from 'yaml';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { CLI_BIN, runAgent, runController, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { debianVm, ensureDebianGuest, makeSshKeyPair, retryUntilZero, SSH_TEST_OPTIONS, type SshKeyPair } from '../../helpers/debian-guest.js';
import { IMAGE_BUILD_MS, startKubeletEnv, type KubeletEnv } from '../../helpers/kubelet.js';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { waitFor } from '../../helpers/wait.js';
import { gitFixture, testGuestVm, type GitFixture } from '../standalone/fixture.js';
import { crdDocuments, getVm, identities, listJson, type Env, type Identities } from './harness.js';
import { clusterTestenv } from './testenv-fixture.js';

const testenv = await clusterTestenv();
const skip = skipReason(`${import.meta.url.split('/').pop()}`, { 'no control plane (Go and the kube binaries are missing)': !testenv, [NOT_ROOT]: process.getuid?.() !== 0 });
const NS = 'virtops-kc';
const CON = 'kc';
const DEB = 'kcdeb';
const PAGE = 'virtops-pod-ip-page';
const progress = (l: string) => process.stderr.write(`[kubelet-console] ${l}\n`);
const log = pino({ level: process.env['VIRTOPS_TEST_LOG'] ?? 'warn' });

function userData(publicKey: string): string {
  return [
    '#cloud-config',
    'user: {name: virtops, shell: /bin/bash}',
    `ssh_authorized_keys: [${JSON.stringify(publicKey)}]`,
    'write_files:',
    '  - path: /srv/www/index.html',
    `    content: ${PAGE}`,
    'runcmd:',
    // A declared port and an undeclared one, both served by the guest.
    '  - [sh, -c, "cd /srv/www && setsid python3 -m http.server 8080 </dev/null >/dev/null 2>&1 &"]',
    '  - [sh, -c, "cd /srv/www && setsid python3 -m http.server 9090 </dev/null >/dev/null 2>&1 &"]',
    '',
  ].join('\n');
}

function debianNodeVm(image: string, publicKey: string): VirtualMachine {
  return debianVm({
    name: DEB,
    namespace: NS,
    image,
    imagePullPolicy: 'IfNotPresent',
    labels: { app: DEB },
    cloudInit: { noCloud: userData(publicKey) },
    ports: [{ name: 'ssh', port: 22 }, { name: 'http', port: 8080 }],
    terminationGracePeriodSeconds: 30,
  });
}

describe.skipIf(skip !== undefined)('console and the guest at its Pod IP, on a real kubelet node', () => {
  let env: KubeletEnv;
  let ids: Identities;
  let git: GitFixture;
  let key: SshKeyPair;
  let controller: ControllerHandle | undefined;
  let agent: AgentHandle | undefined;

  const launcherPods = () => listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher');
  const vmis = () => listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
  const cli = (args: string[], kubeconfig: string) =>
    execa(process.execPath, [CLI_BIN, ...args, '--kubeconfig', kubeconfig], { reject: false, env: { VIRTOPS_STATE_DIR: '', VIRTOPS_SERVER: '' }, timeout: 60_000 });
  const running = async (name: string) => {
    await waitFor(`${name}: VM Running`, async () => ((await getVm(ids.admin, NS, name))?.status?.printableStatus === 'Running' ? true : undefined), 900_000, 1000);
    const vmi = await waitFor(`${name}: VMI Running`, async () => (await vmis()).find((v) => v.metadata.name === name && v.status?.phase === 'Running'), 60_000);
    return waitFor(`${name}: launcher Pod Running with an IP`, async () => (await launcherPods()).find((p) => p.metadata?.labels?.['kubevirt.io/created-by'] === vmi.metadata.uid && p.status?.phase === 'Running' && p.status.podIP), 60_000);
  };

  beforeAll(async () => {
    const [e, debian, k] = await Promise.all([startKubeletEnv({ prefix: 'virtops-kc-', progress }), ensureDebianGuest(), makeSshKeyPair()]);
    env = e;
    key = k;
    const socketDir = join(env.dir, 'launchers');
    await env.node.pushImage(debian.ociDisk, 'virtops/debian-12');
    ids = await identities(env.cp as unknown as Env, NS);
    git = await gitFixture();
    agent = await runAgent(
      { node: env.node.name, processRuntime: false, stateDir: join(env.dir, 'agent'), emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [], intervalMs: 5000, launcherSocketDir: socketDir },
      log.child({ c: 'agent' }),
      { client: ids.agent.client },
    );
    controller = await runController(
      { repo: git.bare, branch: 'main', distPath: 'dist', namespace: NS, leaderElect: false, intervalMs: 2000, freshness: false, identity: 'test', leaseDurationMs: 15_000 },
      log.child({ c: 'controller' }),
      { client: ids.controller.client },
    );
    const con = testGuestVm({ image: `${env.podRegistry}/virtops/test-guest:latest`, name: CON });
    con.metadata.namespace = NS;
    const deb = debianNodeVm(`${env.podRegistry}/virtops/debian-12:latest`, key.publicKey);
    const docs: string[] = [];
    for (const vm of [con, deb]) {
      const template = renderLauncherPod(vm, { launcherImage: env.launcherImage, libvirtDaemon: 'pod', nodeSocketDir: socketDir, emulation: 'tcg' });
      template.spec.containers[0]!.args!.push('--insecure-registry', env.podRegistry);
      docs.push(YAML.stringify(vm), YAML.stringify(template));
    }
    await git.commitDist({ 'crds.k8s.yaml': crdDocuments(), 'vms.k8s.yaml': docs.join('---\n') }, 'a console VM and a Debian VM on the kubelet node');
  }, IMAGE_BUILD_MS);

  afterAll(async () => {
    // The VMs leave git, so the controller prunes them (deleting them under a running
    // controller would have it re-create them from git); then whatever is left, by hand.
    if (ids && git && controller) {
      await git.commitDist({ 'crds.k8s.yaml': crdDocuments() }, 'the VMs leave').catch(() => undefined);
      await waitFor('the VMs pruned and their launcher Pods gone', async () => ((await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachine', NS)).length === 0 && (await launcherPods()).length === 0 ? true : undefined), 180_000).catch(() => undefined);
    }
    await controller?.stop();
    if (ids) {
      for (const v of await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachine', NS).catch(() => [])) await ids.admin.delete(v).catch(() => undefined);
      await waitFor('launcher Pods gone', async () => (await launcherPods()).length === 0, 120_000).catch(() => undefined);
    }
    await agent?.stop();
    await env?.stop();
    await git?.cleanup();
    await key?.remove();
  }, 420_000);

  it('virtops console through pods/exec: the serial markers show, a typed line reaches the guest; no pods/exec RBAC → refused', async () => {
    const pod = await running(CON);
    // The launcher Pod's container runs under containerd (the kubelet's), so the CLI takes pods/exec.
    expect(pod.status?.containerStatuses?.find((c) => c.name === 'compute')?.containerID).toMatch(/^containerd:\/\//);
    const kubeconfig = env.cp.kubeconfigPath;
    const con = execa(process.execPath, [CLI_BIN, 'console', CON, '-n', NS, '--kubeconfig', kubeconfig], { reject: false, stdin: 'pipe', env: { VIRTOPS_STATE_DIR: '', VIRTOPS_SERVER: '' } });
    let out = '';
    let err = '';
    con.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    con.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    try {
      await waitFor('console attached', async () => (/Connected to .* in Pod virt-launcher-/.test(err) ? true : undefined), 60_000, 100).catch((e: Error) => {
        throw new Error(`${e.message}; stderr: ${err}`);
      });
      // The markers: the relay replays the serial log's tail, then the live socket follows.
      await waitFor('the guest ready marker on the console', async () => (out.includes(GUEST_MARKERS.ready) ? true : undefined), 300_000, 200).catch((e: Error) => {
        throw new Error(`${e.message}; stdout: ${out.slice(-2000)}; stderr: ${err}`);
      });
      expect(out).toContain(GUEST_MARKERS.booted);
      // A typed line reaches the guest: its tty echoes it back (nothing else does).
      const line = `virtops-typed-${Date.now()}`;
      con.stdin!.write(`${line}\n`);
      await waitFor('the typed line echoed back by the guest tty', async () => (out.includes(line) ? true : undefined), 60_000, 200).catch((e: Error) => {
        throw new Error(`${e.message}; stdout: ${out.slice(-2000)}; stderr: ${err}`);
      });
    } finally {
      con.stdin?.end();
      con.kill('SIGTERM');
      await con;
    }
    // A user whose RBAC has no pods/exec (the agent's service account) is refused by the API server.
    const denied = await cli(['console', CON, '-n', NS], ids.agent.kubeconfigPath);
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toMatch(/forbidden.*pods\/exec|pods\/exec.*forbidden|RBAC "create" on pods\/exec/is);
  }, 1_200_000);

  it('the Debian guest at its Pod IP: curl and ssh on the declared ports, an undeclared port closed', async () => {
    const pod = await running(DEB);
    const ip = pod.status!.podIP!;
    progress(`Debian launcher Pod ${pod.metadata?.name} at ${ip}`);
    // TCG under a loaded machine: the guest's cloud-init final stage can take 10+ minutes.
    const curl = await retryUntilZero(() => execa('curl', ['-sS', '--max-time', '5', `http://${ip}:8080/`], { reject: false }), 180, 5000);
    expect(curl.exitCode, curl.stderr).toBe(0);
    expect(curl.stdout).toContain(PAGE);
    const ssh = await retryUntilZero(() => execa('ssh', [...SSH_TEST_OPTIONS, '-o', 'ConnectTimeout=10', '-i', key.privateKey, `virtops@${ip}`, 'hostname'], { reject: false }), 20, 5000);
    expect(ssh.exitCode, ssh.stderr).toBe(0);
    expect(ssh.stdout.trim()).toBe(DEB);
    // The guest serves 9090 too, but it is not declared: nothing listens for it at the Pod IP.
    const closed = await execa('curl', ['-sS', '--max-time', '5', `http://${ip}:9090/`], { reject: false });
    expect(closed.exitCode).not.toBe(0);
    expect(closed.stderr).toMatch(/refused|Failed to connect/i);
  }, 1_800_000);
});
