/**
 * The pure parts of cluster-mode snapshots (reconciler/cluster/snapshots.ts) and of the copy
 * rules both modes share (reconciler/snapshot-copy.ts): which node's agent takes a snapshot,
 * when a restore has ended, the controller's restore gate, what a restore does while its
 * target runs, a restore's new claims (their PV and PVC, when they go), and the CRDs and RBAC
 * the install ships for them.
 */
import { describe, expect, it } from 'vitest';
import { newVmRestoreNote, restoreStatus } from '../../../api/snapshot.js';
import { claimObjects } from '../../../reconciler/cluster/datavolumes.js';
import { RESTORE_ANNOTATION, RESTORE_NODE_LABEL, domainOf, onlineRefusal, restoreFinished, restoreGate, restoredClaimFate, restoredClaimObjects, restoredVolumeName, takesSnapshot } from '../../../reconciler/cluster/snapshots.js';
import { podDaemonView, resolveInRoot } from '../../../reconciler/cluster/kubelet-launchers.js';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATHS, renderLauncherPod } from '../../../synth/launcher-pod.js';
import { fixtureVm } from '../synth/fixtures.js';
import { podCopy, RESTORE_WAIT_MS, runningTargetDecision } from '../../../reconciler/snapshot-copy.js';
import { ALL_CRDS, DATAVOLUME_CRD, RESTORE_CRD, SNAPSHOT_CRD, crdName, renderCrd } from '../../../synth/crds.js';
import { AGENT_RULES, CONTROLLER_RULES } from '../../../synth/install.js';

