/**
 * CDI's `cdi.kubevirt.io/v1beta1` DataVolume as virtops runs it on a single host: a claim
 * (`<state-dir>/pvcs/<ns>/<name>/disk.img`, raw) filled once from an HTTP(S) URL, a registry
 * image (containerDisk-style), another claim (clone) or nothing (blank). Pure: what to import,
 * its size and checksum, the status CDI would show, and what a VM waiting for it shows.
 *
 * CDI v1beta1 has no checksum field; virtops reads one from the annotation
 * `virtops.io/checksum: sha256:<hex>` (or `sha512:<hex>`) on the DataVolume (or on a VM's
 * dataVolumeTemplates entry): the download is hashed as it arrives and a mismatch fails the
 * import before anything becomes the claim.
 */
import { createHash } from 'node:crypto';
import type { Condition } from './kubevirt.js';

export const CDI_API_VERSION = 'cdi.kubevirt.io/v1beta1';
export const CHECKSUM_ANNOTATION = 'virtops.io/checksum';

export interface DataVolumeSpec {
  source?: {
    http?: { url?: string; secretRef?: string; certConfigMap?: string; extraHeaders?: string[]; secretExtraHeaders?: string[] };
    registry?: { url?: string; imageStream?: string; pullMethod?: string; secretRef?: string; certConfigMap?: string };
    pvc?: { name?: string; namespace?: string };
    blank?: Record<string, never>;
    [other: string]: unknown;
  };
  sourceRef?: { kind?: string; name?: string; namespace?: string };
  storage?: StorageLike;
  pvc?: StorageLike;
  contentType?: string;
  [other: string]: unknown;
}

interface StorageLike {
  resources?: { requests?: { storage?: string | number } };
  [other: string]: unknown;
}

export interface DataVolume {
  apiVersion: typeof CDI_API_VERSION;
  kind: 'DataVolume';
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid?: string; controller?: boolean }[];
  };
  spec: DataVolumeSpec;
  status?: DataVolumeStatus;
}

/** CDI's phases virtops reports. */
export type DataVolumePhase =
  | 'Pending'
  | 'ImportScheduled'
  | 'ImportInProgress'
  | 'CloneScheduled'
  | 'CloneInProgress'
  | 'Succeeded'
  | 'Failed';

export interface DataVolumeStatus {
  phase: DataVolumePhase;
  /** "N/A" before the copy starts, then "NN.N%". */
  progress: string;
  restartCount?: number;
  claimName: string;
  conditions: Condition[];
}

export type ImportSource =
  | { kind: 'http'; url: string }
  | { kind: 'registry'; image: string }
  | { kind: 'clone'; namespace: string; name: string }
  | { kind: 'blank' };

