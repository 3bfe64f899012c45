/**
 * The API of `virtops up` for persistent disks (served by api.ts through `extraRoutes`):
 *
 *   GET  /api/v1/datavolumes                      { items: DataVolume[] } (CDI's status)
 *   GET  /api/v1/snapshots                        { items: VirtualMachineSnapshot[] }
 *   POST /api/v1/snapshots                        { namespace?, name, vm, failureDeadline? } → 202 the snapshot
 *   POST /api/v1/snapshots/:ns/:name/delete       → 200
 *   GET  /api/v1/restores                         { items: VirtualMachineRestore[] }
 *   POST /api/v1/restores                         { namespace?, name, snapshot, target?, targetReadinessPolicy?, volumeRestoreOverrides? } → 202
 *
 * Every non-GET is a JSON POST (api-guard.ts refuses anything else before this runs).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataVolumeWorker } from './datavolumes.js';
import { type SnapshotWorker, UserError } from './snapshots.js';
import { defaultRestoreName, defaultSnapshotName } from '../../api/snapshot.js';

const MAX_BODY = 64 * 1024;

export function storageRoutes(dv: DataVolumeWorker, snaps: SnapshotWorker) {
  return async (req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<boolean> => {
    try {
      if (path === '/api/v1/datavolumes' && method === 'GET') return send(res, 200, { items: dv.list() });
      if (path === '/api/v1/snapshots' && method === 'GET') return send(res, 200, { items: snaps.listSnapshots() });
      if (path === '/api/v1/restores' && method === 'GET') return send(res, 200, { items: snaps.listRestores() });
      if (path === '/api/v1/snapshots' && method === 'POST') {
        const b = await body(req);
        const ns = str(b.namespace, 'namespace') ?? 'default';
        const vm = str(b.vm, 'vm');
        if (!vm) throw new UserError(400, 'vm is required: the VirtualMachine to snapshot');
        const name = str(b.name, 'name') ?? defaultSnapshotName(vm, new Date());
        const failureDeadline = str(b.failureDeadline, 'failureDeadline');
        return send(res, 202, await snaps.createSnapshot(ns, name, { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: vm }, ...(failureDeadline ? { failureDeadline } : {}) }));
      }
      const del = /^\/api\/v1\/snapshots\/([^/]+)\/([^/]+)\/delete$/.exec(path);
      if (del && method === 'POST') {
        await snaps.deleteSnapshot(decodeURIComponent(del[1]!), decodeURIComponent(del[2]!));
        return send(res, 200, { deleted: `${decodeURIComponent(del[1]!)}/${decodeURIComponent(del[2]!)}` });
      }
      if (path === '/api/v1/restores' && method === 'POST') {
        const b = await body(req);
        const ns = str(b.namespace, 'namespace') ?? 'default';
        const snapshot = str(b.snapshot, 'snapshot');
        if (!snapshot) throw new UserError(400, 'snapshot is required: the VirtualMachineSnapshot to restore');
        const snap = snaps.listSnapshots().find((s) => s.metadata.namespace === ns && s.metadata.name === snapshot);
        const target = str(b.target, 'target') ?? snap?.spec.source.name;
        if (!target) throw new UserError(404, `VirtualMachineSnapshot ${ns}/${snapshot} not found; see virtops snapshot list`);
        const policy = str(b.targetReadinessPolicy, 'targetReadinessPolicy');
        if (policy && !['WaitGracePeriod', 'StopTarget', 'WaitEventually', 'FailImmediate'].includes(policy)) {
          throw new UserError(400, `targetReadinessPolicy "${policy}" is not one of WaitGracePeriod, StopTarget, WaitEventually, FailImmediate`);
        }
        const overrides = Array.isArray(b.volumeRestoreOverrides) ? (b.volumeRestoreOverrides as { volumeName?: string; restoreName?: string }[]) : undefined;
        const name = str(b.name, 'name') ?? defaultRestoreName(snapshot, new Date());
        return send(res, 202, await snaps.createRestore(ns, name, {
          target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: target },
          virtualMachineSnapshotName: snapshot,
          ...(policy ? { targetReadinessPolicy: policy as 'StopTarget' } : {}),
          ...(overrides ? { volumeRestoreOverrides: overrides } : {}),
        }));
      }
      return false;
    } catch (err) {
      if (err instanceof UserError) return send(res, err.status, { error: err.message });
      throw err;
    }
  };
}

function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new UserError(400, `${field} must be a string`);
  return v;
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > MAX_BODY) throw new UserError(413, `request body over ${MAX_BODY} bytes`);
  }
  try {
    const v = JSON.parse(text || '{}') as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new UserError(400, 'the request body must be a JSON object');
  }
}

function send(res: ServerResponse, status: number, payload: unknown): true {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return true;
}
