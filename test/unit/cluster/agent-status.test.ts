import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import { NIC_WAIT_MS, STALE_ECHO_MS, currentVmiStatus, holdRunningReport, nodeManifest, podStatusFor, podStatusSignature, vmiHasNics, vmiReportAfterWrite, vmiStatusFor, vmiStatusSignature, type LauncherView } from '../../../reconciler/cluster/agent-status.js';

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

  it("the launcher Pod's compute image → launcherContainerImageVersion, in the signature (written with the first report)", () => {
    const { status, signature } = vmiStatusFor(vmi(), { reachable: true, phase: 'Running', paused: false }, 'n1', NOW, 'virtops:1');
    expect(status.launcherContainerImageVersion).toBe('virtops:1');
    expect(vmiStatusSignature(status)).toBe(signature);
    expect(signature).not.toBe(vmiStatusFor(vmi(), { reachable: true, phase: 'Running', paused: false }, 'n1', NOW).signature);
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

describe('holdRunningReport: the first Running report waits for the NICs', () => {
  const T = 1_000_000;
  const noNics: LauncherView = { reachable: true, phase: 'Running', paused: false, guest: { agentConnected: false, interfaces: [] } };
  const nics: LauncherView = { ...noNics, guest: { agentConnected: false, interfaces: [{ name: 'default', mac: '52:54:00:00:00:01', infoSource: 'domain' }] } };
  const spec = vmi().spec;

  it('holds while the launcher reports the guest without NICs, from the first such view, at most NIC_WAIT_MS', () => {
    expect(holdRunningReport(spec, undefined, noNics, undefined, T)).toEqual({ hold: true, since: T, retryInMs: 100 });
    expect(holdRunningReport(spec, 'Scheduled', noNics, T, T + 500)).toEqual({ hold: true, since: T, retryInMs: 100 });
    expect(holdRunningReport(spec, undefined, noNics, T, T + NIC_WAIT_MS - 40)).toEqual({ hold: true, since: T, retryInMs: 40 });
    expect(holdRunningReport(spec, undefined, noNics, T, T + NIC_WAIT_MS)).toEqual({ hold: false });
  });

  it.each<[string, Parameters<typeof holdRunningReport>]>([
    ['the NICs are known', [spec, undefined, nics, undefined, T]],
    ['the VMI already shows Running (a guest that drops its NICs later is reported at once)', [spec, 'Running', noNics, undefined, T]],
    ['the launcher reports no guest at all (an older launcher)', [spec, undefined, { reachable: true, phase: 'Running', paused: false }, undefined, T]],
    ['not Running', [spec, undefined, { ...noNics, phase: 'Scheduled' }, undefined, T]],
    ['the launcher cannot be reached', [spec, undefined, { reachable: false, phase: 'Running', reason: 'LauncherUnresponsive', message: 'silent' }, undefined, T]],
    ['the VMI has no NICs (autoattachPodInterface: false)', [{ domain: { devices: { autoattachPodInterface: false } } }, undefined, noNics, undefined, T]],
  ])('reports at once when %s', (_name, args) => {
    expect(holdRunningReport(...args)).toEqual({ hold: false });
  });

  it('vmiHasNics: named interfaces, or none and no networks (the default pod interface), unless autoattachPodInterface is false', () => {
    expect(vmiHasNics(spec)).toBe(true);
    expect(vmiHasNics({ domain: { devices: {} } })).toBe(true);
    expect(vmiHasNics({ domain: { devices: { autoattachPodInterface: false } } })).toBe(false);
    expect(vmiHasNics({ domain: { devices: { interfaces: [] } } })).toBe(false);
    expect(vmiHasNics({ domain: { devices: {} }, networks: [] })).toBe(false);
  });
});

describe('currentVmiStatus: a cache behind the last write does not cause the same write again', () => {
  const T = 1_000_000;
  const first = vmiStatusFor(vmi(), { reachable: true, phase: 'Running', paused: false, guest: { agentConnected: false, interfaces: [] } }, 'n1', NOW);
  const second = vmiStatusFor(vmi(first.status), { reachable: true, phase: 'Running', paused: false, guest: { agentConnected: true, interfaces: [{ name: 'default', ipAddress: '10.0.2.2', ipAddresses: ['10.0.2.2'], infoSource: 'domain, guest-agent' }] } }, 'n1', NOW);
  const afterFirst = vmiReportAfterWrite(undefined, first.status, first.signature, vmiStatusSignature(undefined), T);
  const afterSecond = vmiReportAfterWrite(afterFirst, second.status, second.signature, first.signature, T + 10);

  it('while the cache shows what a write superseded, the last written status is the current one', () => {
    expect(afterSecond.superseded).toEqual([vmiStatusSignature(undefined), first.signature]);
    // The watch event of the first write arrives after the second write: it is not undone.
    expect(currentVmiStatus(first.status, afterSecond, T + 20)).toBe(second.status);
    // Before any event (the cache shows the empty status).
    expect(currentVmiStatus(undefined, afterSecond, T + 20)).toBe(second.status);
    // The same view again: the same signature, so no write.
    expect(vmiStatusSignature(currentVmiStatus(first.status, afterSecond, T + 20))).toBe(second.signature);
  });

  it('the cache is trusted when it shows the last write, something no write superseded, or once STALE_ECHO_MS have passed', () => {
    const caught = structuredClone(second.status);
    expect(currentVmiStatus(caught, afterSecond, T + 20)).toBe(caught);
    const other = vmiStatusFor(vmi(), { reachable: false, phase: 'Failed', reason: 'X', message: 'm' }, 'n1', NOW).status;
    expect(currentVmiStatus(other, afterSecond, T + 20)).toBe(other);
    expect(currentVmiStatus(first.status, afterSecond, T + 10 + STALE_ECHO_MS + 1)).toBe(first.status);
    expect(currentVmiStatus(first.status, undefined, T)).toBe(first.status);
  });

  it('a signature written again leaves the superseded list (a VMI paused and resumed)', () => {
    const paused = vmiStatusFor(vmi(first.status), { reachable: true, phase: 'Running', paused: true }, 'n1', NOW);
    const afterPause = vmiReportAfterWrite(afterFirst, paused.status, paused.signature, first.signature, T + 10);
    const afterResume = vmiReportAfterWrite(afterPause, first.status, first.signature, paused.signature, T + 20);
    expect(afterResume.superseded).not.toContain(first.signature);
    expect(afterResume.superseded).toContain(paused.signature);
  });
});
