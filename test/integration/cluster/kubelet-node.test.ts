import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { NOT_ROOT, skipReason } from '../../helpers/skip.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_DIRS, NODE_SYSCTLS, mountsUnder, parseIptablesChains, readSysctl } from '../../../reconciler/cluster/testenv/host-state.js';
import {
  defaultNodeName,
  loadKubeConfig,
  runningNodeProcesses,
  startControlPlane,
  startNode,
  stopControlPlane,
  stopNode,
  type ControlPlane,
  type KubeletNode,
} from '../../../reconciler/cluster/testenv/index.js';
import { waitFor } from '../../helpers/wait.js';
import { clusterTestenv } from './testenv-fixture.js';

/**
 * A real node: kubelet + containerd + runc + CNI, started by the testenv. It gets its own
 * control plane (the shared one's process-runtime tests must not see a second kind of node
 * that the scheduler could pick) and is torn down by the last test, which checks that the
 * host is as before.
 */
const testenv = await clusterTestenv();
const skip = skipReason(`${import.meta.url.split('/').pop()}`, { 'no control plane (Go and the kube binaries are missing)': !testenv, [NOT_ROOT]: process.getuid?.() !== 0 });
/** What the node may change on the host, as seen from outside. */
function hostSnapshot(dir: string) {
  const chains = (cmd: string) =>
    parseIptablesChains(spawnSync(cmd, [], { encoding: 'utf8' }).stdout ?? '')
      .filter((c) => /\/(KUBE-|CNI-)/.test(c))
      .sort();
  return {
    sysctls: Object.fromEntries(NODE_SYSCTLS.map((s) => [s, readSysctl(s)])),
    chains: { v4: chains('iptables-save'), v6: chains('ip6tables-save') },
    links: spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
      .filter((n): n is string => n !== undefined && (n.startsWith('veth') || n === 'virtops-cni0'))
      .sort(),
    mounts: mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), dir),
    hostDirs: HOST_DIRS.filter((d) => existsSync(d)),
    netns: existsSync('/var/run/netns') ? readdirSync('/var/run/netns').sort() : [],
  };
}

