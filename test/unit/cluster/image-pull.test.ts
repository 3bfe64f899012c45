/**
 * A launcher Pod whose image the kubelet cannot pull (issue 10): the pure decisions that turn
 * the Pod's container statuses into the VM's printableStatus (ErrImagePull/ImagePullBackOff,
 * as KubeVirt's `kubectl get vm` shows) and the VMI's Synchronized condition. Pods here are
 * plain objects shaped like the kubelet's status (no API server).
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { computeVmStatus } from '../../../reconciler/core/index.js';
import { observeInstance, podImagePullError, vmiForVm, vmiPullConditions } from '../../../reconciler/cluster/instances.js';
import { T0, vm as fixtureVm } from '../reconciler/fixtures.js';

const DISK = 'registry.example:5000/disks/missing:1';

function apiVm(): VirtualMachine {
  const v = fixtureVm({ runStrategy: 'Always', generation: 1 });
  v.metadata = { ...v.metadata, uid: 'vm-uid-1' };
  return v;
}

function apiVmi(status?: VirtualMachineInstance['status'], deleting = false): VirtualMachineInstance {
  const vmi = vmiForVm(apiVm());
  vmi.metadata = { ...vmi.metadata, uid: 'vmi-uid-1', creationTimestamp: new Date(T0 - 10_000).toISOString(), ...(deleting ? { deletionTimestamp: new Date(T0).toISOString() } : {}) };
  if (status) vmi.status = status;
  return vmi;
}

const waiting = (name: string, reason: string, message?: string): V1ContainerStatus => ({ name, image: 'resolved/' + name, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, ...(message ? { message } : {}) } } });
const running = (name: string): V1ContainerStatus => ({ name, image: name, imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date(T0) } } });

/** A launcher Pod on node n1 with the seed's layout: the disk image in volumecontainerdisk-init and volumecontainerdisk. */
function launcherPod(init: V1ContainerStatus[], main: V1ContainerStatus[] = [], nodeName: string | null = 'n1'): V1Pod {
  return {
    metadata: { name: 'virt-launcher-web-abcde', namespace: 'default' },
    spec: {
      ...(nodeName ? { nodeName } : {}),
      initContainers: [{ name: 'container-disk-binary', image: 'virtops:1' }, { name: 'volumecontainerdisk-init', image: DISK }],
      containers: [{ name: 'compute', image: 'virtops:1' }, { name: 'volumecontainerdisk', image: DISK }],
    },
    status: { phase: 'Pending', initContainerStatuses: init, containerStatuses: main },
  };
}

const KUBELET_ERR = `failed to pull and unpack image "${DISK}": not found`;
const pulling = launcherPod([{ ...running('container-disk-binary'), state: { terminated: { exitCode: 0 } } }, waiting('volumecontainerdisk-init', 'ErrImagePull', KUBELET_ERR)], [waiting('compute', 'PodInitializing'), waiting('volumecontainerdisk', 'PodInitializing')]);

describe('podImagePullError', () => {
  it("names the reason, the container and the image the spec asks for, then the kubelet's message", () => {
    expect(podImagePullError(pulling)).toEqual({ reason: 'ErrImagePull', container: 'volumecontainerdisk-init', image: DISK, message: `cannot pull image ${DISK} (container volumecontainerdisk-init): ${KUBELET_ERR}` });
  });

  it('ImagePullBackOff on a main container counts too; other waiting reasons do not', () => {
    const p = launcherPod([], [running('compute'), waiting('volumecontainerdisk', 'ImagePullBackOff', `Back-off pulling image "${DISK}"`)]);
    expect(podImagePullError(p)).toMatchObject({ reason: 'ImagePullBackOff', container: 'volumecontainerdisk', image: DISK });
    expect(podImagePullError(launcherPod([waiting('container-disk-binary', 'PodInitializing')], [waiting('compute', 'ContainerCreating')]))).toBeUndefined();
    expect(podImagePullError(undefined)).toBeUndefined();
  });

  it('falls back to the status image when the spec has no such container, and to the reason without a message', () => {
    const p: V1Pod = { metadata: { name: 'x' }, status: { containerStatuses: [waiting('other', 'ErrImagePull')] } };
    expect(podImagePullError(p)?.message).toBe('cannot pull image resolved/other (container other): ErrImagePull');
  });
});

