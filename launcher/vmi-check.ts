/**
 * The launcher's own checks on a VMI pushed to PUT /v1/vmi: the object must be a VMI and
 * must be the one this launcher was started for. Field-level checks of the spec belong to
 * the converter and the volume code, which report field paths too.
 */
import type { VirtualMachineInstance } from '../api/kubevirt.js';

export interface FieldError {
  path: string;
  message: string;
}

export function checkVmi(body: unknown, expect: { name: string; namespace: string; uid: string }): FieldError[] {
  const errs: FieldError[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(body)) return [{ path: '', message: 'the body must be a VirtualMachineInstance JSON object' }];
  if (body['apiVersion'] !== 'kubevirt.io/v1') errs.push({ path: 'apiVersion', message: `must be "kubevirt.io/v1", got ${JSON.stringify(body['apiVersion'])}` });
  if (body['kind'] !== 'VirtualMachineInstance') errs.push({ path: 'kind', message: `must be "VirtualMachineInstance", got ${JSON.stringify(body['kind'])}` });
  const meta = body['metadata'];
  if (!isObj(meta)) {
    errs.push({ path: 'metadata', message: 'required: an object with name, namespace and uid' });
  } else {
    if (meta['name'] !== expect.name) errs.push({ path: 'metadata.name', message: `this launcher serves VMI "${expect.name}", got ${JSON.stringify(meta['name'])}` });
    const ns = meta['namespace'] ?? 'default';
    if (ns !== expect.namespace) errs.push({ path: 'metadata.namespace', message: `this launcher serves namespace "${expect.namespace}", got ${JSON.stringify(ns)}` });
    if (meta['uid'] !== undefined && meta['uid'] !== expect.uid) {
      errs.push({ path: 'metadata.uid', message: `this launcher serves uid "${expect.uid}", got ${JSON.stringify(meta['uid'])}; start a new launcher for a new VMI` });
    }
  }
  const spec = body['spec'];
  if (!isObj(spec)) {
    errs.push({ path: 'spec', message: 'required: an object with domain and volumes' });
  } else if (!isObj(spec['domain'])) {
    errs.push({ path: 'spec.domain', message: 'required: an object with devices' });
  } else if (!isObj((spec['domain'] as Record<string, unknown>)['devices'])) {
    errs.push({ path: 'spec.domain.devices', message: 'required: an object (may be empty: {})' });
  } else if (spec['volumes'] !== undefined && !Array.isArray(spec['volumes'])) {
    errs.push({ path: 'spec.volumes', message: 'must be an array of volumes' });
  }
  return errs;
}

export function asVmi(body: unknown): VirtualMachineInstance {
  return body as VirtualMachineInstance;
}
