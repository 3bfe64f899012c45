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

/** The VMI status the agent writes: api's type plus KubeVirt's launcherContainerImageVersion. */
export type AgentVmiStatus = VirtualMachineInstanceStatus & { launcherContainerImageVersion?: string };

/**
 * Pure: the VMI status the agent reports, keeping condition times while their status holds.
 * `launcherImage`: the launcher Pod's compute container image (KubeVirt's
 * launcherContainerImageVersion), written with the first report.
 */
export function vmiStatusFor(vmi: VirtualMachineInstance, view: LauncherView, nodeName: string, now: Date, launcherImage?: string): { status: AgentVmiStatus; signature: string } {
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
  const status: AgentVmiStatus = {
    phase: view.phase,
    ...(view.reason && view.phase !== 'Running' ? { reason: view.reason } : {}),
    nodeName,
    conditions,
    // Without the launcher's guest report: interface names (and set MACs) from the spec.
    interfaces: guest?.interfaces ?? (vmi.spec.domain.devices.interfaces ?? []).map((i) => ({ name: i.name, ...(i.macAddress ? { mac: i.macAddress } : {}) })),
    ...(guest?.guestOSInfo ? { guestOSInfo: guest.guestOSInfo } : {}),
    phaseTransitionTimestamps: transitions,
    ...(launcherImage ? { launcherContainerImageVersion: launcherImage } : {}),
  };
  return { status, signature: vmiStatusSignature(status) };
}

export function vmiStatusSignature(s: AgentVmiStatus | undefined): string {
  const c = (t: string) => s?.conditions?.find((x) => x.type === t)?.status ?? null;
  return canonicalJson({
    phase: s?.phase ?? null, reason: s?.reason ?? null, node: s?.nodeName ?? null, ready: c('Ready'), paused: c('Paused'), sync: c('Synchronized'),
    image: s?.launcherContainerImageVersion ?? null,
    // The guest's part: written again when the agent comes or goes, or an address or the OS changes.
    agent: c('AgentConnected'), ips: (s?.interfaces ?? []).map((i) => i.ipAddresses ?? i.ipAddress ?? null), os: s?.guestOSInfo?.prettyName ?? null,
  });
}

// ---- fewer VMI status writes --------------------------------------------------------------

/** How long a VMI's first Running report waits for the launcher to know the domain's NICs. */
export const NIC_WAIT_MS = 2000;
/** How often the agent looks again while it waits. */
export const NIC_RECHECK_MS = 100;

/**
 * Pure: whether the VMI's domain gets NICs: the interfaces it names, or, naming none (and no
 * networks), the `default` pod interface KubeVirt attaches unless autoattachPodInterface is
 * false (launcher/convert/interfaces.ts converts the same rule).
 */
export function vmiHasNics(spec: VirtualMachineInstance['spec']): boolean {
  const devices = spec.domain.devices;
  if ((devices.interfaces?.length ?? 0) > 0) return true;
  return devices.interfaces === undefined && spec.networks === undefined && devices.autoattachPodInterface !== false;
}

/**
 * Pure: whether to hold the report of a VMI that has just become Running because the
 * launcher reports the guest but not yet its NICs (it reads them from the live domain right
 * after the start). Reporting at once costs two writes, Running with no interfaces and then
 * the same with them; holding costs a few ms. Bounded: NIC_WAIT_MS after the first such
 * view (`waitingSince`, kept by the caller for the launcher's life: the wait is never
 * restarted) the VMI is reported as it is, so a NIC that never shows (a launcher that cannot
 * read its domain) delays nothing for long. Only a VMI not yet shown Running waits.
 */
export function holdRunningReport(spec: VirtualMachineInstance['spec'], shownPhase: VMIPhase | undefined, view: LauncherView, waitingSince: number | undefined, now: number): { hold: false } | { hold: true; since: number; retryInMs: number } {
  if (!view.reachable || view.phase !== 'Running' || !view.guest || view.guest.interfaces.length > 0) return { hold: false };
  if (shownPhase === 'Running' || !vmiHasNics(spec)) return { hold: false };
  const since = waitingSince ?? now;
  const left = since + NIC_WAIT_MS - now;
  return left > 0 ? { hold: true, since, retryInMs: Math.min(NIC_RECHECK_MS, left) } : { hold: false };
}

/** How long the agent trusts its own last VMI report over a cache showing an older state. */
export const STALE_ECHO_MS = 10_000;

/** What the agent last wrote of one VMI's status, and the signatures that write superseded. */
export interface VmiReport {
  status: AgentVmiStatus;
  signature: string;
  at: number;
  /** Signatures the cache may still show for a while: what it showed before each write, and earlier writes. */
  superseded: string[];
}

/**
 * Pure: the VMI status to build the next report on. The cache's, except while it still shows
 * a state this agent's last report superseded: the watch events of two quick writes can
 * arrive after both were made, and the first one's would make the second look undone (the
 * debug run of bench:cluster saw a third, identical patch that way). Trusted for at most
 * STALE_ECHO_MS after the write, so a status someone else changed back is still corrected.
 */
export function currentVmiStatus(cached: AgentVmiStatus | undefined, last: VmiReport | undefined, now: number): AgentVmiStatus | undefined {
  if (!last || now - last.at > STALE_ECHO_MS) return cached;
  const sig = vmiStatusSignature(cached);
  return sig !== last.signature && last.superseded.includes(sig) ? last.status : cached;
}

/** Pure: the memory of a write of `status` over a cache that showed `before` (the last 8 superseded signatures kept). */
export function vmiReportAfterWrite(last: VmiReport | undefined, status: AgentVmiStatus, signature: string, before: string, now: number): VmiReport {
  const superseded = [...new Set([...(last?.superseded ?? []), ...(last ? [last.signature] : []), before])].filter((s) => s !== signature).slice(-8);
  return { status, signature, at: now, superseded };
}