describe('the VM status while the kubelet cannot pull an image', () => {
  it.each(['ErrImagePull', 'ImagePullBackOff'] as const)('%s on the scheduled launcher Pod → the VM shows it, Ready=False naming the image', (reason) => {
    const p = launcherPod([waiting('volumecontainerdisk-init', reason, 'x')]);
    const o = observeInstance(apiVmi(), p, T0);
    expect(o).toMatchObject({ phase: 'Scheduled', reason });
    const s = computeVmStatus(apiVm(), o, { now: T0 });
    expect(s.printableStatus).toBe(reason);
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'VMIScheduled' });
    expect(s.conditions?.find((c) => c.type === 'Ready')?.message).toContain(DISK);
  });

  it('clears once the pull succeeds: Starting, then what the agent reports', () => {
    const pulled = launcherPod([], [running('compute'), running('volumecontainerdisk')]);
    expect(computeVmStatus(apiVm(), observeInstance(apiVmi(), pulled, T0), { now: T0 }).printableStatus).toBe('Starting');
    const reported = apiVmi({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
    expect(computeVmStatus(apiVm(), observeInstance(reported, pulled, T0), { now: T0 }).printableStatus).toBe('Running');
  });

  it('an unschedulable Pod is not a pull error; a pull error needs a node', () => {
    const p = launcherPod([waiting('volumecontainerdisk-init', 'ErrImagePull', 'x')], [], null);
    expect(observeInstance(apiVmi(), p, T0)?.reason).toBeUndefined();
  });
});

describe('vmiPullConditions', () => {
  const now = new Date(T0);

  it('adds Synchronized=False with the reason and the image, keeping the other conditions', () => {
    const vmi = apiVmi({ conditions: [{ type: 'Ready', status: 'False', reason: 'x' }] });
    const c = vmiPullConditions(vmi, pulling, now);
    expect(c).toEqual([{ type: 'Ready', status: 'False', reason: 'x' }, { type: 'Synchronized', status: 'False', reason: 'ErrImagePull', message: podImagePullError(pulling)!.message, lastTransitionTime: now.toISOString() }]);
  });

  it('writes nothing when it already says so, and keeps the transition time when only the reason flips', () => {
    const first = vmiPullConditions(apiVmi(), pulling, new Date(T0 - 5000))!;
    expect(vmiPullConditions(apiVmi({ conditions: first }), pulling, now)).toBeUndefined();
    const backoff = launcherPod([waiting('volumecontainerdisk-init', 'ImagePullBackOff', `Back-off pulling image "${DISK}"`)]);
    const next = vmiPullConditions(apiVmi({ conditions: first }), backoff, now)!;
    expect(next).toHaveLength(1);
    expect(next[0]).toMatchObject({ reason: 'ImagePullBackOff', lastTransitionTime: new Date(T0 - 5000).toISOString() });
  });

  it('removes its condition when the image was pulled; leaves alone what is not its own', () => {
    const pulled = launcherPod([], [running('compute'), running('volumecontainerdisk')]);
    const withOurs = apiVmi({ conditions: [{ type: 'Ready', status: 'False' }, ...vmiPullConditions(apiVmi(), pulling, now)!] });
    expect(vmiPullConditions(withOurs, pulled, now)).toEqual([{ type: 'Ready', status: 'False' }]);
    expect(vmiPullConditions(apiVmi(), pulled, now)).toBeUndefined();
    const agents = apiVmi({ conditions: [{ type: 'Synchronized', status: 'False', reason: 'LauncherUnreachable' }] });
    expect(vmiPullConditions(agents, pulling, now)).toBeUndefined();
  });

  it('once the agent reported the VMI (Running, Failed...) or it is being deleted, the conditions are not the controller\'s', () => {
    expect(vmiPullConditions(apiVmi({ phase: 'Running' }), pulling, now)).toBeUndefined();
    expect(vmiPullConditions(apiVmi({ phase: 'Failed' }), pulling, now)).toBeUndefined();
    expect(vmiPullConditions(apiVmi(undefined, true), pulling, now)).toBeUndefined();
    expect(vmiPullConditions(apiVmi({ phase: 'Scheduled' }), pulling, now)).toHaveLength(1);
  });
});
