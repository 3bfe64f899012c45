/**
 * The controller's informer transforms (reconciler/cluster/controller.ts): what it keeps of a
 * launcher Pod (launcherPodForCache) and of a VMI (vmiForCache) covers everything it reads. For representative Pods, as the API server returns
 * them (the rendered launcher Pod plus what the server and the kubelet add), every reader
 * gives the same answer on the kept object as on the whole one; and the kept object is a
 * small fraction of the whole. (The VmController unit tests run with this transform too:
 * the fake informer applies it, as the real one does.)
 */
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { isFinalVmi, launcherPodForCache, vmiForCache } from '../../../reconciler/cluster/controller.js';
import { instancetypeStatusRefs, instantiateLauncherPod, observeInstance, podImagePullError, podScheduling, vmiForVm, vmiPullConditions } from '../../../reconciler/cluster/instances.js';
import { LABEL_CREATED_BY, LABEL_VM_NAME, renderLauncherPod } from '../../../synth/launcher-pod.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');

function vm(name: string, containerDisk = false): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'prod', uid: `uid-vm-${name}`, generation: 3 },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { app: name } },
        spec: {
          domain: { cpu: { cores: 2 }, resources: { requests: { memory: '1Gi' } }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }] } },
          volumes: [
            containerDisk ? { name: 'root', containerDisk: { image: 'registry.local/debian:12' } } : { name: 'root', persistentVolumeClaim: { claimName: `${name}-root` } },
            { name: 'cloudinit', cloudInitNoCloud: { userData: '#cloud-config\npassword: x\n' } },
          ],
        },
      },
    },
  };
}

function vmiOf(v: VirtualMachine, status?: VirtualMachineInstance['status'], deleting = false): VirtualMachineInstance {
  const vmi = vmiForVm(v);
  vmi.metadata = { ...vmi.metadata, uid: `uid-vmi-${v.metadata.name}`, resourceVersion: '100', creationTimestamp: '2026-12-04T11:59:00Z', ...(deleting ? { deletionTimestamp: '2026-12-04T11:59:30Z' } : {}) };
  if (status) vmi.status = status;
  return vmi;
}

/** The launcher Pod as the API server returns it: the instantiated template plus server and kubelet fields. */
function serverPod(v: VirtualMachine, vmi: VirtualMachineInstance, extra: { nodeName?: string; status?: V1Pod['status']; deleting?: boolean }): V1Pod {
  const pod = instantiateLauncherPod(renderLauncherPod(v), vmi, 'abc123') as unknown as V1Pod;
  pod.metadata = {
    ...pod.metadata,
    uid: `uid-pod-${v.metadata.name}`,
    resourceVersion: '200',
    creationTimestamp: new Date('2026-12-04T11:59:01Z'),
    ...(extra.deleting ? { deletionTimestamp: new Date('2026-12-04T11:59:40Z') } : {}),
    managedFields: [{ manager: 'virtops-controller', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': {} }, 'f:spec': { 'f:containers': {} } } }],
  };
  const spec = pod.spec!;
  spec.volumes = [...(spec.volumes ?? []), { name: 'kube-api-access-x1', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] } }];
  spec.tolerations = [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }];
  Object.assign(spec, { dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', serviceAccountName: 'default', enableServiceLinks: true, preemptionPolicy: 'PreemptLowerPriority', priority: 0 });
  if (extra.nodeName) spec.nodeName = extra.nodeName;
  if (extra.status) pod.status = { hostIP: '10.0.0.5', podIP: '10.244.0.7', qosClass: 'Burstable', startTime: new Date('2026-12-04T11:59:02Z'), ...extra.status };
  return pod;
}

const waiting = (name: string, reason: string, message?: string) => ({ name, image: `img-${name}`, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, ...(message ? { message } : {}) } } });

