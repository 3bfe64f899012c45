import type { RunStrategy, VirtualMachine, VirtualMachineInstanceSpec } from '../../../api/kubevirt.js';
import type { ObservedInstance } from '../../../reconciler/core/index.js';

export const T0 = Date.parse('2025-01-01T00:00:00Z');
export const SEC = 1000;

export function templateSpec(memory = '128Mi'): VirtualMachineInstanceSpec {
  return {
    domain: { resources: { requests: { memory } }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
    volumes: [{ name: 'root', containerDisk: { image: 'registry.local/tiny:1' } }],
    terminationGracePeriodSeconds: 30,
  };
}

export function vm(opts: { runStrategy?: RunStrategy; running?: boolean; annotations?: Record<string, string>; memory?: string; generation?: number; deleting?: boolean } = {}): VirtualMachine {
  const spec: VirtualMachine['spec'] = { template: { spec: templateSpec(opts.memory) } };
  if (opts.runStrategy !== undefined) spec.runStrategy = opts.runStrategy;
  if (opts.running !== undefined) spec.running = opts.running;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: {
      name: 'web',
      namespace: 'default',
      generation: opts.generation ?? 1,
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      ...(opts.deleting ? { deletionTimestamp: new Date(T0).toISOString() } : {}),
    },
    spec,
  };
}

export function inst(phase: ObservedInstance['phase'], extra: Partial<ObservedInstance> = {}): ObservedInstance {
  return {
    uid: 'u1',
    phase,
    spec: templateSpec(),
    createdAt: T0 - 60 * SEC,
    ...(phase === 'Running' ? { runningSince: T0 - 50 * SEC, ready: true } : {}),
    ...(phase === 'Succeeded' || phase === 'Failed' ? { runningSince: T0 - 50 * SEC, finishedAt: T0 - 5 * SEC } : {}),
    ...extra,
  };
}
