import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import { nodeManifest, podStatusFor, podStatusSignature, vmiStatusFor, vmiStatusSignature } from '../../../reconciler/cluster/agent-status.js';

const NOW = new Date('2025-01-01T00:00:00Z');
const LATER = new Date('2025-01-01T00:05:00Z');

function pod(status?: V1Pod['status']): V1Pod {
  return {
    metadata: { name: 'virt-launcher-web-abcde', namespace: 'default' },
    spec: { nodeName: 'n1', containers: [{ name: 'compute', image: 'virtops:1' }] },
    ...(status ? { status } : { status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] } }),
  };
}

function vmi(status?: VirtualMachineInstance['status']): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'web', namespace: 'default', uid: 'u1' },
    spec: { domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, macAddress: '02:00:00:00:00:01' }] } } },
    ...(status ? { status } : {}),
  };
}

describe('nodeManifest', () => {
  it('registers a Ready, schedulable node with the host capacity', () => {
    const n = nodeManifest('n1', { cpus: 2, memoryBytes: 4 * 1024 ** 3, pods: 110, ephemeralStorageBytes: 1024 ** 3 }, NOW, 'v');
    expect(n.metadata?.labels).toMatchObject({ 'kubevirt.io/schedulable': 'true', 'kubernetes.io/hostname': 'n1' });
    expect(n.status?.capacity).toEqual({ cpu: '2', memory: '4194304Ki', pods: '110', 'ephemeral-storage': '1048576Ki' });
    expect(n.status?.allocatable).toEqual(n.status?.capacity);
    expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});

describe('podStatusFor', () => {
  it('running process → Running, Ready, compute container running (PodScheduled from the scheduler kept)', () => {
    const { status } = podStatusFor(pod(), { state: 'running', startedAt: NOW }, '127.0.0.1', NOW);
    expect(status).toMatchObject({ phase: 'Running', hostIP: '127.0.0.1' });
    const conds = status['conditions'] as { type: string; status: string }[];
    expect(conds.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(conds.find((c) => c.type === 'PodScheduled')?.status).toBe('True');
    expect((status['containerStatuses'] as { state: object; ready: boolean }[])[0]).toMatchObject({ ready: true, state: { running: { startedAt: NOW } } });
    expect(status['podIP']).toBeUndefined();
  });

  it.each([
    [0, 'Succeeded'],
    [1, 'Failed'],
  ])('process exited with %i → %s, not ready', (exitCode, phase) => {
    const { status } = podStatusFor(pod(), { state: 'exited', exitCode, reason: 'X', finishedAt: NOW }, '127.0.0.1', NOW);
    expect(status['phase']).toBe(phase);
    expect((status['conditions'] as { type: string; status: string }[]).find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('the signature of what was written equals the signature read back, so a steady Pod costs no write', () => {
    const { status, signature } = podStatusFor(pod(), { state: 'running', startedAt: NOW }, '127.0.0.1', NOW);
    const readBack = pod(JSON.parse(JSON.stringify(status)) as V1Pod['status']);
    expect(podStatusSignature(readBack)).toBe(signature);
    expect(podStatusSignature(pod())).not.toBe(signature);
    // And condition times are kept while their status holds.
    const again = podStatusFor(readBack, { state: 'running', startedAt: NOW }, '127.0.0.1', LATER);
    expect((again.status['conditions'] as { type: string; lastTransitionTime: Date }[]).find((c) => c.type === 'Ready')?.lastTransitionTime).toEqual(NOW);
  });
});

describe('vmiStatusFor', () => {
  it('Running from the launcher → phase Running, node, Ready and Synchronized True, interfaces from the spec', () => {
    const { status, signature } = vmiStatusFor(vmi(), { reachable: true, phase: 'Running', paused: false }, 'n1', NOW);
    expect(status).toMatchObject({ phase: 'Running', nodeName: 'n1', interfaces: [{ name: 'default', mac: '02:00:00:00:00:01' }] });
    expect(status.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=True', 'Synchronized=True']);
    expect(status.phaseTransitionTimestamps).toEqual([{ phase: 'Running', phaseTransitionTimestamp: NOW.toISOString() }]);
    expect(vmiStatusSignature(status)).toBe(signature);
  });

  it('paused → Ready False (Paused) and Paused True', () => {
    const { status } = vmiStatusFor(vmi(), { reachable: true, phase: 'Running', paused: true }, 'n1', NOW);
    expect(status.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=False', 'Paused=True', 'Synchronized=True']);
  });

  it('an unreachable launcher → not Synchronized, with the reason', () => {
    const { status } = vmiStatusFor(vmi(), { reachable: false, phase: 'Failed', reason: 'LauncherExited', message: 'gone' }, 'n1', NOW);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'LauncherExited' });
    expect(status.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({ status: 'False', reason: 'LauncherExited' });
  });

  it('keeps transition times and appends only new phases', () => {
    const first = vmiStatusFor(vmi(), { reachable: true, phase: 'Running', paused: false }, 'n1', NOW).status;
    const second = vmiStatusFor(vmi(first), { reachable: true, phase: 'Running', paused: false }, 'n1', LATER).status;
    expect(second).toEqual(first);
    const done = vmiStatusFor(vmi(first), { reachable: true, phase: 'Succeeded', paused: false }, 'n1', LATER).status;
    expect(done.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Running', 'Succeeded']);
  });
});
