/** `VmAccess` over the local `virtops up` API (reconciler/standalone/api.ts). */
import { createConnection } from 'node:net';
import type { ImperativeAction } from '../reconciler/core/types.js';
import type { DiffEntry, VmView } from '../reconciler/standalone/backend.js';
import { apiCall, parseVmName, resolveTarget, type ApiTarget, type ConnectionOptions } from '../reconciler/standalone/client.js';
import { formatDescribe, formatVmTable, refusalNotice, type VmList } from '../reconciler/standalone/format.js';
import type { ConsoleStream, Described, DiffView, Listing, VmAccess, VmResource } from './vm-access.js';
import { hostname } from 'node:os';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import type { LauncherInfo } from '../launcher/launcher.js';
import { callLauncher } from '../launcher/server/client.js';
import { vmiGuestStatus } from '../reconciler/core/status.js';
import { formatVmiRows } from './cluster-format.js';

/** Pure: a single-host VM's instance as a VMI (KubeVirt's shape), from its launcher's /v1/info (undefined: it did not answer). */
export function localVmi(v: VmView, info: LauncherInfo | undefined, nodeName: string, nowIso: string): VirtualMachineInstance {
  const inst = v.instance!;
  const running = info?.phase === 'Running' && !info.paused;
  const guest = vmiGuestStatus(info?.guest, undefined, nowIso);
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: v.name, namespace: v.namespace, uid: inst.uid, creationTimestamp: inst.createdAt },
    spec: { domain: { devices: {} } },
    status: {
      phase: info?.phase ?? 'Unknown',
      ...(info?.reason ? { reason: info.reason } : {}),
      nodeName,
      conditions: [
        running
          ? { type: 'Ready', status: 'True' }
          : { type: 'Ready', status: 'False', reason: info ? (info.paused ? 'Paused' : `VMI${info.phase}`) : 'LauncherUnreachable', message: info ? (info.message ?? `VMI is ${info.phase}`) : `the launcher at ${inst.socket} did not answer (its socket is root's: run as root)` },
        ...(info?.paused ? [{ type: 'Paused', status: 'True', reason: 'PausedByUser' }] : []),
        ...guest.conditions.map(({ type, status }) => ({ type, status })),
      ],
      ...(guest.interfaces ? { interfaces: guest.interfaces } : {}),
      ...(guest.guestOSInfo ? { guestOSInfo: guest.guestOSInfo } : {}),
    },
  } as VirtualMachineInstance;
}

export class LocalAccess implements VmAccess {
  readonly mode = 'local' as const;
  private constructor(private readonly target: ApiTarget) {}

  static async connect(opts: ConnectionOptions, env: NodeJS.ProcessEnv): Promise<LocalAccess> {
    return new LocalAccess(await resolveTarget(opts, env));
  }

  private key(namespace: string | undefined, name: string): [string, string] {
    return parseVmName(name, namespace);
  }

  async list(resource: VmResource, scope: { namespace?: string; all: boolean }): Promise<Listing> {
    if (resource !== 'vmis') {
      const list = await apiCall<VmList>(this.target, 'GET', '/api/v1/vms');
      if (scope.namespace && !scope.all) list.vms = list.vms.filter((v) => v.namespace === scope.namespace);
      const allNamespaces = list.vms.some((v) => v.namespace !== 'default');
      const notice = refusalNotice(list);
      return {
        data: list,
        ...(notice ? { notice } : {}),
        empty: `No VMs${list.revision ? ` in revision ${list.revision.slice(0, 12)}` : ' (no revision applied yet)'}.`,
        table: ({ wide, now }) => (list.vms.length ? formatVmTable(list, { wide, now, allNamespaces }) : undefined),
      };
    }
    return this.listInstances(scope);
  }

  /**
   * Single host: one VMI per VM with an instance, from its launcher's own report (phase,
   * the guest's IPs, OS info, AgentConnected), in KubeVirt's VMI shape and columns. The
   * launcher sockets are root's (as for console and ssh); one that does not answer is listed
   * with the VM's status and says so.
   */
  private async listInstances(scope: { namespace?: string; all: boolean }): Promise<Listing> {
    const list = await apiCall<VmList>(this.target, 'GET', '/api/v1/vms');
    const vms = list.vms.filter((v) => v.instance && (!scope.namespace || scope.all || v.namespace === scope.namespace));
    const node = hostname();
    const vmis = await Promise.all(vms.map(async (v) => {
      const info = await callLauncher<LauncherInfo>(v.instance!.socket, 'GET', '/v1/info', undefined, 5000).then((r) => (r.status === 200 ? r.body : undefined), () => undefined);
      return localVmi(v, info, node, new Date().toISOString());
    }));
    const allNamespaces = vmis.some((v) => v.metadata.namespace !== 'default');
    return {
      data: { apiVersion: 'v1', kind: 'List', items: vmis },
      empty: 'No VMIs (no VM has a running instance).',
      table: ({ wide, now }) => (vmis.length ? formatVmiRows(vmis, { wide, now, allNamespaces }) : undefined),
    };
  }

  async describe(namespace: string | undefined, name: string): Promise<Described> {
    const [ns, n] = this.key(namespace, name);
    const v = await apiCall<VmView & { appliedRevision?: string | null; refused?: VmList['refused'] }>(this.target, 'GET', `/api/v1/vms/${ns}/${n}`);
    return { data: v, text: (now) => formatDescribe(v, now) };
  }

  async act(namespace: string | undefined, name: string, action: ImperativeAction): Promise<string> {
    const [ns, n] = this.key(namespace, name);
    const v = await apiCall<VmView>(this.target, 'POST', `/api/v1/vms/${ns}/${n}/${action}`);
    return `virtualmachine ${v.namespace}/${v.name}: ${action} requested (override; the next commit changing this VM clears it)`;
  }

  async diff(): Promise<DiffView> {
    return apiCall<{ applied?: string; next?: string; entries: DiffEntry[] }>(this.target, 'GET', '/api/v1/diff');
  }

  async reconcile(): Promise<string> {
    const r = await apiCall<{ revision?: string | null }>(this.target, 'POST', '/api/v1/reconcile').catch((err: Error) => {
      if (/no endpoint/.test(err.message)) throw new Error('this virtops up has no reconcile endpoint (older version): push to its repository or call its --webhook-listen hook');
      throw err;
    });
    return `virtops up: source checked; applied revision ${r.revision?.slice(0, 12) ?? '(none)'}`;
  }

  async console(namespace: string | undefined, name: string): Promise<ConsoleStream> {
    const [ns, n] = this.key(namespace, name);
    const v = await apiCall<VmView>(this.target, 'GET', `/api/v1/vms/${ns}/${n}`);
    if (!v.instance) throw new Error(`VM ${ns}/${n} has no running instance (status ${v.status?.printableStatus ?? 'Unknown'}): start it with virtops start ${n}`);
    const path = v.instance.console;
    const socket = await new Promise<ReturnType<typeof createConnection>>((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', (err) => reject(new Error(`cannot attach to ${path}: ${err.message} (is the domain running? see virtops describe vm ${n})`)));
    });
    return { socket, label: v.instance.domain };
  }
}
