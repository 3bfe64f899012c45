import { describe, expect, it } from 'vitest';
import { computeOverhead } from '../../../synth/overhead.js';
import {
  ANNOTATION_MEMORY_OVERHEAD, LAUNCHER_EMPTY_DIRS, launcherArgv, renderLauncherPod, VMI_UID_PLACEHOLDER,
} from '../../../synth/launcher-pod.js';
import { formatBytes, parseQuantity } from '../../../synth/quantity.js';
import { validateManifest } from '../../../api/validate.js';
import { fixtureVm } from './fixtures.js';

describe('renderLauncherPod', () => {
  const pod = renderLauncherPod(fixtureVm());

  it('is named and labelled like a virt-launcher Pod, with a stable name', () => {
    expect(pod.metadata.name).toBe('virt-launcher-web');
    expect(pod.metadata.namespace).toBe('prod');
    expect(pod.metadata.labels).toEqual({
      tier: 'frontend',
      'kubevirt.io': 'virt-launcher',
      'kubevirt.io/created-by': VMI_UID_PLACEHOLDER,
      'vm.kubevirt.io/name': 'web',
    });
    expect(pod.metadata.annotations).toMatchObject({
      'kubevirt.io/domain': 'web',
      'kubectl.kubernetes.io/default-container': 'compute',
    });
  });

  it('keeps the template name within 63 characters and its label values whole for a 63-character VM', () => {
    const vm = fixtureVm();
    vm.metadata.name = `n${'a'.repeat(61)}z`;
    const long = renderLauncherPod(vm);
    expect(long.metadata.name).toBe(`virt-launcher-n${'a'.repeat(48)}`);
    expect(long.metadata.labels?.['vm.kubevirt.io/name']).toBe(vm.metadata.name);
    for (const v of Object.values(long.metadata.labels ?? {})) expect(v.length).toBeLessThanOrEqual(63);
  });

  it('is marked as a template that Flux/kustomize and Argo CD must not apply from dist/', () => {
    expect(pod.metadata.annotations).toMatchObject({
      'config.kubernetes.io/local-config': 'true',
      'argocd.argoproj.io/hook': 'Skip',
    });
  });

  it('is a valid Pod by the shared validator', () => {
    expect(validateManifest(pod)).toEqual([]);
  });

  it('never restarts; grace period is the VMI grace + 30 s', () => {
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.terminationGracePeriodSeconds).toBe(60);
    const long = renderLauncherPod(fixtureVm((vm) => { vm.spec.template.spec.terminationGracePeriodSeconds = 180; }));
    expect(long.spec.terminationGracePeriodSeconds).toBe(210);
    expect(launcherArgv(long, {})).toContain('195');
  });

  it('orders containers like KubeVirt: compute first, then one volume container per containerDisk', () => {
    expect(pod.spec.initContainers.map((c) => c.name)).toEqual(['container-disk-binary', 'volumerootdisk-init']);
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['compute', 'volumerootdisk']);
    const two = renderLauncherPod(fixtureVm((vm) => {
      vm.spec.template.spec.volumes!.push({ name: 'tools', containerDisk: { image: 'example.com/tools:1' } });
    }));
    expect(two.spec.initContainers.map((c) => c.name)).toEqual(['container-disk-binary', 'volumerootdisk-init', 'volumetools-init']);
    expect(two.spec.containers.map((c) => c.name)).toEqual(['compute', 'volumerootdisk', 'volumetools']);
    expect(two.spec.containers[2]!.command).toEqual(['/usr/bin/container-disk', '--copy-path', '/var/run/kubevirt-ephemeral-disks/container-disk-data/disk_1']);
    expect(two.spec.containers[2]!.image).toBe('example.com/tools:1');
  });

  it('runs the virtops launcher monitor with the documented flags', () => {
    const compute = pod.spec.containers[0]!;
    expect(compute.command).toEqual(['virtops', 'launcher-monitor']);
    expect(compute.args).toEqual([
      '--qemu-timeout', '240s', '--name', 'web', '--uid', '$(VMI_UID)', '--namespace', 'prod',
      '--kubevirt-share-dir', '/var/run/kubevirt', '--ephemeral-disk-dir', '/var/run/kubevirt-ephemeral-disks',
      '--container-disk-dir', '/var/run/kubevirt/container-disks', '--grace-period-seconds', '45',
      '--hook-sidecars', '0', '--emulation', 'auto',
    ]);
  });

  it('gets the VMI uid from its created-by label (downward API), expandable without a kubelet', () => {
    const compute = pod.spec.containers[0]!;
    expect(compute.env).toContainEqual({ name: 'VMI_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: "metadata.labels['kubevirt.io/created-by']" } } });
    const argv = launcherArgv(renderLauncherPod(fixtureVm(), { uid: 'abc-123' }), { VMI_UID: 'abc-123' });
    expect(argv.slice(0, 2)).toEqual(['virtops', 'launcher-monitor']);
    expect(argv[argv.indexOf('--uid') + 1]).toBe('abc-123');
    expect(renderLauncherPod(fixtureVm(), { uid: 'abc-123' }).metadata.labels!['kubevirt.io/created-by']).toBe('abc-123');
  });

  it('has the shared emptyDirs plus pass-through PVCs, mounted where KubeVirt mounts them', () => {
    expect(pod.spec.volumes.map((v) => v.name)).toEqual([...LAUNCHER_EMPTY_DIRS, 'data']);
    expect(pod.spec.volumes.at(-1)).toEqual({ name: 'data', persistentVolumeClaim: { claimName: 'web-data' } });
    const mounts = Object.fromEntries(pod.spec.containers[0]!.volumeMounts!.map((m) => [m.name, m.mountPath]));
    expect(mounts).toEqual({
      private: '/var/run/kubevirt-private',
      public: '/var/run/kubevirt',
      'ephemeral-disks': '/var/run/kubevirt-ephemeral-disks',
      'container-disks': '/var/run/kubevirt/container-disks',
      'libvirt-runtime': '/var/run/libvirt',
      sockets: '/var/run/kubevirt/sockets',
      'hotplug-disks': '/var/run/kubevirt/hotplug-disks',
      data: '/var/run/kubevirt-private/vmi-disks/data',
    });
  });

  it.each([
    ['hostDisk → its directory', { name: 'hd', hostDisk: { path: '/var/lib/vms/a.img', type: 'DiskOrCreate' as const, capacity: '1Gi' } }, { name: 'hd', hostPath: { path: '/var/lib/vms', type: 'DirectoryOrCreate' } }],
    ['dataVolume → its PVC', { name: 'dv', dataVolume: { name: 'web-dv' } }, { name: 'dv', persistentVolumeClaim: { claimName: 'web-dv' } }],
    ['ephemeral → read-only PVC', { name: 'eph', ephemeral: { persistentVolumeClaim: { claimName: 'golden' } } }, { name: 'eph', persistentVolumeClaim: { claimName: 'golden', readOnly: true } }],
    ['hotplug PVC → none', { name: 'hp', persistentVolumeClaim: { claimName: 'x', hotpluggable: true } }, undefined],
    ['emptyDisk → none (lives in ephemeral-disks)', { name: 'scratch', emptyDisk: { capacity: '1Gi' } }, undefined],
  ])('%s', (_, volume, expected) => {
    const p = renderLauncherPod(fixtureVm((vm) => { vm.spec.template.spec.volumes = [volume]; }));
    expect(p.spec.volumes.find((v) => v.name === volume.name)).toEqual(expected);
  });

  it('copies scheduling constraints from the VMI and requires a schedulable node', () => {
    const p = renderLauncherPod(fixtureVm((vm) => {
      Object.assign(vm.spec.template.spec, {
        nodeSelector: { disk: 'ssd' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'vms', effect: 'NoSchedule' }],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
      });
    }));
    expect(p.spec.nodeSelector).toEqual({ disk: 'ssd', 'kubevirt.io/schedulable': 'true' });
    expect(p.spec.tolerations).toHaveLength(1);
    expect(p.spec.affinity).toHaveProperty('nodeAffinity');
  });

  describe('resources', () => {
    it('requests guest memory + overhead, the VMI CPU request (default 100m), no limits by default', () => {
      const vm = fixtureVm();
      const overhead = computeOverhead(vm.spec.template.spec);
      const r = pod.spec.containers[0]!.resources;
      expect(r.requests).toEqual({ cpu: '100m', memory: formatBytes(2 ** 30 + overhead.total), 'ephemeral-storage': '50M' });
      expect(r.limits).toBeUndefined();
      expect(JSON.parse(pod.metadata.annotations![ANNOTATION_MEMORY_OVERHEAD]!)).toMatchObject({ total: formatBytes(overhead.total), pageTables: '2Mi' });
    });

    it('adds overhead to a memory limit and keeps CPU request/limit from the VMI', () => {
      const vm = fixtureVm((v) => { v.spec.template.spec.domain.resources = { requests: { memory: '1Gi', cpu: '500m' }, limits: { memory: '2Gi', cpu: '2' } }; });
      const total = computeOverhead(vm.spec.template.spec).total;
      const r = renderLauncherPod(vm).spec.containers[0]!.resources;
      expect(r.requests.cpu).toBe('500m');
      expect(r.limits).toEqual({ cpu: '2', memory: formatBytes(2 ** 31 + total) });
    });

    it('overcommitGuestOverhead leaves the overhead out of the request', () => {
      const vm = fixtureVm((v) => { v.spec.template.spec.domain.resources = { overcommitGuestOverhead: true }; });
      expect(renderLauncherPod(vm).spec.containers[0]!.resources.requests.memory).toBe('1Gi');
    });

    it('dedicated CPUs make the Pod Guaranteed: requests = limits, CPU = vCPUs', () => {
      const vm = fixtureVm((v) => { v.spec.template.spec.domain.cpu = { cores: 4, dedicatedCpuPlacement: true }; });
      const r = renderLauncherPod(vm).spec.containers[0]!.resources;
      expect(r.requests.cpu).toBe('4');
      expect(r.limits!.cpu).toBe('4');
      expect(r.limits!.memory).toBe(r.requests.memory);
      expect(parseQuantity(r.requests.memory!)).toBe(2 ** 30 + computeOverhead(vm.spec.template.spec).total);
    });
  });

  it('is deterministic and does not alias the VM', () => {
    const vm = fixtureVm((v) => { v.spec.template.spec.tolerations = [{ key: 'a', operator: 'Exists' }]; });
    const a = renderLauncherPod(vm);
    expect(renderLauncherPod(vm)).toEqual(a);
    a.spec.tolerations![0]!.key = 'changed';
    expect(vm.spec.template.spec.tolerations![0]!.key).toBe('a');
  });

  it('names the field to fix when the VM has no name', () => {
    expect(() => renderLauncherPod(fixtureVm((vm) => { delete vm.metadata.name; }))).toThrow(/metadata\.name/);
  });

  it('matches the reviewed snapshot', () => {
    expect(pod).toMatchSnapshot();
  });
});
