/**
 * Revisions of the instancetypes and preferences a VM was expanded from: KubeVirt keeps a
 * copy of each as an apps/v1 ControllerRevision when the VM starts, names it in
 * `status.instancetypeRef.controllerRevisionRef`, and expands from that copy, so an edit of
 * the object changes no running VM. Pure: the shapes and names; storing them is the caller's
 * (single host: the state dir; cluster mode: the API server).
 *
 * KubeVirt names a revision `<vm>-<object>-<version>-<object uid>-<object generation>`; an
 * object in git has neither uid nor generation, so the last two parts are one content hash:
 * the same object content always gives the same revision name, an edit a new one.
 */
import { createHash } from 'node:crypto';
import type { InstancetypeStatusRef, VirtualMachine } from './kubevirt.js';
import { INSTANCETYPE_GROUP, type InstancetypeObject } from './instancetype.js';

export interface ControllerRevision {
  apiVersion: 'apps/v1';
  kind: 'ControllerRevision';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  /** The object as the VM saw it (apiVersion, kind, name, spec). */
  data: InstancetypeObject;
  revision: number;
}

export const LABEL_OBJECT_KIND = `${INSTANCETYPE_GROUP}/object-kind`;
export const LABEL_OBJECT_NAME = `${INSTANCETYPE_GROUP}/object-name`;
export const LABEL_OBJECT_VERSION = `${INSTANCETYPE_GROUP}/object-version`;

/** Stable JSON: keys sorted at every level, so equal content hashes equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The revision name for `obj` as `vm` refers to it (at most 253 characters, a DNS subdomain). */
export function revisionName(vmName: string, obj: InstancetypeObject): string {
  const version = obj.apiVersion.split('/')[1] ?? 'v1beta1';
  const hash = createHash('sha256').update(canonical({ kind: obj.kind, name: obj.metadata.name, spec: obj.spec })).digest('hex').slice(0, 12);
  const name = `${vmName}-${obj.metadata.name ?? ''}-${version}-${hash}`;
  return name.length <= 253 ? name : `${name.slice(0, 253 - hash.length - 1)}-${hash}`;
}

/** The ControllerRevision KubeVirt would store for `obj` when `vm` starts. */
export function controllerRevision(vm: VirtualMachine, obj: InstancetypeObject): ControllerRevision {
  const version = obj.apiVersion.split('/')[1] ?? 'v1beta1';
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: revisionName(vm.metadata.name ?? '', obj),
      namespace: vm.metadata.namespace ?? 'default',
      labels: { [LABEL_OBJECT_KIND]: obj.kind, [LABEL_OBJECT_NAME]: obj.metadata.name ?? '', [LABEL_OBJECT_VERSION]: version },
    },
    data: { apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name: obj.metadata.name }, spec: structuredClone(obj.spec) } as InstancetypeObject,
    revision: 1,
  };
}

/** `status.instancetypeRef` / `preferenceRef` for a stored revision. */
export function statusRef(rev: ControllerRevision): InstancetypeStatusRef {
  return { kind: rev.data.kind, name: rev.data.metadata.name ?? '', controllerRevisionRef: { name: rev.metadata.name } };
}
