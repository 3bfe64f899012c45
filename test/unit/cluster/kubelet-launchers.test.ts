/**
 * The agent beside a real kubelet (reconciler/cluster/kubelet-launchers.ts): the pure checks
 * of the launcher socket dir and peer, the flag, what synth writes into a `pod`-mode launcher
 * Pod for it, and the socket dir handed over, checked and swept on a real filesystem (a temp
 * dir; the chown to the Pod's user needs root, skipped otherwise).
 */
import { mkdtemp, mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeletLaunchers, MAX_SOCKET_DIR_BYTES, inPodCgroup, podIdentity, socketDirProblem } from '../../../reconciler/cluster/kubelet-launchers.js';
import { validateAgentFlags } from '../../../reconciler/cluster/run.js';
import { DEFAULT_NODE_SOCKET_DIR, NODE_SOCKET_ENV, NODE_SOCKET_MOUNT, renderLauncherPod } from '../../../synth/launcher-pod.js';
import { REAPER_SCRIPT, prctlSyscall } from '../../../launcher/monitor/libvirt-daemon.js';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import type { PodManifest } from '../../../synth/pod-types.js';

const POD_UID = '0b9f6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const log = pino({ level: 'silent' });
const root = process.getuid?.() === 0;

const vm: VirtualMachine = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'web', namespace: 'default' },
  spec: { runStrategy: 'Always', template: { spec: { domain: { memory: { guest: '128Mi' }, devices: {} } } } },
};

describe('socketDirProblem (pure)', () => {
  const dir = { isDirectory: true, isSymbolicLink: false, uid: 107, mode: 0o40700 };
  const sock = { isSocket: true, uid: 107 };
  it.each<[string, Parameters<typeof socketDirProblem>[0], Parameters<typeof socketDirProblem>[1], RegExp | undefined]>([
    ['fit to use', dir, sock, undefined],
    ['no dir yet', undefined, undefined, /does not exist yet/],
    ['a symlink', { ...dir, isSymbolicLink: true }, sock, /not a plain directory/],
    ["owned by another uid", { ...dir, uid: 0 }, sock, /owned by uid 0, not the Pod's 107/],
    ['group-readable', { ...dir, mode: 0o40750 }, sock, /mode 750, not 700/],
    ['no socket yet', dir, undefined, /not published its socket yet/],
    ['not a socket', dir, { isSocket: false, uid: 107 }, /not a socket/],
    ["socket of another uid", dir, { isSocket: true, uid: 1000 }, /socket is owned by uid 1000/],
  ])('%s', (_n, d, s, want) => {
    const p = socketDirProblem(d, s, 107);
    if (want) expect(p).toMatch(want);
    else expect(p).toBeUndefined();
  });
});

describe('inPodCgroup and podIdentity (pure)', () => {
  it('finds the Pod in cgroupfs and systemd cgroup paths, and nothing else', () => {
    expect(inPodCgroup(`12:memory:/kubepods/besteffort/pod${POD_UID}/abc\n`, POD_UID)).toBe(true);
    expect(inPodCgroup(`0::/kubepods.slice/kubepods-pod${POD_UID.replace(/-/g, '_')}.slice/cri-containerd-1.scope\n`, POD_UID)).toBe(true);
    expect(inPodCgroup('12:memory:/user.slice\n', POD_UID)).toBe(false);
    expect(inPodCgroup(`12:memory:/kubepods/pod${POD_UID.replace('0b9f', '1b9f')}\n`, POD_UID)).toBe(false);
  });

  it("the compute container's user over the Pod's, 107 by default", () => {
    expect(podIdentity({ spec: { containers: [] } })).toEqual({ uid: 107, gid: 107 });
    expect(podIdentity({ spec: { securityContext: { runAsUser: 1000, runAsGroup: 1001 }, containers: [] } })).toEqual({ uid: 1000, gid: 1001 });
    expect(podIdentity({ spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'compute', securityContext: { runAsUser: 2000 } }] } })).toEqual({ uid: 2000, gid: 2000 });
  });
});

describe('--launcher-socket-dir', () => {
  const base = { node: 'n1' };
  it('defaults to synth\'s default and keeps sockets within 107 bytes', () => {
    const r = validateAgentFlags(base);
    expect(r.ok && r.config.launcherSocketDir).toBe(DEFAULT_NODE_SOCKET_DIR);
    expect(Buffer.byteLength(`${'/x'.repeat(MAX_SOCKET_DIR_BYTES / 2)}/${POD_UID}/launcher-sock`)).toBe(107);
  });
  it.each([
    ['relative', { launcherSocketDir: 'run/sockets' }, /--launcher-socket-dir "run\/sockets" is not an absolute path/],
    ['too long', { launcherSocketDir: `/${'d'.repeat(MAX_SOCKET_DIR_BYTES)}` }, new RegExp(`over ${MAX_SOCKET_DIR_BYTES} bytes.*107-byte`)],
    ['with --process-runtime', { launcherSocketDir: '/var/lib/x', processRuntime: true }, /--launcher-socket-dir is for the agent beside a kubelet/],
  ])('refuses a %s one, naming the flag', (_n, raw, want) => {
    const r = validateAgentFlags({ ...base, ...raw });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.join('\n')).toMatch(want);
  });
});

