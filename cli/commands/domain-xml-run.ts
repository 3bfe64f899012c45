/**
 * The implementation of `virtops domain-xml` (cli/commands/domain-xml.ts registers the
 * command and loads this module only when it runs).
 *
 * The preview takes the path `virtops up` takes for real: the VM's launcher Pod (from the
 * same file, as synth writes it into dist/, else rendered the way synth renders it) becomes
 * the launcher's argv under --state-dir (reconciler/agent/pod-process.ts, with the host
 * flags `up` adds), the launcher parses those flags (launcher/flags.ts), and its volume
 * plan and paths give the context (launcher/preview-context.ts). So the XML printed is
 * the XML a launcher started by `virtops up --state-dir DIR` defines, except for values
 * decided at run time, which are listed on stderr as notes. A VM that names an instancetype
 * or preference is expanded first (api/expand.ts) against the ones in the same file and in
 * `-f` files, as the VM would be when it starts.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { expandForCli, readManifestFile, type LoadedObject } from './expand-run.js';
import { API_VERSION, vmiFromVm, type VirtualMachine, type VirtualMachineInstance } from '../../api/kubevirt.js';
import { POOL_API_VERSION, isPool, poolVm, type VirtualMachinePool } from '../../api/pool.js';
import { REPLACED_KINDS } from '../../api/validate.js';
import { convertVmi, type Emulation } from '../../launcher/convert/index.js';
import { parseLauncherArgv, validateLauncherFlags } from '../../launcher/flags.js';
import { launcherPreviewContext } from '../../launcher/preview-context.js';
import { launcherProcessSpec } from '../../reconciler/agent/pod-process.js';
import { hostFlags, podDir } from '../../reconciler/agent/host-config.js';
import { LABEL_VM_NAME, renderLauncherPod } from '../../synth/launcher-pod.js';
import type { PodManifest } from '../../synth/pod-types.js';

export interface DomainXmlOptions {
  emulation: Emulation;
  stateDir: string;
  name?: string;
  uid?: string;
  /** More manifests holding instancetypes and preferences (`-f`). */
  file?: string[];
}

/** The instance uid shown when neither --uid nor the manifest gives one (`up` mints one per start). */
export const PREVIEW_UID = '00000000-0000-0000-0000-000000000000';

/** Converts the VM/VMI in FILE and writes its XML to stdout, warnings and notes to stderr. */
export function runDomainXml(file: string, opts: DomainXmlOptions): void {
  const extra = (opts.file ?? []).flatMap(readManifestFile);
  const { vmi, source, pod } = instanceFromFile(file, opts.name, extra);
  const { xml, warnings, notes } = previewDomainXml(vmi, pod, opts, `${file}: ${source}`);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  for (const n of notes) process.stderr.write(`note: ${n}\n`);
  process.stdout.write(xml);
}

/**
 * The domain XML the launcher `virtops up --state-dir opts.stateDir` starts for this VMI
 * would define. `pod`: the VM's launcher Pod from dist/ (rendered from the VMI when absent).
 */
export function previewDomainXml(
  vmi: VirtualMachineInstance,
  pod: PodManifest | undefined,
  opts: DomainXmlOptions,
  where = `${vmi.kind ?? 'VirtualMachineInstance'} ${vmi.metadata.namespace ?? 'default'}/${vmi.metadata.name ?? ''}`,
): { xml: string; warnings: string[]; notes: string[] } {
  const notes: string[] = [];
  const namespace = vmi.metadata.namespace ?? 'default';
  const name = vmi.metadata.name ?? '';
  const uid = opts.uid ?? vmi.metadata.uid ?? PREVIEW_UID;
  if (uid === PREVIEW_UID) notes.push(`instance uid ${PREVIEW_UID} stands for the one virtops up mints at start (it names the ephemeral volume dir): pass --uid to show a real one`);
  const instance: VirtualMachineInstance = { ...vmi, metadata: { ...vmi.metadata, namespace, uid } };
  try {
    const launcherPod = pod ?? renderLauncherPod(asVm(instance));
    const spec = launcherProcessSpec({
      pod: launcherPod,
      uid,
      podDir: podDir(opts.stateDir, namespace, name),
      virtopsCommand: ['virtops'],
      hostFlags: hostFlags({ stateDir: opts.stateDir, emulation: opts.emulation, libvirtUri: 'qemu:///system' }),
    });
    const flags = validateLauncherFlags(parseLauncherArgv(spec.argv));
    if (!flags.ok) throw new Error(`the launcher Pod's flags are invalid: ${flags.errors.join('; ')} (re-run virtops synth)`);
    const { ctx, unresolved } = launcherPreviewContext(instance, flags.config, opts.emulation);
    const { xml, warnings } = convertVmi(instance, ctx);
    return { xml, warnings, notes: [...notes, ...unresolved] };
  } catch (e) {
    if (e instanceof Error) throw new Error(`${where}: ${e.message}`);
    throw e;
  }
}

/** A VMI as the VM whose template would create it (renderLauncherPod takes a VM). */
function asVm(vmi: VirtualMachineInstance): VirtualMachine {
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualMachine',
    metadata: { name: vmi.metadata.name ?? '', namespace: vmi.metadata.namespace ?? 'default' },
    spec: { runStrategy: 'Always', template: { metadata: { ...(vmi.metadata.labels ? { labels: vmi.metadata.labels } : {}) }, spec: vmi.spec } },
  } as VirtualMachine;
}

