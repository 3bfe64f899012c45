/**
 * The node agent's pure half: its Node object (as a virtual kubelet registers one), the
 * launcher Pod status it reports in process-runtime mode, and the VMI status it reports
 * from the launcher. Each status comes with a signature: the agent writes only when the
 * signature changes, so a steady VM costs no writes at all.
 */
import type { V1Node, V1Pod, V1PodCondition, V1ContainerStatus } from '@kubernetes/client-node';
import type { Condition, VirtualMachineInstance, VirtualMachineInstanceStatus, VMIPhase } from '../../api/kubevirt.js';
import { canonicalJson } from '../core/index.js';
import type { ObservedGuest } from '../core/launcher-phase.js';
import { vmiGuestStatus } from '../core/status.js';

export const LABEL_SCHEDULABLE = 'kubevirt.io/schedulable';

export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
  pods: number;
  /** Size of the filesystem launcher Pod directories live on (emptyDirs count against it). */
  ephemeralStorageBytes: number;
}

/** Pure: the Node a process-runtime agent registers, Ready, with the host's capacity. */
export function nodeManifest(name: string, cap: HostCapacity, now: Date, version: string): V1Node {
  const resources = {
    cpu: String(cap.cpus),
    memory: `${Math.floor(cap.memoryBytes / 1024)}Ki`,
    pods: String(cap.pods),
    // Launcher Pods request ephemeral-storage: without it the scheduler finds no room.
    'ephemeral-storage': `${Math.floor(cap.ephemeralStorageBytes / 1024)}Ki`,
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        [LABEL_SCHEDULABLE]: 'true',
        'node.virtops.io/process-runtime': 'true',
      },
    },
    spec: {},
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: nodeConditions(now),
      addresses: [{ type: 'Hostname', address: name }],
      nodeInfo: {
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        bootID: '', containerRuntimeVersion: 'virtops-process://0.1.0', kernelVersion: '', kubeProxyVersion: '', kubeletVersion: version,
        machineID: '', operatingSystem: 'linux', osImage: 'virtops process runtime', systemUUID: '',
      },
    },
  };
}

export function nodeConditions(now: Date): NonNullable<NonNullable<V1Node['status']>['conditions']> {
  const c = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: now });
  return [
    c('Ready', 'True', 'VirtopsAgentReady', 'virtops agent (process runtime) is running launchers'),
    c('MemoryPressure', 'False', 'VirtopsAgentHasSufficientMemory', 'not measured by the process runtime'),
    c('DiskPressure', 'False', 'VirtopsAgentHasNoDiskPressure', 'not measured by the process runtime'),
    c('PIDPressure', 'False', 'VirtopsAgentHasSufficientPID', 'not measured by the process runtime'),
  ];
}

/** What the process runtime knows about a launcher Pod's process. */
export type ProcessState =
  | { state: 'starting' }
  | { state: 'running'; startedAt: Date }
  | { state: 'exited'; exitCode: number; reason: string; message?: string; startedAt?: Date; finishedAt: Date };

/** Pure: the Pod status kubelet would report for this process (phase, conditions, containers). */
export function podStatusFor(pod: V1Pod, p: ProcessState, hostIP: string, now: Date): { status: Record<string, unknown>; signature: string } {
  const containers = pod.spec?.containers ?? [];
  const prev = pod.status;
  const keepTime = (type: string, status: string): Date => {
    const before = prev?.conditions?.find((c) => c.type === type);
    return before && before.status === status && before.lastTransitionTime ? new Date(before.lastTransitionTime) : now;
  };
  const running = p.state === 'running';
  const phase = p.state === 'exited' ? (p.exitCode === 0 ? 'Succeeded' : 'Failed') : p.state === 'running' ? 'Running' : 'Pending';
  const ready = running ? 'True' : 'False';
  const cond = (type: string, status: string, reason?: string): V1PodCondition => ({ type, status, lastTransitionTime: keepTime(type, status), ...(reason ? { reason } : {}) });
  const scheduled = prev?.conditions?.find((c) => c.type === 'PodScheduled') ?? { type: 'PodScheduled', status: 'True', lastTransitionTime: now };
  const conditions: V1PodCondition[] = [
    cond('Initialized', 'True'),
    cond('Ready', ready, running ? undefined : p.state === 'exited' ? 'PodCompleted' : 'ContainersNotReady'),
    cond('ContainersReady', ready, running ? undefined : p.state === 'exited' ? 'PodCompleted' : 'ContainersNotReady'),
    scheduled,
  ];
  const containerStatuses: V1ContainerStatus[] = containers.map((c) => ({
    name: c.name,
    image: c.image ?? '',
    imageID: '',
    ready: running,
    restartCount: 0,
    started: running,
    state:
      p.state === 'running'
        ? { running: { startedAt: p.startedAt } }
        : p.state === 'exited'
          ? { terminated: { exitCode: p.exitCode, reason: p.reason, ...(p.message ? { message: p.message } : {}), ...(p.startedAt ? { startedAt: p.startedAt } : {}), finishedAt: p.finishedAt } }
          : { waiting: { reason: 'ContainerCreating' } },
  }));
  const startTime = prev?.startTime ?? now;
  const status = {
    phase,
    conditions,
    containerStatuses,
    hostIP,
    hostIPs: [{ ip: hostIP }],
    startTime,
    ...(p.state === 'exited' && p.message ? { message: p.message } : {}),
  };
  const signature = canonicalJson({ phase, ready, states: containerStatuses.map((c) => Object.keys(c.state ?? {})[0]), hostIP });
  return { status, signature };
}