describe('cluster snapshots (pure)', () => {
  it('a running VM whose domain cannot be reached is refused with why and the fix (stop it, snapshot offline), never copied', () => {
    const m = onlineRefusal('lab', 'web', 'its launcher monitor is not running in launcher Pod p');
    expect(m).toMatch(/^VirtualMachine lab\/web is running but no online copy can be taken: its launcher monitor is not running in launcher Pod p; /);
    expect(m).toContain('virtops stop web -n lab --kubeconfig F');
    expect(m).toContain('create the snapshot again (an offline copy)');
  });

  it('resolves a socket path inside a container root: absolute links re-anchored there, .. kept in it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'vo-root-'));
    try {
      await mkdir(join(root, 'run', 'libvirt'), { recursive: true });
      await mkdir(join(root, 'var'));
      await symlink('/run', join(root, 'var', 'run'));
      await symlink('../../../../etc', join(root, 'run', 'up'));
      expect(await resolveInRoot(root, '/var/run/libvirt/libvirt-sock')).toBe(join(root, 'run', 'libvirt', 'libvirt-sock'));
      expect(await resolveInRoot(root, '/run/up/passwd')).toBe(join(root, 'etc', 'passwd'));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('beside a kubelet: the Pod\'s own daemon through the monitor\'s root, claims where the Pod mounts them; staged in the claim\'s dir', () => {
    const args = renderLauncherPod(fixtureVm(), { libvirtDaemon: 'pod' }).spec.containers[0]!.args!;
    expect(podDaemonView(args, 4242)).toEqual({ socket: '/proc/4242/root/var/run/libvirt/libvirt-sock', vmiDisksDir: PATHS.vmiDisks });
    expect(podDaemonView(renderLauncherPod(fixtureVm()).spec.containers[0]!.args!, 1)).toEqual({ unreachable: expect.stringMatching(/no libvirt daemon of its own/) });
    const c = podCopy({ kind: 'claim', name: 'data', claim: 'dv' } as never, '/s/pvcs/ns/dv/disk.img', { dest: '/s/snapshots/ns/s1/data.img', format: 'raw' }, PATHS.vmiDisks, 'u1');
    expect(c).toEqual({
      source: `${PATHS.vmiDisks}/data/disk.img`, dest: '/s/snapshots/ns/s1/data.img', format: 'raw',
      staging: { daemon: `${PATHS.vmiDisks}/data/.snapshot-u1.partial`, local: '/s/pvcs/ns/dv/.snapshot-u1.partial' },
    });
    expect(() => podCopy({ kind: 'claim', name: 'data', claim: 'dv' } as never, '/s/pvcs/ns/dv.img', { dest: '/d', format: 'raw' }, PATHS.vmiDisks, 'u1')).toThrow(/not a claim the launcher Pod mounts as <claim>\/disk\.img: stop the VM/);
  });

  it('the agent of the VMI\'s node takes a running VM\'s snapshot; a stopped VM\'s, the node holding all its disks', () => {
    expect(takesSnapshot({ me: 'n1', vmiNode: 'n1', hasVmi: true, disksHere: false })).toBe(true);
    expect(takesSnapshot({ me: 'n1', vmiNode: 'n2', hasVmi: true, disksHere: true })).toBe(false);
    expect(takesSnapshot({ me: 'n1', vmiNode: undefined, hasVmi: true, disksHere: true })).toBe(false);
    expect(takesSnapshot({ me: 'n1', vmiNode: undefined, hasVmi: false, disksHere: true })).toBe(true);
    expect(takesSnapshot({ me: 'n1', vmiNode: undefined, hasVmi: false, disksHere: false })).toBe(false);
  });

  it('a restore has ended when complete or failed, not while waiting or in progress', () => {
    expect(restoreFinished(undefined)).toBe(false);
    expect(restoreFinished(restoreStatus({ state: 'Waiting', since: 0, message: 'x' }))).toBe(false);
    expect(restoreFinished(restoreStatus({ state: 'InProgress', since: 0 }))).toBe(false);
    expect(restoreFinished(restoreStatus({ state: 'Succeeded', since: 0 }))).toBe(true);
    expect(restoreFinished(restoreStatus({ state: 'Failed', since: 0, message: 'no' }))).toBe(true);
  });

  it('the controller holds a VM while a restore into it has not ended', () => {
    const r = (name: string, target: string, state?: 'Waiting' | 'Succeeded') => ({ metadata: { name, namespace: 'ns' }, spec: { target: { name: target } }, ...(state ? { status: restoreStatus({ state, since: 0 }) } : {}) });
    expect(restoreGate([r('a', 'vm1')], 'ns', 'vm1')).toEqual({ reason: 'Provisioning', message: "VirtualMachineRestore a is restoring this VM's disks" });
    expect(restoreGate([r('a', 'vm1', 'Waiting')], 'ns', 'vm1')?.reason).toBe('Provisioning');
    expect(restoreGate([r('a', 'vm1', 'Succeeded')], 'ns', 'vm1')).toBeUndefined();
    expect(restoreGate([r('a', 'vm2')], 'ns', 'vm1')).toBeUndefined();
    expect(restoreGate([r('a', 'vm1')], 'other', 'vm1')).toBeUndefined();
  });

  it('a restore into a new VM: each new claim a PVC pre-bound to a local PV on the node, shaped as the importer\'s, labelled for the node\'s agent', () => {
    const { pv, pvc } = restoredClaimObjects({ namespace: 'lab', restore: 'r1', restoreUid: '0123abcd-0000', volume: 'Data_1', claim: 'restore-0123abcd-Data_1', node: 'n1', path: '/s/pvcs/lab/c', bytes: 16n << 20n });
    expect(pv.metadata!.name).toBe('virtops-restore-0123abcd-0000-data-1');
    for (const o of [pv, pvc]) {
      expect(o.metadata!.labels).toEqual({ 'app.kubernetes.io/managed-by': 'virtops', [RESTORE_NODE_LABEL]: 'n1' });
      expect(o.metadata!.annotations).toEqual({ [RESTORE_ANNOTATION]: 'lab/r1' });
    }
    expect(pvc.metadata!.ownerReferences).toBeUndefined();
    expect(pvc.spec).toMatchObject({ volumeName: pv.metadata!.name, resources: { requests: { storage: String(16 << 20) } } });
    expect(pv.spec).toMatchObject({ local: { path: '/s/pvcs/lab/c' }, persistentVolumeReclaimPolicy: 'Retain', claimRef: { namespace: 'lab', name: 'restore-0123abcd-Data_1' } });
    // The same shape as the importer's (one publication code): only names, labels and owner differ.
    const dv = claimObjects({ metadata: { name: 'restore-0123abcd-Data_1', namespace: 'lab', uid: 'u' } }, { node: 'n1', path: '/s/pvcs/lab/c', bytes: 16n << 20n });
    expect({ ...(pv.spec as object), claimRef: undefined }).toEqual({ ...(dv.pv.spec as object), claimRef: undefined });
    expect({ ...(pvc.spec as object), volumeName: undefined }).toEqual({ ...(dv.pvc.spec as object), volumeName: undefined });
    expect(restoredVolumeName('u', 'x'.repeat(300)).length).toBeLessThanOrEqual(253);
  });

  it('a restored claim stays while its PVC exists; once gone, removed when no VMI here uses it', () => {
    expect(restoredClaimFate({ pvcGone: false, inUse: false })).toBe('keep');
    expect(restoredClaimFate({ pvcGone: true, inUse: true })).toBe('wait');
    expect(restoredClaimFate({ pvcGone: true, inUse: false })).toBe('remove');
  });

  it('the restore into a new VM says (in both modes) to add the VM to git with its claims', () => {
    expect(newVmRestoreNote('web2', [{ volumeName: 'data', persistentVolumeClaim: 'restore-1-data', volumeSnapshotName: 'x' }, { volumeName: 'root', persistentVolumeClaim: 'r', volumeSnapshotName: 'y' }]))
      .toBe('VirtualMachine web2 is not in git: add it with these claims (data → restore-1-data, root → r)');
  });

  it('the domain of a VMI is <namespace>_<name>', () => {
    expect(domainOf({ metadata: { name: 'g', namespace: 'ns' }, spec: { domain: { devices: {} } } } as never)).toBe('ns_g');
  });

  it('a running target: FailImmediate fails, WaitGracePeriod waits then fails, StopTarget asks once to stop', () => {
    const base = { target: 'vm1', waitingSince: 1000, now: 1000, waiting: false, stopHint: 'stop it' };
    expect(runningTargetDecision({ ...base, policy: 'FailImmediate' })).toEqual({ action: 'fail', message: 'the target VM vm1 is running: stop it' });
    expect(runningTargetDecision({ ...base, policy: undefined })).toMatchObject({ action: 'wait', stop: false });
    expect(runningTargetDecision({ ...base, policy: 'WaitGracePeriod', now: 1000 + RESTORE_WAIT_MS + 1 })).toMatchObject({ action: 'fail', message: expect.stringMatching(/did not stop within 5 min/) });
    expect(runningTargetDecision({ ...base, policy: 'WaitEventually', now: 1000 + 10 * RESTORE_WAIT_MS })).toMatchObject({ action: 'wait', stop: false });
    expect(runningTargetDecision({ ...base, policy: 'StopTarget' })).toEqual({ action: 'wait', stop: true, message: 'waiting for the target VM vm1 to stop (stop requested)' });
    expect(runningTargetDecision({ ...base, policy: 'StopTarget', waiting: true })).toMatchObject({ action: 'wait', stop: false });
  });
});

describe('the install ships snapshots and DataVolumes', () => {
  it('has the snapshot, restore and DataVolume CRDs with status subresources and KubeVirt\'s/CDI\'s columns', () => {
    expect(ALL_CRDS.map(crdName)).toEqual(expect.arrayContaining(['virtualmachinesnapshots.snapshot.kubevirt.io', 'virtualmachinerestores.snapshot.kubevirt.io', 'datavolumes.cdi.kubevirt.io']));
    type Crd = { spec: { group: string; names: { shortNames: string[] }; versions: { name: string; subresources: unknown; additionalPrinterColumns: { name: string }[]; schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
    const snap = renderCrd(SNAPSHOT_CRD) as Crd;
    expect(snap.spec.group).toBe('snapshot.kubevirt.io');
    expect(snap.spec.versions[0]).toMatchObject({ name: 'v1beta1', subresources: { status: {} } });
    expect(snap.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toEqual(['Age', 'SourceKind', 'SourceName', 'Phase', 'ReadyToUse', 'CreationTime', 'Error']);
    expect(Object.keys((snap.spec.versions[0]!.schema.openAPIV3Schema.properties ?? {}) as object)).toEqual(expect.arrayContaining(['spec', 'status']));
    const restore = renderCrd(RESTORE_CRD) as Crd;
    expect(restore.spec.names.shortNames).toEqual(['vmrestore', 'vmrestores']);
    expect(restore.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toEqual(['Age', 'TargetKind', 'TargetName', 'Complete', 'RestoreTime', 'Error']);
    const dv = renderCrd(DATAVOLUME_CRD) as Crd;
    expect(dv.spec.versions[0]!.schema.openAPIV3Schema).toEqual({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  });

  const allows = (rules: { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }[], group: string, resource: string, verb: string, name?: string) =>
    rules.some((r) => r.apiGroups?.includes(group) && r.resources?.includes(resource) && r.verbs.includes(verb) && (!r.resourceNames || (name !== undefined && r.resourceNames.includes(name))));

  it('grants the controller DataVolumes and snapshot kinds, every agent what the importer and snapshot agent call', () => {
    expect(allows(CONTROLLER_RULES, 'cdi.kubevirt.io', 'datavolumes', 'create')).toBe(true);
    expect(allows(CONTROLLER_RULES, 'snapshot.kubevirt.io', 'virtualmachinerestores', 'watch')).toBe(true);
    expect(allows(CONTROLLER_RULES, 'apiextensions.k8s.io', 'customresourcedefinitions', 'patch', 'datavolumes.cdi.kubevirt.io')).toBe(true);
    for (const [g, r, v] of [
      ['cdi.kubevirt.io', 'datavolumes', 'patch'], ['cdi.kubevirt.io', 'datavolumes/status', 'patch'], ['', 'persistentvolumes', 'create'], ['', 'persistentvolumes', 'delete'], ['', 'persistentvolumeclaims', 'create'],
      ['', 'persistentvolumes', 'watch'], ['', 'persistentvolumeclaims', 'get'], ['', 'persistentvolumeclaims', 'watch'],
      ['snapshot.kubevirt.io', 'virtualmachinesnapshots', 'patch'], ['snapshot.kubevirt.io', 'virtualmachinesnapshots/status', 'patch'], ['snapshot.kubevirt.io', 'virtualmachinerestores/status', 'patch'],
      ['kubevirt.io', 'virtualmachines', 'get'], ['kubevirt.io', 'virtualmachines', 'patch'],
    ] as const) expect(allows(AGENT_RULES, g, r, v), `${g}/${r} ${v}`).toBe(true);
    expect(allows(AGENT_RULES, 'apiextensions.k8s.io', 'customresourcedefinitions', 'get', 'virtualmachinesnapshots.snapshot.kubevirt.io')).toBe(true);
    expect(allows(AGENT_RULES, 'apiextensions.k8s.io', 'customresourcedefinitions', 'get', 'virtualmachines.kubevirt.io')).toBe(false);
    expect(allows(AGENT_RULES, 'snapshot.kubevirt.io', 'virtualmachinesnapshots', 'delete')).toBe(false);
  });
});