export interface Instance {
  vmi: VirtualMachineInstance;
  /** What the file held, for messages: `VirtualMachine lab/web`. */
  source: string;
  /** The VM's launcher Pod when the file holds one (dist/*.k8s.yaml do). */
  pod?: PodManifest;
}

/** Reads FILE and returns the one VMI it describes (a VM becomes the VMI its template would create). */
export function instanceFromFile(file: string, name?: string, extra: readonly LoadedObject[] = []): Instance {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return instanceFromText(text, file, name, extra);
}

/** `extra`: manifests from other files that may hold the VM's instancetype and preference. */
export function instanceFromText(text: string, file: string, name?: string, extra: readonly LoadedObject[] = []): Instance {
  const docs = parseAllDocuments(text);
  const objects: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const err = doc.errors[0];
    if (err) {
      const at = err.linePos?.[0];
      const where = at ? `${file}:${at.line}:${at.col}` : file;
      throw new Error(`${where}: malformed YAML/JSON: ${err.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  const replaced = objects.find((o) => REPLACED_KINDS[String((o as { kind?: unknown })?.kind)] !== undefined && String((o as { apiVersion?: unknown }).apiVersion).startsWith('kubevirt.io/')) as Workload | undefined;
  if (replaced) throw new Error(`${file}: ${describe(replaced)} is not supported by virtops. Fix: ${REPLACED_KINDS[replaced.kind]}`);
  const plain = objects.filter(isKubevirtWorkload);
  // A pool's VMs (<pool>-0, -1, ...), as api/pool.ts makes them; without --name, a file with
  // one pool and no VM previews <pool>-0.
  const pools = objects.filter((o): o is VirtualMachinePool => isPool(o) && (o as VirtualMachinePool).apiVersion === POOL_API_VERSION);
  const poolVms = pools.flatMap((p) => Array.from({ length: Math.max(1, p.spec?.replicas ?? 1) }, (_, i) => poolVm(p, i) as Workload));
  const candidates = [...plain, ...poolVms];
  const named = name !== undefined ? candidates.filter((o) => o.metadata?.name === name)
    : plain.length === 0 && pools.length === 1 ? poolVms.slice(0, 1) : candidates;
  if (named.length === 1) {
    const obj = named[0]!;
    if (obj.apiVersion !== API_VERSION) throw new Error(`${file}: ${describe(obj)}: apiVersion "${String(obj.apiVersion)}" is not supported. Fix: use ${API_VERSION}`);
    const pod = launcherPodOf(objects, obj);
    if (obj.kind === 'VirtualMachineInstance') return { vmi: obj, source: describe(obj), ...(pod ? { pod } : {}) };
    if (typeof obj.spec?.template?.spec !== 'object' || obj.spec.template.spec === null) {
      throw new Error(`${file}: ${describe(obj)}: spec.template.spec is missing. Fix: give the VirtualMachine a template with a spec`);
    }
    const own = objects.map((o, i) => ({ obj: o, origin: `${file}#${i}` }));
    const { vm } = expandForCli(obj, [...own, ...extra], `${file}: ${describe(obj)}`);
    return { vmi: vmiFromVm(vm), source: describe(obj), ...(pod ? { pod } : {}) };
  }
  if (named.length === 0) {
    const kinds = objects.map((o) => (o as { kind?: unknown })?.kind).filter((k) => typeof k === 'string');
    const found = kinds.length ? `found: ${[...new Set(kinds)].join(', ')}` : 'found no Kubernetes objects';
    if (name !== undefined && candidates.length > 0) {
      throw new Error(`${file}: no VirtualMachine or VirtualMachineInstance named "${name}" (there are: ${candidates.map(describe).join(', ')})`);
    }
    throw new Error(`${file}: no VirtualMachine, VirtualMachineInstance or VirtualMachinePool (${found}). Fix: pass a manifest holding one`);
  }
  throw new Error(`${file}: holds ${named.length} VMs/VMIs (${named.map(describe).join(', ')}). Fix: choose one with --name`);
}

type Workload = (VirtualMachine | VirtualMachineInstance) & { apiVersion: unknown };

function isKubevirtWorkload(o: unknown): o is Workload {
  const kind = (o as { kind?: unknown } | null)?.kind;
  return typeof o === 'object' && o !== null && (kind === 'VirtualMachine' || kind === 'VirtualMachineInstance');
}

function describe(o: { kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  return `${o.kind ?? 'object'} ${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? '<unnamed>'}`;
}

/** The launcher Pod synth wrote for `vm` (label vm.kubevirt.io/name, same namespace). */
function launcherPodOf(objects: unknown[], vm: Workload): PodManifest | undefined {
  const ns = vm.metadata?.namespace ?? 'default';
  return objects.find((o): o is PodManifest => {
    const p = o as Partial<PodManifest> & { apiVersion?: unknown; kind?: unknown };
    return p.apiVersion === 'v1' && p.kind === 'Pod' && p.metadata?.labels?.[LABEL_VM_NAME] === vm.metadata?.name && (p.metadata?.namespace ?? 'default') === ns;
  });
}