/** The signature of the Pod status as the API server has it (same fields as podStatusFor's). */
export function podStatusSignature(pod: V1Pod): string {
  const s = pod.status;
  const ready = s?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'False';
  return canonicalJson({ phase: s?.phase, ready, states: (s?.containerStatuses ?? []).map((c) => Object.keys(c.state ?? {}).find((k) => (c.state as Record<string, unknown>)[k] !== undefined)), hostIP: s?.hostIP });
}

/** What the launcher said last (LauncherInfo's relevant fields), or that it cannot be reached. */
export type LauncherView =
  | { reachable: true; phase: VMIPhase; reason?: string; message?: string; paused: boolean; guest?: ObservedGuest }
  | { reachable: false; phase: VMIPhase; reason: string; message: string; paused?: boolean };

/** Pure: the VMI status the agent reports, keeping condition times while their status holds. */
export function vmiStatusFor(vmi: VirtualMachineInstance, view: LauncherView, nodeName: string, now: Date): { status: VirtualMachineInstanceStatus; signature: string } {
  const prev = vmi.status;
  const nowIso = now.toISOString();
  const keep = (type: string, status: string): string => {
    const before = prev?.conditions?.find((c) => c.type === type);
    return before && before.status === status && before.lastTransitionTime ? before.lastTransitionTime : nowIso;
  };
  const paused = view.paused === true;
  const ready = view.phase === 'Running' && !paused;
  const conditions: Condition[] = [
    ready
      ? { type: 'Ready', status: 'True', lastTransitionTime: keep('Ready', 'True') }
      : { type: 'Ready', status: 'False', reason: paused ? 'Paused' : view.reason ?? `VMI${view.phase}`, message: view.message ?? `VMI is ${view.phase}`, lastTransitionTime: keep('Ready', 'False') },
  ];
  if (paused) conditions.push({ type: 'Paused', status: 'True', reason: 'PausedByUser', message: 'VMI was paused by user', lastTransitionTime: keep('Paused', 'True') });
  // The launcher owns the domain and re-syncs it from this VMI: it is in sync while it answers.
  conditions.push(view.reachable
    ? { type: 'Synchronized', status: 'True', lastTransitionTime: keep('Synchronized', 'True') }
    : { type: 'Synchronized', status: 'False', reason: view.reason, message: view.message, lastTransitionTime: keep('Synchronized', 'False') });
  const transitions = [...(prev?.phaseTransitionTimestamps ?? [])];
  if (prev?.phase !== view.phase && !transitions.some((t) => t.phase === view.phase)) transitions.push({ phase: view.phase, phaseTransitionTimestamp: nowIso });
  // The guest as the launcher reports it (NICs with the agent's IPs, OS info, AgentConnected).
  const guest = view.reachable && view.guest ? vmiGuestStatus(view.guest, prev?.conditions, nowIso) : undefined;
  if (guest) conditions.push(...guest.conditions);
  const status: VirtualMachineInstanceStatus = {
    phase: view.phase,
    ...(view.reason && view.phase !== 'Running' ? { reason: view.reason } : {}),
    nodeName,
    conditions,
    // Without the launcher's guest report: interface names (and set MACs) from the spec.
    interfaces: guest?.interfaces ?? (vmi.spec.domain.devices.interfaces ?? []).map((i) => ({ name: i.name, ...(i.macAddress ? { mac: i.macAddress } : {}) })),
    ...(guest?.guestOSInfo ? { guestOSInfo: guest.guestOSInfo } : {}),
    phaseTransitionTimestamps: transitions,
  };
  return { status, signature: vmiStatusSignature(status) };
}

export function vmiStatusSignature(s: VirtualMachineInstanceStatus | undefined): string {
  const c = (t: string) => s?.conditions?.find((x) => x.type === t)?.status ?? null;
  return canonicalJson({
    phase: s?.phase ?? null, reason: s?.reason ?? null, node: s?.nodeName ?? null, ready: c('Ready'), paused: c('Paused'), sync: c('Synchronized'),
    // The guest's part: written again when the agent comes or goes, or an address or the OS changes.
    agent: c('AgentConnected'), ips: (s?.interfaces ?? []).map((i) => i.ipAddresses ?? i.ipAddress ?? null), os: s?.guestOSInfo?.prettyName ?? null,
  });
}