describe("synth's launcher Pod with libvirtDaemon 'pod'", () => {
  it('mounts <nodeSocketDir>/<pod uid> (hostPath, subPathExpr) in compute and tells the monitor; external mode has none of it', () => {
    const pod = renderLauncherPod(vm, { libvirtDaemon: 'pod', nodeSocketDir: '/srv/launchers' });
    expect(pod.spec.volumes).toContainEqual({ name: 'node-sockets', hostPath: { path: '/srv/launchers', type: 'DirectoryOrCreate' } });
    const compute = pod.spec.containers.find((c) => c.name === 'compute')!;
    expect(compute.volumeMounts).toContainEqual({ name: 'node-sockets', mountPath: NODE_SOCKET_MOUNT, subPathExpr: '$(POD_UID)' });
    expect(compute.env).toContainEqual({ name: 'POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } });
    expect(compute.env).toContainEqual({ name: NODE_SOCKET_ENV, value: NODE_SOCKET_MOUNT });
    expect(renderLauncherPod(vm, { libvirtDaemon: 'pod' }).spec.volumes).toContainEqual({ name: 'node-sockets', hostPath: { path: DEFAULT_NODE_SOCKET_DIR, type: 'DirectoryOrCreate' } });

    const external = renderLauncherPod(vm);
    expect(JSON.stringify(external)).not.toMatch(/node-sockets|POD_UID|VIRTOPS_NODE_SOCKET_DIR/);
  });
});

describe('the reaper the monitor runs the pod libvirt daemon under', () => {
  it('knows prctl on x86_64 and arm64 only, and sets PR_SET_CHILD_SUBREAPER (36)', () => {
    expect([prctlSyscall('x64'), prctlSyscall('arm64'), prctlSyscall('ia32')]).toEqual([157, 167, undefined]);
    expect(REAPER_SCRIPT).toContain('syscall($nr, 36, 1');
  });
});

describe('KubeletLaunchers on a real filesystem', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const podOf = (uid: string): V1Pod => ({ metadata: { name: 'virt-launcher-web-abcde', namespace: 'default', uid }, spec: { securityContext: { runAsUser: 107, runAsGroup: 107 }, containers: [{ name: 'compute' }] } });
  const vmi: VirtualMachineInstance = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'web', namespace: 'default', uid: 'vmi-1' }, spec: { domain: { devices: {} } } };

  it.skipIf(!root)('hands <dir>/<pod uid> to the Pod user (0700), refuses a listener outside the Pod, sweeps dirs of Pods that are gone', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vo-kl-'));
    const socketDir = join(dir, 'launchers');
    const k = new KubeletLaunchers(socketDir, log);
    const pod = podOf(POD_UID);
    const { record } = k.plan(vmi, pod as unknown as PodManifest, { podName: 'x', now: 0 });
    expect(record.socketPath).toBe(join(socketDir, POD_UID, 'launcher-sock'));

    expect(await k.verify(record, pod)).toMatch(/does not exist yet/);
    await k.prepare(pod);
    const st = await stat(join(socketDir, POD_UID));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([107, 107, 0o700]);
    expect((await stat(socketDir)).mode & 0o777).toBe(0o700);
    expect(await k.verify(record, pod)).toMatch(/not published its socket yet/);

    // A listener that is not in the Pod's cgroup (this test process), on a socket of the right owner.
    const server = createServer();
    await new Promise<void>((r) => server.listen(record.socketPath, r));
    try {
      const { chown } = await import('node:fs/promises');
      await chown(record.socketPath, 107, 107);
      expect(await k.verify(record, pod)).toMatch(/is not in the Pod's cgroup/);
    } finally {
      await new Promise((r) => server.close(r));
    }

    // A symlink planted where a Pod's dir would be is refused, not followed.
    const other = '1b9f6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), join(socketDir, other));
    await expect(k.prepare(podOf(other))).rejects.toThrow(/not a plain directory/);

    await writeFile(join(socketDir, 'not-a-pod'), '');
    expect((await k.sweep(() => new Set([POD_UID]))).sort()).toEqual([other]);
    expect(await stat(join(socketDir, POD_UID)).then(() => true)).toBe(true);
    await k.removePod(POD_UID);
    await expect(stat(join(socketDir, POD_UID))).rejects.toThrow();
    expect(await stat(join(socketDir, 'not-a-pod')).then(() => true)).toBe(true);
  });
});