function cases(): [string, VirtualMachineInstance, V1Pod][] {
  const a = vm('a');
  const b = vm('b', true);
  const vmiA = vmiOf(a);
  const vmiB = vmiOf(b);
  return [
    ['Pending, not scheduled yet', vmiA, serverPod(a, vmiA, { status: { phase: 'Pending' } })],
    ['Unschedulable', vmiA, serverPod(a, vmiA, { status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory.' }] } })],
    ['scheduled, containers creating', vmiA, serverPod(a, vmiA, { nodeName: 'node-1', status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], containerStatuses: [waiting('compute', 'ContainerCreating')] } })],
    ['an init container cannot pull its image', vmiB, serverPod(b, vmiB, { nodeName: 'node-1', status: { phase: 'Pending', initContainerStatuses: [waiting('container-disk-binary', 'ErrImagePull', 'rpc error: not found')], containerStatuses: [waiting('compute', 'PodInitializing')] } })],
    ['ImagePullBackOff on the compute container', vmiB, serverPod(b, vmiB, { nodeName: 'node-1', status: { phase: 'Pending', containerStatuses: [waiting('compute', 'ImagePullBackOff', 'Back-off pulling image')] } })],
    ['Running VMI, Running Pod', vmiOf(a, { phase: 'Running', nodeName: 'node-1', conditions: [{ type: 'Ready', status: 'True' }], phaseTransitionTimestamps: [{ phase: 'Running', phaseTransitionTimestamp: '2026-12-04T11:59:10Z' }] }), serverPod(a, vmiA, { nodeName: 'node-1', status: { phase: 'Running', containerStatuses: [{ name: 'compute', image: 'virtops', imageID: 'sha', ready: true, restartCount: 0, state: { running: { startedAt: new Date('2026-12-04T11:59:05Z') } } }] } })],
    ['the Pod Failed (evicted) under a Running VMI', vmiOf(a, { phase: 'Running', nodeName: 'node-1' }), serverPod(a, vmiA, { nodeName: 'node-1', status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' } })],
    ['a terminating VMI and Pod', vmiOf(a, { phase: 'Running', nodeName: 'node-1' }, true), serverPod(a, vmiA, { nodeName: 'node-1', deleting: true, status: { phase: 'Running' } })],
  ];
}

/** Everything the controller reads of a launcher Pod, through the same functions it calls. */
function reads(vmi: VirtualMachineInstance, pod: V1Pod) {
  return {
    observed: observeInstance(vmi, pod, NOW),
    pull: vmiPullConditions(vmi, pod, new Date(NOW)),
    scheduling: podScheduling(pod),
    pullError: podImagePullError(pod),
    // The controller's own reads (podsByVmi, removeOrphanedPods, finalizeUnscheduled, deletes).
    meta: { name: pod.metadata?.name, namespace: pod.metadata?.namespace, uid: pod.metadata?.uid, rv: pod.metadata?.resourceVersion, deleting: pod.metadata?.deletionTimestamp, createdBy: pod.metadata?.labels?.[LABEL_CREATED_BY], vmName: pod.metadata?.labels?.[LABEL_VM_NAME] },
    nodeName: pod.spec?.nodeName,
  };
}

describe('launcherPodForCache keeps what the controller reads of a launcher Pod', () => {
  it.each(cases())('%s: every reader answers the same on the kept Pod', (_name, vmi, pod) => {
    const whole = reads(vmi, structuredClone(pod));
    const kept = launcherPodForCache(structuredClone(pod) as KubernetesObject) as V1Pod;
    expect(reads(vmi, kept)).toEqual(whole);
    expect(kept.metadata?.managedFields).toBeUndefined();
  });

  it('the cases exercise each reader (not all answers empty)', () => {
    const all = cases().map(([, vmi, pod]) => reads(vmi, pod));
    expect(all.filter((r) => r.pullError).length).toBe(2);
    expect(all.filter((r) => r.pull).length).toBe(2);
    expect(all.filter((r) => r.scheduling.unschedulable).length).toBe(1);
    expect(new Set(all.map((r) => r.observed?.phase))).toEqual(new Set(['Scheduling', 'Scheduled', 'Running', 'Failed']));
  });

  it('keeps a small fraction of the Pod (its spec is most of it)', () => {
    for (const [, , pod] of cases()) {
      const kept = launcherPodForCache(structuredClone(pod) as KubernetesObject);
      expect(JSON.stringify(kept).length).toBeLessThan(JSON.stringify(pod).length * 0.5);
    }
  });

  it('a watch bookmark (metadata only) passes through unchanged', () => {
    const bookmark = { apiVersion: 'v1', kind: 'Pod', metadata: { resourceVersion: '12345' } };
    expect(launcherPodForCache(structuredClone(bookmark))).toEqual(bookmark);
  });
});

describe('vmiForCache keeps what the controller reads of a VMI', () => {
  const a = vm('a');
  const reported: VirtualMachineInstance['status'] = {
    phase: 'Running',
    nodeName: 'node-1',
    reason: 'Booted',
    conditions: [{ type: 'Ready', status: 'True' }, { type: 'AgentConnected', status: 'True' }, { type: 'Paused', status: 'False' }, { type: 'Synchronized', status: 'False', reason: 'LibvirtUnreachable', message: 'libvirt does not answer' }],
    phaseTransitionTimestamps: [{ phase: 'Scheduled', phaseTransitionTimestamp: '2026-12-04T11:59:05Z' }, { phase: 'Running', phaseTransitionTimestamp: '2026-12-04T11:59:10Z' }],
    interfaces: [{ name: 'default', mac: '52:54:00:12:34:56', ipAddress: '10.0.2.15', ipAddresses: ['10.0.2.15', 'fe80::1'], interfaceName: 'eth0', infoSource: 'domain, guest-agent' }],
    guestOSInfo: { id: 'debian', name: 'Debian GNU/Linux', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12', versionId: '12', kernelRelease: '6.1.0-28-amd64', machine: 'x86_64' },
  } as VirtualMachineInstance['status'];
  const cases: [string, VirtualMachineInstance][] = [
    ['Running, with everything the agent reports', vmiOf(a, reported)],
    ['Succeeded', vmiOf(a, { phase: 'Succeeded', phaseTransitionTimestamps: [{ phase: 'Succeeded', phaseTransitionTimestamp: '2026-12-04T11:59:50Z' }] })],
    ['Pending with an image pull condition', vmiOf(a, { phase: 'Pending', conditions: [{ type: 'Synchronized', status: 'False', reason: 'ErrImagePull', message: 'cannot pull' }] })],
    ['terminating', vmiOf(a, reported, true)],
    ['no status yet', vmiOf(a)],
  ];
  const podOf = (vmi: VirtualMachineInstance) => serverPod(a, vmi, { nodeName: 'node-1', status: { phase: 'Pending', containerStatuses: [waiting('compute', 'ErrImagePull', 'not found')] } });

  it.each(cases)('%s: every reader answers the same on the kept VMI', (_name, vmi) => {
    const read = (v: VirtualMachineInstance) => ({
      observed: observeInstance(v, podOf(vmi), NOW),
      pull: vmiPullConditions(v, podOf(vmi), new Date(NOW)),
      final: isFinalVmi(v),
      refs: instancetypeStatusRefs(a, v, undefined),
      spec: v.spec,
      meta: { ...v.metadata, managedFields: undefined },
      nodeName: v.status?.nodeName,
    });
    const kept = vmiForCache(structuredClone(vmi) as unknown as KubernetesObject) as unknown as VirtualMachineInstance;
    expect(read(kept)).toEqual(read(structuredClone(vmi)));
  });

  it('drops what the agent reports for other readers', () => {
    const kept = vmiForCache(structuredClone(vmiOf(a, reported)) as unknown as KubernetesObject) as unknown as VirtualMachineInstance;
    expect(kept.status).not.toHaveProperty('interfaces');
    expect(kept.status).not.toHaveProperty('guestOSInfo');
  });
});
