import { describe, expect, it } from 'vitest';
import { DEFAULT_VMI_GRACE_SECONDS, launcherGraceSeconds, launcherPodGraceSeconds, vmiGraceSeconds } from '../../../api/grace.js';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { decideVmActions } from '../../../reconciler/core/index.js';

describe('grace periods: one owner', () => {
  it("KubeVirt's default VMI grace is 30 s; the launcher flag pads 15 s, the Pod 30 s", () => {
    expect(DEFAULT_VMI_GRACE_SECONDS).toBe(30);
    expect([vmiGraceSeconds(undefined), launcherGraceSeconds({}), launcherPodGraceSeconds({})]).toEqual([30, 45, 60]);
    expect([vmiGraceSeconds({ terminationGracePeriodSeconds: 0 }), launcherPodGraceSeconds({ terminationGracePeriodSeconds: 5 })]).toEqual([0, 35]);
  });

  it('a stop without a VMI grace gives the guest 30 s (not 180)', () => {
    const vm = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a' }, spec: { runStrategy: 'Halted', template: { spec: { domain: { devices: {} } } } } } as unknown as VirtualMachine;
    const [a] = decideVmActions(vm, { uid: 'u', phase: 'Running', spec: vm.spec.template.spec, createdAt: 0 }, { now: 1 });
    expect(a).toMatchObject({ type: 'delete-instance', gracePeriodSeconds: 30 });
  });
});
