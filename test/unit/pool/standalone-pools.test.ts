/**
 * Single host: withPoolVms turns a revision's pools into VMs and launcher Pods as if they
 * were in git (owned VMs read from the previously applied revision); poolViews reports status.
 */
import { describe, expect, it } from 'vitest';
import type { VirtualMachinePool } from '../../../api/pool.js';
import type { KubeObject } from '../../../reconciler/core/types.js';
import { poolViews, withPoolVms } from '../../../reconciler/standalone/pools.js';
import { LABEL_VM_NAME } from '../../../synth/launcher-pod.js';

function pool(replicas: number, sortPolicy?: 'AscendingOrder'): KubeObject {
  const p: VirtualMachinePool = {
    apiVersion: 'pool.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePool',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      virtualMachineTemplate: {
        metadata: { labels: { app: 'web' } },
        spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {}, memory: { guest: '64Mi' } } } } },
      },
      ...(sortPolicy ? { scaleInStrategy: { proactive: { selectionPolicy: { sortPolicy } } } } : {}),
    },
  };
  return p as unknown as KubeObject;
}
const gitVm = (name: string): KubeObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace: 'default' }, spec: {} });
const vmNames = (ms: KubeObject[]) => ms.filter((m) => m.kind === 'VirtualMachine').map((m) => m.metadata.name);
const podVms = (ms: KubeObject[]) => ms.filter((m) => m.kind === 'Pod').map((m) => (m.metadata['labels'] as Record<string, string>)[LABEL_VM_NAME]);

describe('withPoolVms', () => {
  it('a revision without pools is unchanged', () => {
    const ms = [gitVm('a')];
    expect(withPoolVms(ms, [])).toEqual(ms);
  });

  it('adds the VMs and their launcher Pods; keeps the pool object', () => {
    const out = withPoolVms([pool(3)], []);
    expect(out.filter((m) => m.kind === 'VirtualMachinePool')).toHaveLength(1);
    expect(vmNames(out)).toEqual(['web-0', 'web-1', 'web-2']);
    expect(podVms(out)).toEqual(['web-0', 'web-1', 'web-2']);
  });

  it('scales from what the applied revision owned; a git VM keeps its name', () => {
    const applied = withPoolVms([pool(3)], []);
    expect(vmNames(withPoolVms([pool(5)], applied))).toEqual(['web-0', 'web-1', 'web-2', 'web-3', 'web-4']);
    const five = withPoolVms([pool(5)], applied);
    expect(vmNames(withPoolVms([pool(2)], five))).toEqual(['web-0', 'web-1']);
    expect(vmNames(withPoolVms([pool(2, 'AscendingOrder')], five))).toEqual(['web-3', 'web-4']);
    // git declares web-1 itself: the pool gives it up and takes the next free index.
    expect(vmNames(withPoolVms([gitVm('web-1'), pool(3)], applied))).toEqual(['web-1', 'web-0', 'web-2', 'web-3']);
  });

  it('poolViews: desired, status from Ready, the VMs', () => {
    const applied = withPoolVms([pool(3)], []);
    const views = poolViews(applied, (_ns, name) => name !== 'web-2');
    expect(views).toEqual([{ namespace: 'default', name: 'web', desired: 3, paused: false, status: { replicas: 3, readyReplicas: 2, labelSelector: 'app=web' }, vms: ['web-0', 'web-1', 'web-2'] }]);
  });
});
