/**
 * The launcher Pod as synth writes it, run by a real kubelet + containerd node (issue 10,
 * part 3): the virtops image (npm run image, built from a snapshot of HEAD, cached) and the
 * test guest's images in the node's registry, the Pod's containers laid out as KubeVirt's
 * (seed 2.4), and the guest's QEMU started by the compute container's own libvirt daemon,
 * inside the Pod's cgroup. Its own control plane and node (like kubelet-node.test.ts), torn
 * down at the end with the host checked.
 *
 * Until the agent beside a real kubelet exists (part 4), this test plays its part: it hands
 * the VMI to the launcher over the launcher's socket, from inside the compute container's
 * pid and mount namespaces (nsenter), since the launcher admits only peers it can name.
 */
import { spawnSync } from 'node:child_process';
import { NOT_ROOT, skipReason } from '../../helpers/skip.js';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiextensionsV1Api, CoreV1Api, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import { instantiateLauncherPod, vmiForVm } from '../../../reconciler/cluster/instances.js';
import { HttpKubeClient } from '../../../reconciler/cluster/kube.js';
import { NODE_SYSCTLS, readSysctl } from '../../../reconciler/cluster/testenv/host-state.js';
import { runningNodeProcesses, type KubeletNode } from '../../../reconciler/cluster/testenv/index.js';
import { renderCrd, VMI_CRD } from '../../../synth/crds.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { parseQuantity } from '../../../synth/quantity.js';
import { cgroupOf, IMAGE_BUILD_MS, pidsWhere, ppidOf, startKubeletEnv, type KubeletEnv } from '../../helpers/kubelet.js';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { waitFor } from '../../helpers/wait.js';
import { testGuestVm } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';

const testenv = await clusterTestenv();
const skip = skipReason(`${import.meta.url.split('/').pop()}`, { 'no control plane (Go and the kube binaries are missing)': !testenv, [NOT_ROOT]: process.getuid?.() !== 0 });
const NS = 'default';
const VM = 'kl';
const progress = (l: string) => process.stderr.write(`[kubelet-launcher] ${l}\n`);

