/**
 * The setup the kubelet tests share (test/integration/cluster/kubelet-*.test.ts): the
 * virtops image (npm run image, built from a snapshot of HEAD, cached), a control plane of
 * the test file's own and a real kubelet + containerd node (one testenv per file: the node
 * uses fixed host paths), the image and the test guest's images in the node's registry, and
 * a relay that lets Pods reach that registry. Plus /proc helpers the tests check the host
 * with. Torn down by `KubeletEnv.stop()`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { NODE_SYSCTLS, readSysctl } from '../../reconciler/cluster/testenv/host-state.js';
import {
  defaultNodeName,
  loadKubeConfig,
  startControlPlane,
  startNode,
  stopControlPlane,
  type ControlPlane,
  type KubeletNode,
} from '../../reconciler/cluster/testenv/index.js';
import { ensureTestGuest } from './test-guest.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** beforeAll's budget: a first image build takes minutes (cached afterwards). */
export const IMAGE_BUILD_MS = 20 * 60_000;

/** Builds (or takes from the cache) the virtops image from a clone of HEAD, as test/integration/image does. */
export async function virtopsImage(work: string): Promise<{ layout: string; tag: string }> {
  const src = join(work, 'src');
  const head = (await execa('git', ['-C', REPO, 'rev-parse', 'HEAD'])).stdout.trim();
  await execa('git', ['clone', '--quiet', '--shared', '--no-checkout', REPO, src]);
  await execa('git', ['-C', src, 'checkout', '--quiet', '--detach', head]);
  await execa('cp', ['-al', join(REPO, 'node_modules'), join(src, 'node_modules')]);
  const r = await execa('bash', [join(src, 'scripts', 'image', 'build.sh'), '--json'], { cwd: src, reject: false });
  if (r.exitCode !== 0) throw new Error(`npm run image failed (${r.exitCode}):\n${r.stderr}`);
  const json = JSON.parse(r.stdout.trim().split('\n').at(-2)!) as { layout: string; tag: string };
  rmSync(src, { recursive: true, force: true });
  return json;
}

/**
 * A TCP relay from every address of this host to the node's registry (which listens on
 * loopback only): Pods reach it through the CNI bridge's gateway, so the launcher inside the
 * Pod pulls (kernelBoot) from the same registry as containerd.
 */
export async function relay(to: string): Promise<{ server: Server; port: number }> {
  const [host, port] = to.split(':');
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const out = connect(Number(port), host);
    sockets.add(inbound).add(out);
    inbound.pipe(out).pipe(inbound);
    const drop = () => { inbound.destroy(); out.destroy(); sockets.delete(inbound); sockets.delete(out); };
    inbound.on('error', drop).on('close', drop);
    out.on('error', drop).on('close', drop);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Host pids whose command line (NULs as spaces) and pid pass `test`. */
export function pidsWhere(test: (cmdline: string, pid: number) => boolean): number[] {
  return readdirSync('/proc').map(Number).filter((pid) => {
    if (!Number.isInteger(pid) || pid === process.pid) return false;
    try {
      return test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '), pid);
    } catch {
      return false;
    }
  });
}

/** The cgroup (v1) path of `pid` in `controller`'s hierarchy. */
export const cgroupOf = (pid: number, controller: string): string | undefined =>
  readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[1]?.split(',').includes(controller))?.[2];

/** Whether `pid` is in the Pod `podUid`'s memory cgroup. */
export const inPod = (pid: number, podUid: string): boolean => {
  try {
    return (cgroupOf(pid, 'memory') ?? '').includes(`pod${podUid}`);
  } catch {
    return false;
  }
};

/** The parent pid of `pid`. */
export const ppidOf = (pid: number): number => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

export interface KubeletEnv {
  dir: string;
  cp: ControlPlane;
  node: KubeletNode;
  kc: KubeConfig;
  core: CoreV1Api;
  /** The virtops image as Pods pull it (`<node registry>/virtops:<tag>`). */
  launcherImage: string;
  /** `<bridge gateway>:<port>`: the node's registry as Pods (and containerd) reach it, plain HTTP. */
  podRegistry: string;
  /** Sysctls the node changes, as they were before it. */
  sysctlsBefore: Record<string, string | undefined>;
  /** Stops the node and the control plane, closes the relay, removes the dir; idempotent. */
  stop(): Promise<void>;
}

/**
 * Everything a kubelet test needs before its first Pod: `progress` prints what it is doing.
 * The test guest's kernelBoot image is `<podRegistry>/virtops/test-guest:latest`, its disk
 * image `<podRegistry>/virtops/test-disk:latest`.
 */
export async function startKubeletEnv(opts: { prefix: string; progress: (l: string) => void; serviceAccountAdmission?: boolean }): Promise<KubeletEnv> {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix));
  const sysctlsBefore = Object.fromEntries(NODE_SYSCTLS.map((s) => [s, readSysctl(s)]));
  let cp: ControlPlane | undefined;
  let node: KubeletNode | undefined;
  let registryRelay: Awaited<ReturnType<typeof relay>> | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await node?.stop().catch((e: unknown) => opts.progress(`node stop: ${String(e)}`));
    await stopControlPlane(dir).catch(() => {});
    await new Promise((r) => (registryRelay ? registryRelay.server.close(r) : r(undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const name = await defaultNodeName();
    const [image, guest] = await Promise.all([virtopsImage(dir), ensureTestGuest()]);
    opts.progress(`virtops image ${image.tag}`);
    cp = await startControlPlane({ dir, users: [{ name: `system:node:${name}`, groups: ['system:nodes'] }], ...(opts.serviceAccountAdmission ? { serviceAccountAdmission: true } : {}) });
    node = await startNode({ controlPlane: cp, onProgress: opts.progress });
    const kc = loadKubeConfig(cp.kubeconfigPath);
    const launcherImage = `${node.registryHost}/virtops:${image.tag}`;
    await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, `docker://${launcherImage}`]);
    await node.pushImage(guest.ociKernelBoot, 'virtops/test-guest');
    await node.pushImage(guest.ociDisk, 'virtops/test-disk');
    registryRelay = await relay(node.registryHost);
    const podRegistry = `${node.subnet.replace(/\.0\/\d+$/, '.1')}:${registryRelay.port}`;
    node.trustRegistry(podRegistry);
    return { dir, cp, node, kc, core: kc.makeApiClient(CoreV1Api), launcherImage, podRegistry, sysctlsBefore, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