/** Processes whose command line mentions `dir` (kubelet, containerd, shims, registry). */
function processesMentioning(dir: string): number[] {
  return readdirSync('/proc')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${dir}/`);
      } catch {
        return false;
      }
    });
}

describe.skipIf(skip !== undefined)('testenv: a real kubelet + containerd node', () => {
  let name: string;
  let dir: string;
  let cp: ControlPlane;
  let node: KubeletNode;
  let core: CoreV1Api;
  let before: ReturnType<typeof hostSnapshot>;

  beforeAll(async () => {
    name = await defaultNodeName();
    dir = mkdtempSync(join(tmpdir(), 'virtops-kubelet-'));
    before = hostSnapshot(dir);
    cp = await startControlPlane({ dir, users: [{ name: `system:node:${name}`, groups: ['system:nodes'] }] });
    const started = Date.now();
    node = await startNode({ controlPlane: cp, onProgress: (l) => process.stderr.write(`[kubelet-node] ${l}\n`) });
    process.stderr.write(`[kubelet-node] node Ready ${Date.now() - started} ms after startNode\n`);
    core = loadKubeConfig(cp.kubeconfigPath).makeApiClient(CoreV1Api);
  });

  afterAll(async () => {
    await node?.stop().catch(() => {});
    await stopControlPlane(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers a Ready Node whose runtime is containerd, with the control plane version', async () => {
    const n = await core.readNode({ name });
    expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/2\.\d+\.\d+/);
    expect(n.status?.nodeInfo?.kubeletVersion).toBe(cp.kubernetesVersion);
    expect(n.status?.addresses).toContainEqual({ type: 'Hostname', address: name });
  });

  it('runs a Pod with an init container from the local registry: init exits 0, logs readable through pods/log, a Pod IP', async () => {
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'init-and-main' },
        spec: {
          restartPolicy: 'Never',
          volumes: [{ name: 'work', emptyDir: {} }],
          initContainers: [{ name: 'init', image: node.images.busybox, command: ['/bin/sh', '-c', 'echo from-init > /work/marker'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
          containers: [
            { name: 'main', image: node.images.busybox, command: ['/bin/sh', '-c', 'cat /work/marker; echo main-running; exec sleep 3600'], volumeMounts: [{ name: 'work', mountPath: '/work' }] },
          ],
        },
      },
    });
    const pod = await waitFor('the Pod to run', async () => {
      const p = await core.readNamespacedPod({ name: 'init-and-main', namespace: 'default' });
      return p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.ready ? p : undefined;
    }, 90_000);
    const init = pod.status?.initContainerStatuses?.[0];
    expect(init?.state?.terminated?.exitCode).toBe(0);
    expect(init?.state?.terminated?.reason).toBe('Completed');
    expect(pod.status?.podIP).toMatch(/^10\.89\.0\.\d+$/);
    expect(pod.spec?.nodeName).toBe(name);
    const log = await waitFor('the main container log', async () => {
      const text = await core.readNamespacedPodLog({ name: 'init-and-main', namespace: 'default', container: 'main' });
      return text.includes('main-running') ? text : undefined;
    });
    expect(log).toContain('from-init');
    expect(await core.readNamespacedPodLog({ name: 'init-and-main', namespace: 'default', container: 'init' })).toBe('');
  });

  it('reports a missing image as ErrImagePull / ImagePullBackOff', async () => {
    await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'no-such-image' }, spec: { containers: [{ name: 'c', image: `${node.registryHost}/virtops/does-not-exist:latest` }] } },
    });
    const reason = await waitFor('a pull error', async () => {
      const p: V1Pod = await core.readNamespacedPod({ name: 'no-such-image', namespace: 'default' });
      const r = p.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      return r === 'ErrImagePull' || r === 'ImagePullBackOff' ? r : undefined;
    });
    expect(['ErrImagePull', 'ImagePullBackOff']).toContain(reason);
  });

  it('down leaves no process, container, mount, link, netns or iptables chain, and restores the sysctls', async () => {
    // Pods are still running: stop must remove them itself.
    expect(processesMentioning(dir).length).toBeGreaterThan(0);
    await node.stop();
    expect(runningNodeProcesses(node.dir)).toEqual([]);
    expect(processesMentioning(node.dir)).toEqual([]);
    const hierarchies = readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, node.cgroupRoot));
    expect(hierarchies.filter((p) => existsSync(p))).toEqual([]);
    expect(hostSnapshot(dir)).toEqual(before);
  });

  it('starts again in the same dir, and down after a crash (kubelet, containerd and registry SIGKILLed) still restores the host', async () => {
    node = await startNode({ controlPlane: cp });
    await core.deleteNamespacedPod({ name: 'init-and-main', namespace: 'default', gracePeriodSeconds: 0 }).catch(() => {});
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'with-host-port' },
        spec: { containers: [{ name: 'c', image: node.images.busybox, command: ['sleep', '3600'], ports: [{ containerPort: 8080, hostPort: 18089 }] }] },
      },
    });
    await waitFor('the hostPort Pod to run', async () => {
      const p = await core.readNamespacedPod({ name: 'with-host-port', namespace: 'default' });
      return p.status?.phase === 'Running' ? p : undefined;
    });
    // The portmap plugin and the bridge's masquerading made chains of their own.
    expect(hostSnapshot(dir).chains.v4.length).toBeGreaterThan(before.chains.v4.length);
    for (const pid of Object.values(node.pids())) process.kill(pid, 'SIGKILL');
    await waitFor('the node processes to die', async () => (runningNodeProcesses(node.dir).length === 0 ? true : undefined), 10_000);
    // The containers outlive the crash, as they would on a real node.
    expect(processesMentioning(node.dir).length).toBeGreaterThan(0);
    await stopNode(node.dir);
    expect(processesMentioning(node.dir)).toEqual([]);
    expect(hostSnapshot(dir)).toEqual(before);
  });
});