describe.skipIf(skip !== undefined)('launcher Pods under a real kubelet', () => {
  let env: KubeletEnv;
  let node: KubeletNode;
  let core: CoreV1Api;
  let admin: HttpKubeClient;
  let sysctlsBefore: Record<string, string | undefined>;
  let podRegistry: string;
  let launcherImage: string;
  let vmi: VirtualMachineInstance;
  let pod: V1Pod;

  beforeAll(async () => {
    env = await startKubeletEnv({ prefix: 'virtops-kl-', progress });
    ({ node, core, podRegistry, launcherImage, sysctlsBefore } = env);
    const kc = env.kc;

    // What virt-handler does for its node; the launcher Pod selects on it.
    const n = await core.readNode({ name: node.name });
    n.metadata!.labels = { ...(n.metadata!.labels ?? {}), 'kubevirt.io/schedulable': 'true' };
    await core.replaceNode({ name: node.name, body: n });
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    admin = new HttpKubeClient(kc);
    // Through the pass-through client: client-node's models would drop the schema's JSON-named fields.
    await admin.apply(renderCrd(VMI_CRD) as KubernetesObject);
    await waitFor('the VMI CRD to be served', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: 'virtualmachineinstances.kubevirt.io' });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }, IMAGE_BUILD_MS);

  afterAll(async () => {
    await env?.stop();
  }, 240_000);

  it('runs the launcher Pod as synth writes it: init containers exited 0, compute and volumecontainerdisk running', async () => {
    const vm = testGuestVm({ image: `${podRegistry}/virtops/test-guest:latest`, name: VM });
    vm.metadata.namespace = NS;
    const spec = vm.spec.template.spec;
    spec.domain.devices.disks = [...(spec.domain.devices.disks ?? []), { name: 'containerdisk', disk: { bus: 'virtio' } }];
    spec.volumes = [...(spec.volumes ?? []), { name: 'containerdisk', containerDisk: { image: `${podRegistry}/virtops/test-disk:latest`, imagePullPolicy: 'IfNotPresent' } }];
    // A memory limit, so the Pod's limit (guest + synth's overhead) is a real cgroup limit.
    spec.domain.resources = { ...(spec.domain.resources ?? {}), limits: { memory: '128Mi' } };

    // No VM object (and no controller) here: the VMI stands alone, owned by nothing.
    const body = vmiForVm({ ...vm, metadata: { ...vm.metadata, uid: 'not-created' } });
    delete body.metadata.ownerReferences;
    delete body.metadata.finalizers;
    vmi = (await admin.create(body as KubernetesObject)) as unknown as VirtualMachineInstance;
    expect(vmi.metadata.uid).toBeDefined();

    const template = renderLauncherPod(vm, { launcherImage, libvirtDaemon: 'pod', nodeSocketDir: join(env.dir, 'launchers') });
    const manifest = instantiateLauncherPod(template, vmi);
    // A host fact, as the process-runtime agent adds it: the registry Pods reach is plain HTTP.
    manifest.spec.containers[0]!.args!.push('--insecure-registry', podRegistry);
    await core.createNamespacedPod({ namespace: NS, body: manifest as never });

    pod = await waitFor('the launcher Pod to run', async () => {
      const p = await core.readNamespacedPod({ name: manifest.metadata.name!, namespace: NS });
      const waiting = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].find((s) => s.state?.waiting?.reason && s.state.waiting.reason !== 'PodInitializing' && s.state.waiting.reason !== 'ContainerCreating');
      if (waiting) throw new Error(`${waiting.name}: ${waiting.state!.waiting!.reason}: ${waiting.state!.waiting!.message ?? ''}`);
      if (p.status?.phase === 'Failed') throw new Error(`Pod failed: ${JSON.stringify(p.status)}`);
      return p.status?.phase === 'Running' && p.status.containerStatuses?.every((s) => s.ready) ? p : undefined;
    }, 180_000);

    expect(pod.spec?.nodeName).toBe(node.name);
    expect(pod.status?.initContainerStatuses?.map((s) => [s.name, s.state?.terminated?.exitCode, s.state?.terminated?.reason])).toEqual([
      ['container-disk-binary', 0, 'Completed'],
      ['volumecontainerdisk-init', 0, 'Completed'],
    ]);
    expect(pod.status?.containerStatuses?.map((s) => s.name).sort()).toEqual(['compute', 'volumecontainerdisk']);
    for (const s of pod.status?.containerStatuses ?? []) {
      expect(s.state?.running, s.name).toBeDefined();
      expect(s.containerID).toMatch(/^containerd:\/\//);
    }
    // The volume container copied its image's disk into the shared emptyDir.
    const data = join(node.dir, 'kubelet', 'pods', pod.metadata!.uid!, 'volumes', 'kubernetes.io~empty-dir', 'container-disks', 'disk_0');
    await waitFor('the containerDisk copy', async () => (existsSync(join(data, '.done')) ? true : undefined), 30_000);
    expect(readdirSync(data).filter((f) => !f.startsWith('.'))).toEqual(['disk.qcow2']);
  }, 240_000);

  it("boots the guest with QEMU under the compute container's own libvirt daemon, in the Pod's cgroup", async () => {
    expect(pod, 'the Pod of the first test').toBeDefined();
    const podUid = pod.metadata!.uid!;
    const inPod = (pid: number) => (cgroupOf(pid, 'memory') ?? '').includes(`pod${podUid}`);
    const [monitor] = pidsWhere((c, pid) => c.includes('launcher-monitor') && inPod(pid));
    expect(monitor, 'the launcher monitor process').toBeDefined();

    // Hand the VMI to the launcher (the agent's job, part 4) from inside the container.
    const script = `const b=process.argv[1];const r=require('http').request({socketPath:'/var/run/kubevirt/sockets/launcher-sock',method:'PUT',path:'/v1/vmi',headers:{'content-type':'application/json','content-length':Buffer.byteLength(b)}},(s)=>{let d='';s.on('data',(c)=>d+=c);s.on('end',()=>{console.log(s.statusCode+' '+d)})});r.on('error',(e)=>{console.log('error '+e.message)});r.end(b)`;
    const sync = await waitFor('the launcher to take the VMI', async () => {
      const r = await execa('nsenter', ['-t', String(monitor), '-m', '-p', '--', '/usr/local/bin/node', '-e', script, JSON.stringify(vmi)], { reject: false });
      const out = r.stdout.trim();
      if (/^error /.test(out) || out === '') return undefined;
      return out;
    }, 300_000);
    expect(sync, sync).toMatch(/^20[01] /);

    const serialLog = join(node.dir, 'kubelet', 'pods', podUid, 'volumes', 'kubernetes.io~empty-dir', 'public', 'logs', `${NS}_${VM}-serial0.log`);
    const text = await waitFor('the guest ready marker on the serial log', async () => {
      const t = existsSync(serialLog) ? readFileSync(serialLog, 'utf8') : '';
      return t.includes(GUEST_MARKERS.ready) ? t : undefined;
    }, 240_000);
    expect(text).toContain(GUEST_MARKERS.booted);

    const qemu = pidsWhere((c) => /qemu-system-x86_64/.test(c) && c.includes(`guest=${NS}_${VM}`));
    expect(qemu).toHaveLength(1);
    // Same memory cgroup as the compute container's main process: the Pod's limit bounds it.
    expect(cgroupOf(qemu[0]!, 'memory')).toBe(cgroupOf(monitor!, 'memory'));
    expect(cgroupOf(qemu[0]!, 'memory')).toContain(`pod${podUid}`);
    const compute = pod.spec!.containers.find((c) => c.name === 'compute')!;
    const limit = parseQuantity(String(compute.resources!.limits!['memory']));
    expect(limit).toBeGreaterThan(128 * 1024 * 1024);
    expect(Number(readFileSync(join('/sys/fs/cgroup/memory', cgroupOf(qemu[0]!, 'memory')!, 'memory.limit_in_bytes'), 'utf8'))).toBe(limit);
    // Not the host libvirtd's: the container's libvirtd started it and let go of it (libvirt
    // daemonizes QEMU), so its parent is the child subreaper the monitor runs the daemon
    // under (launcher/monitor/libvirt-daemon.ts), a child of the container's first process, the
    // launcher monitor; it reaps QEMU when the guest stops (else a zombie of PID 1).
    const reaper = ppidOf(qemu[0]!);
    expect(readFileSync(`/proc/${reaper}/cmdline`, 'utf8')).toMatch(/perl/);
    expect(ppidOf(reaper)).toBe(monitor);
    const libvirtd = pidsWhere((c, pid) => c.startsWith('libvirtd') && inPod(pid));
    expect(libvirtd).toHaveLength(1);
    expect(cgroupOf(libvirtd[0]!, 'memory')).toBe(cgroupOf(monitor!, 'memory'));
    // For the record (issue 10's overhead figure; not asserted here): what the Pod's processes use.
    const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    const podPids = pidsWhere((_c, pid) => inPod(pid));
    const byName = podPids.map((pid) => `${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}=${Math.round(rssKiB(pid) / 1024)}MiB`);
    // Summed RSS counts shared pages (two Node processes, QEMU's libraries) more than once; the
    // memory cgroup, which the limit applies to, counts them once.
    const computeCg = join('/sys/fs/cgroup/memory', cgroupOf(monitor!, 'memory')!);
    const stat = Object.fromEntries(readFileSync(join(computeCg, 'memory.stat'), 'utf8').trim().split('\n').map((l) => l.split(' ')));
    const mib = (b: number) => Math.round(b / 1048576);
    progress(`Pod RSS sum ${Math.round(podPids.reduce((a, p) => a + rssKiB(p), 0) / 1024)} MiB (${byName.join(' ')}); compute cgroup: usage ${mib(Number(readFileSync(join(computeCg, 'memory.usage_in_bytes'), 'utf8')))} MiB, rss ${mib(Number(stat['total_rss']))} MiB, cache ${mib(Number(stat['total_cache']))} MiB, limit ${mib(limit)} MiB for a 128 MiB guest`);
    // Unprivileged: the guest runs as the Pod's user.
    expect(readFileSync(`/proc/${qemu[0]}/status`, 'utf8')).toMatch(/^Uid:\s+107\s/m);
  }, 600_000);

  it('a containerDisk image that does not exist shows as ErrImagePull / ImagePullBackOff on its volume container', async () => {
    const vm = testGuestVm({ image: `${podRegistry}/virtops/test-guest:latest`, name: 'kl-missing' });
    vm.metadata.namespace = NS;
    const spec = vm.spec.template.spec;
    spec.domain.devices.disks = [...(spec.domain.devices.disks ?? []), { name: 'containerdisk', disk: { bus: 'virtio' } }];
    spec.volumes = [...(spec.volumes ?? []), { name: 'containerdisk', containerDisk: { image: `${podRegistry}/virtops/no-such-disk:latest` } }];
    const manifest = renderLauncherPod(vm, { launcherImage, libvirtDaemon: 'pod', uid: 'missing-disk-1', nodeSocketDir: join(env.dir, 'launchers') });
    manifest.metadata.name = 'virt-launcher-kl-missing';
    await core.createNamespacedPod({ namespace: NS, body: manifest as never });
    const status = await waitFor('a pull error on the volume container', async () => {
      const p = await core.readNamespacedPod({ name: manifest.metadata.name!, namespace: NS });
      const s = p.status?.initContainerStatuses?.find((c) => c.name === 'volumecontainerdisk-init');
      const r = s?.state?.waiting?.reason;
      return r === 'ErrImagePull' || r === 'ImagePullBackOff' ? { reason: r, message: s?.state?.waiting?.message ?? '', phase: p.status?.phase } : undefined;
    }, 90_000);
    expect(status.message).toContain('no-such-disk');
    expect(status.phase).toBe('Pending');
    await core.deleteNamespacedPod({ name: manifest.metadata.name!, namespace: NS, gracePeriodSeconds: 0 });
  }, 120_000);

  it('deleting the Pod stops the guest (the launcher shuts it down); down leaves no process and restores the sysctls', async () => {
    const podUid = pod?.metadata?.uid ?? randomBytes(4).toString('hex');
    if (pod?.metadata?.name) {
      await core.deleteNamespacedPod({ name: pod.metadata.name, namespace: NS });
      await waitFor('the launcher Pod to go', async () => {
        try {
          await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: NS });
          return undefined;
        } catch {
          return true;
        }
      }, 150_000);
      expect(pidsWhere((c) => /qemu-system-x86_64/.test(c) && c.includes(`guest=${NS}_${VM}`))).toEqual([]);
    }
    await node.stop();
    expect(runningNodeProcesses(node.dir)).toEqual([]);
    expect(pidsWhere((c) => c.includes(`${node.dir}/`))).toEqual([]);
    expect(pidsWhere((c) => /qemu-system-x86_64/.test(c) && c.includes(`guest=${NS}_${VM}`))).toEqual([]);
    expect(pidsWhere((_c, pid) => (cgroupOf(pid, 'memory') ?? '').includes(`pod${podUid}`))).toEqual([]);
    expect(Object.fromEntries(NODE_SYSCTLS.map((s) => [s, readSysctl(s)]))).toEqual(sysctlsBefore);
    expect(spawnSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' }).stdout).not.toContain(`${NS}_${VM}`);
  }, 240_000);
});