export interface Checksum {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

/** Everything an import needs, validated. */
export interface ImportPlan {
  namespace: string;
  name: string;
  source: ImportSource;
  /** The claim's size (storage.resources.requests.storage); undefined: the image's own size. */
  bytes?: bigint;
  checksum?: Checksum;
  /** The VM whose dataVolumeTemplates made it (`ns/name`): it goes with that VM. */
  owner?: string;
  /** sha256 of the spec and checksum: a different one is a different DataVolume. */
  specHash: string;
}

export interface DvIssue {
  path: string;
  message: string;
  fix?: string;
  /**
   * Valid for CDI, but not something virtops imports (sourceRef, s3, auth headers...): the
   * manifest validator lets it through (a cluster's CDI may do it); `virtops up` shows the
   * DataVolume Failed with this message and its VM DataVolumeError.
   */
  unsupported?: true;
}

const SAFE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function isDataVolume(obj: { apiVersion?: unknown; kind?: unknown }): obj is DataVolume {
  return obj.apiVersion === CDI_API_VERSION && obj.kind === 'DataVolume';
}

/** `sha256:<64 hex>` or `sha512:<128 hex>`; an issue naming the annotation otherwise. */
export function parseChecksum(value: string | undefined, at = `/metadata/annotations/${CHECKSUM_ANNOTATION.replace('/', '~1')}`): Checksum | DvIssue | undefined {
  if (value === undefined) return undefined;
  const m = /^(sha256|sha512):([0-9a-fA-F]+)$/.exec(value.trim());
  const lengths = { sha256: 64, sha512: 128 } as const;
  if (!m || m[2]!.length !== lengths[m[1] as 'sha256' | 'sha512']) {
    return { path: at, message: `"${value}" is not a checksum`, fix: 'write sha256:<64 hex digits> (or sha512:<128 hex digits>), e.g. the output of sha256sum' };
  }
  return { algorithm: m[1] as Checksum['algorithm'], hex: m[2]!.toLowerCase() };
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isIssue = (x: unknown): x is DvIssue => typeof x === 'object' && x !== null && 'message' in x && 'path' in x;

/**
 * The import a DataVolume asks for, or the issues that refuse it (each naming the field and
 * the fix). `at` is the JSON pointer of the DataVolume's spec (`/spec`, or a VM's
 * `/spec/dataVolumeTemplates/0/spec`).
 */
export function planImport(
  dv: { metadata: DataVolume['metadata']; spec: DataVolumeSpec },
  namespace: string,
  at = '/spec',
  owner?: string,
): ImportPlan | { issues: DvIssue[] } {
  const issues: DvIssue[] = [];
  // Manifests from git are data: any field may have any type here (the schema reports it too).
  const spec = (isObject(dv.spec) ? dv.spec : {}) as DataVolumeSpec;
  const name = typeof dv.metadata?.name === 'string' ? dv.metadata.name : '';
  if (!SAFE_NAME.test(name) || name.length > 253) issues.push({ path: at.replace(/\/spec$/, '/metadata/name'), message: `"${name}" is not a valid DataVolume name`, fix: 'use lowercase letters, digits, - and . (it is also the claim name)' });
  if (spec.sourceRef) issues.push({ path: `${at}/sourceRef`, message: 'DataSource references are not supported by virtops', fix: 'name the source directly in spec.source (http, registry, pvc or blank)', unsupported: true });
  if (spec.contentType !== undefined && spec.contentType !== 'kubevirt') issues.push({ path: `${at}/contentType`, message: `contentType "${String(spec.contentType)}" is not supported by virtops`, fix: 'use kubevirt (a disk image), or leave it out', unsupported: true });
  const src = (isObject(spec.source) ? spec.source : {}) as NonNullable<DataVolumeSpec['source']>;
  const given = Object.keys(src).filter((k) => src[k] !== undefined && src[k] !== null);
  let source: ImportSource | undefined;
  if (given.length !== 1) {
    if (!spec.sourceRef) issues.push({ path: `${at}/source`, message: given.length ? `has several sources (${given.join(', ')})` : 'required field is missing', fix: 'set exactly one of source.http, source.registry, source.pvc, source.blank' });
  } else {
    const kind = given[0]!;
    if (kind === 'http') {
      const url = src.http?.url;
      let parsed: URL | undefined;
      try {
        parsed = url ? new URL(url) : undefined;
      } catch {
        parsed = undefined;
      }
      if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
        issues.push({ path: `${at}/source/http/url`, message: `${JSON.stringify(url)} is not an http(s) URL`, fix: 'use e.g. https://download.example.org/images/disk.qcow2' });
      } else source = { kind: 'http', url: parsed.toString() };
      for (const f of ['secretRef', 'certConfigMap', 'extraHeaders', 'secretExtraHeaders'] as const) {
        if (src.http?.[f] !== undefined) issues.push({ path: `${at}/source/http/${f}`, message: `${f} is not supported by virtops yet`, fix: 'serve the image without authentication or custom CA, or remove the field', unsupported: true });
      }
    } else if (kind === 'registry') {
      const url = src.registry?.url;
      const image = typeof url === 'string' ? url.replace(/^docker:\/\//, '') : '';
      if (typeof url !== 'string' || !url.startsWith('docker://') || image === '' || /\s/.test(image)) {
        issues.push({ path: `${at}/source/registry/url`, message: `${JSON.stringify(url)} is not a registry URL`, fix: 'use docker://<registry>/<repository>:<tag>, e.g. docker://quay.io/containerdisks/fedora:40' });
      } else source = { kind: 'registry', image };
      for (const f of ['imageStream', 'secretRef', 'certConfigMap'] as const) {
        if (src.registry?.[f] !== undefined) issues.push({ path: `${at}/source/registry/${f}`, message: `${f} is not supported by virtops`, fix: 'remove it (use a public image or a registry in up --insecure-registry)', unsupported: true });
      }
    } else if (kind === 'pvc') {
      const ns = String(src.pvc?.namespace ?? namespace);
      const claim = src.pvc?.name;
      if (typeof claim !== 'string' || !SAFE_NAME.test(claim)) issues.push({ path: `${at}/source/pvc/name`, message: `${JSON.stringify(claim)} is not a claim name`, fix: 'name the claim (or DataVolume) to clone' });
      else if (!SAFE_NAME.test(ns)) issues.push({ path: `${at}/source/pvc/namespace`, message: `${JSON.stringify(ns)} is not a namespace`, fix: 'use lowercase letters, digits and -' });
      else if (ns === namespace && claim === name) issues.push({ path: `${at}/source/pvc/name`, message: 'a DataVolume cannot clone itself', fix: 'name another claim' });
      else source = { kind: 'clone', namespace: ns, name: claim };
    } else if (kind === 'blank') {
      source = { kind: 'blank' };
    } else {
      issues.push({ path: `${at}/source/${kind}`, message: `source ${kind} is not supported by virtops`, fix: 'use source.http, source.registry, source.pvc or source.blank', unsupported: true });
    }
  }
  if (spec.storage && spec.pvc) issues.push({ path: `${at}/pvc`, message: 'storage and pvc are mutually exclusive', fix: 'keep storage' });
  const sizeField = spec.storage ? 'storage' : 'pvc';
  const st = spec.storage ?? spec.pvc;
  const size = isObject(st) && isObject(st.resources) && isObject(st.resources.requests) ? st.resources.requests.storage : undefined;
  let bytes: bigint | undefined;
  if (size !== undefined) {
    bytes = quantityBytes(size);
    if (bytes === undefined || bytes <= 0n) {
      issues.push({ path: `${at}/${sizeField}/resources/requests/storage`, message: `${JSON.stringify(size)} is not a positive size`, fix: 'use a quantity such as 10Gi' });
    }
  } else if (!spec.storage || source?.kind === 'blank') {
    // CDI's storage API may leave the size to the source; the pvc API and a blank disk need one.
    issues.push({ path: `${at}/${sizeField}/resources/requests/storage`, message: 'required field is missing', fix: 'set the claim size, e.g. storage: { resources: { requests: { storage: 10Gi } } }' });
  }
  const annotation = isObject(dv.metadata?.annotations) ? dv.metadata.annotations[CHECKSUM_ANNOTATION] : undefined;
  const parsed = parseChecksum(typeof annotation === 'string' || annotation === undefined ? annotation : String(annotation), `${at.replace(/\/spec$/, '/metadata')}/annotations/${CHECKSUM_ANNOTATION.replace('/', '~1')}`);
  const checksum = isIssue(parsed) ? undefined : parsed;
  if (isIssue(parsed)) issues.push(parsed);
  else if (checksum && source && source.kind !== 'http') {
    issues.push({ path: `${at.replace(/\/spec$/, '/metadata')}/annotations/${CHECKSUM_ANNOTATION.replace('/', '~1')}`, message: `a checksum applies to source.http only (this DataVolume has source.${source.kind})`, fix: 'remove the annotation' });
  }
  if (issues.length || !source) return { issues };
  const specHash = createHash('sha256').update(JSON.stringify({ spec, checksum: checksum ?? null })).digest('hex').slice(0, 16);
  return {
    namespace,
    name,
    source,
    ...(bytes !== undefined ? { bytes } : {}),
    ...(checksum ? { checksum } : {}),
    ...(owner ? { owner } : {}),
    specHash,
  };
}

/** A Kubernetes quantity in bytes (rounded up); undefined when it is not one. */
export function quantityBytes(q: unknown): bigint | undefined {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? BigInt(Math.ceil(q)) : undefined;
  if (typeof q !== 'string') return undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m) return undefined;
  const mult: Record<string, bigint> = {
    '': 1n, Ki: 1024n, Mi: 1024n ** 2n, Gi: 1024n ** 3n, Ti: 1024n ** 4n, Pi: 1024n ** 5n, Ei: 1024n ** 6n,
    k: 1000n, M: 1000n ** 2n, G: 1000n ** 3n, T: 1000n ** 4n, P: 1000n ** 5n, E: 1000n ** 6n,
  };
  const [whole, frac = ''] = m[1]!.split('.');
  const den = 10n ** BigInt(frac.length);
  const num = (BigInt(whole!) * den + BigInt(frac || '0')) * mult[m[2] ?? '']!;
  return num % den > 0n ? num / den + 1n : num / den;
}

/**
 * The DataVolumes a revision declares: DataVolume manifests, and each VM's
 * dataVolumeTemplates (named by the template, in the VM's namespace, owned by the VM, as
 * KubeVirt creates them). A name declared twice is an issue on the second one.
 */
export function dataVolumesOf(manifests: readonly { apiVersion?: unknown; kind?: unknown; metadata?: unknown; spec?: unknown }[]): { plans: ImportPlan[]; errors: { key: string; issues: DvIssue[] }[] } {
  const plans: ImportPlan[] = [];
  const errors: { key: string; issues: DvIssue[] }[] = [];
  const seen = new Set<string>();
  const add = (dv: { metadata: DataVolume['metadata']; spec: DataVolumeSpec }, ns: string, at: string, owner?: string): void => {
    const key = `${ns}/${dv.metadata?.name ?? ''}`;
    if (seen.has(key)) {
      errors.push({ key, issues: [{ path: at.replace(/\/spec$/, '/metadata/name'), message: `DataVolume ${key} is declared twice`, fix: 'keep one DataVolume per name (a VM\'s dataVolumeTemplates count too)' }] });
      return;
    }
    seen.add(key);
    const r = planImport(dv, ns, at, owner);
    if ('issues' in r) errors.push({ key, issues: r.issues });
    else plans.push(r);
  };
  for (const m of manifests) {
    const meta = (m.metadata ?? {}) as { name?: string; namespace?: string };
    const ns = meta.namespace ?? 'default';
    if (isDataVolume(m as { apiVersion?: unknown; kind?: unknown })) {
      const dv = m as unknown as DataVolume;
      const ownerVm = dv.metadata.ownerReferences?.find((o) => o.kind === 'VirtualMachine' && o.controller)?.name;
      add(dv, ns, '/spec', ownerVm ? `${ns}/${ownerVm}` : undefined);
    } else if (m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine') {
      const templates = ((m.spec ?? {}) as { dataVolumeTemplates?: { metadata?: DataVolume['metadata']; spec?: DataVolumeSpec }[] }).dataVolumeTemplates ?? [];
      templates.forEach((t, i) => add({ metadata: t.metadata ?? { name: '' }, spec: t.spec ?? {} }, ns, `/spec/dataVolumeTemplates/${i}/spec`, `${ns}/${meta.name ?? ''}`));
    }
  }
  return { plans, errors };
}

/** What the import worker remembers of one DataVolume (persisted in the state dir). */
export interface ImportRecord {
  namespace: string;
  name: string;
  specHash: string;
  owner?: string;
  source: ImportSource['kind'];
  phase: DataVolumePhase;
  /** 0..1 while copying. */
  fraction?: number;
  /** Failed attempts so far (CDI's restartCount). */
  attempts: number;
  lastError?: string;
  /** Epoch ms: no new attempt before this. */
  retryAt?: number;
  /** Epoch ms of each condition's last status change. */
  since: { Bound?: number; Ready?: number; Running?: number };
  /** The spec in git differs from the one imported (never re-imported; shown as a message). */
  specChanged?: boolean;
}

/** "NN.N%" (CDI's progress), "N/A" before a copy starts. */
export function formatProgress(phase: DataVolumePhase, fraction: number | undefined): string {
  if (phase === 'Succeeded') return '100.0%';
  if (fraction === undefined) return 'N/A';
  const pct = Math.min(100, Math.max(0, fraction * 100));
  return `${(Math.floor(pct * 10) / 10).toFixed(1)}%`;
}

/**
 * qemu-img convert -p writes `    (45.02/100%)` updates separated by carriage returns: the
 * last complete one in `chunk`, as 0..1.
 */
export function parseQemuImgProgress(chunk: string): number | undefined {
  const all = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
  const last = all.at(-1);
  return last ? Math.min(1, Number(last[1]) / 100) : undefined;
}

/** CDI's status of a DataVolume from the worker's record (conditions Bound, Ready, Running in CDI's order). */
export function dataVolumeStatus(rec: ImportRecord): DataVolumeStatus {
  const t = (ms: number | undefined) => (ms !== undefined ? new Date(ms).toISOString() : null);
  const running = rec.phase === 'ImportInProgress' || rec.phase === 'CloneInProgress';
  const claim = `${rec.namespace}/${rec.name}`;
  const conditions: Condition[] = [
    { type: 'Bound', status: 'True', reason: 'Bound', message: `PVC ${rec.name} Bound`, lastTransitionTime: t(rec.since.Bound) },
    rec.phase === 'Succeeded'
      ? { type: 'Ready', status: 'True', reason: '', message: rec.specChanged ? `imported once from an earlier spec; a Succeeded DataVolume is never re-imported (rename it to import again)` : '', lastTransitionTime: t(rec.since.Ready) }
      : { type: 'Ready', status: 'False', reason: rec.phase === 'Failed' ? 'Failed' : 'TransferRunning', message: rec.phase === 'Failed' ? `import of ${claim} failed` : '', lastTransitionTime: t(rec.since.Ready) },
    running
      ? { type: 'Running', status: 'True', reason: 'Pod is running', message: '', lastTransitionTime: t(rec.since.Running) }
      : rec.phase === 'Failed'
        ? { type: 'Running', status: 'False', reason: 'Error', message: rec.lastError ?? 'the import failed', lastTransitionTime: t(rec.since.Running) }
        : rec.phase === 'Succeeded'
          ? { type: 'Running', status: 'False', reason: 'Completed', message: 'Import Complete', lastTransitionTime: t(rec.since.Running) }
          : { type: 'Running', status: 'False', reason: '', message: rec.retryAt ? `retrying after ${new Date(rec.retryAt).toISOString()}` : '', lastTransitionTime: t(rec.since.Running) },
  ];
  return {
    phase: rec.phase,
    progress: formatProgress(rec.phase, rec.fraction),
    ...(rec.attempts > 0 ? { restartCount: rec.attempts } : {}),
    claimName: rec.name,
    conditions,
  };
}

/**
 * What a VM whose volumes name DataVolumes shows before it may start (KubeVirt's order):
 * `DataVolumeError` when one failed (phase Failed, or Running=False with reason Error),
 * `Provisioning` while one is still being imported or cloned; undefined when all are
 * Succeeded (or a volume names no DataVolume virtops knows: the launcher then looks for the
 * claim file itself, ErrorPvcNotFound if absent).
 */
export function volumeGate(
  volumes: readonly { name: string; dataVolume?: { name: string }; persistentVolumeClaim?: { claimName: string } }[] | undefined,
  statusOf: (claim: string) => DataVolumeStatus | undefined,
  opts: { pendingIsUnbound?: boolean } = {},
): { reason: 'DataVolumeError' | 'Provisioning' | 'WaitingForVolumeBinding'; message: string } | undefined {
  let waiting: { reason: 'Provisioning' | 'WaitingForVolumeBinding'; message: string } | undefined;
  for (const v of volumes ?? []) {
    const claim = v.dataVolume?.name ?? v.persistentVolumeClaim?.claimName;
    if (!claim) continue;
    const st = statusOf(claim);
    if (!st || st.phase === 'Succeeded') continue;
    const run = st.conditions.find((c) => c.type === 'Running');
    if (st.phase === 'Failed' || (run?.status === 'False' && run.reason === 'Error')) {
      return { reason: 'DataVolumeError', message: `DataVolume ${claim} (volume ${v.name}) is in Failed phase: ${run?.message ?? 'the import failed'}` };
    }
    // Cluster mode: a Pending DataVolume has no node's claim yet (KubeVirt: an unbound PVC).
    const reason = opts.pendingIsUnbound && st.phase === 'Pending' ? 'WaitingForVolumeBinding' : 'Provisioning';
    waiting ??= { reason, message: `waiting for DataVolume ${claim} (volume ${v.name}): ${st.phase} ${st.progress}` };
  }
  return waiting;
}

/** Retry delay after `attempts` failures: 10 s doubling to 5 min (CDI restarts its importer Pod with a backoff too). */
export function importBackoffMs(attempts: number, baseMs = 10_000, maxMs = 300_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
}

/** An attempt starts: InProgress, no retry pending, progress unknown (mutates `rec`). */
export function recordAttemptStarted(rec: ImportRecord, plan: Pick<ImportPlan, 'source'>, now: number): void {
  rec.phase = plan.source.kind === 'clone' ? 'CloneInProgress' : 'ImportInProgress';
  rec.since.Running = now;
  delete rec.retryAt;
  delete rec.fraction;
}

/** The attempt filled the claim (mutates `rec`). */
export function recordAttemptSucceeded(rec: ImportRecord, now: number): void {
  rec.phase = 'Succeeded';
  rec.since.Ready = now;
  rec.since.Running = now;
  delete rec.lastError;
}

/**
 * The attempt failed (or ran past its deadline): Failed, CDI's restartCount up, the next
 * attempt after `importBackoffMs` and from the start (mutates `rec`).
 */
export function recordAttemptFailed(rec: ImportRecord, error: { message: string } | { deadlineMs: number }, now: number): void {
  rec.attempts++;
  rec.phase = 'Failed';
  delete rec.fraction;
  rec.lastError = 'deadlineMs' in error ? `the import did not finish within its deadline (${Math.round(error.deadlineMs / 1000)} s); retrying` : error.message;
  rec.retryAt = now + importBackoffMs(rec.attempts);
  rec.since.Ready = rec.since.Ready ?? now;
  rec.since.Running = now;
}
