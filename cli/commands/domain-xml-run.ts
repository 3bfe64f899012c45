/**
 * The implementation of `virtops domain-xml` (cli/commands/domain-xml.ts registers the
 * command and loads this module only when it runs).
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, vmiFromVm, type VirtualMachine, type VirtualMachineInstance } from '../../api/kubevirt.js';
import { ConversionError, convertVmi, type Emulation, nodeContext } from '../../launcher/convert/index.js';

export interface DomainXmlOptions {
  emulation: Emulation;
  stateDir: string;
  name?: string;
}

/** Converts the VM/VMI in FILE and writes its XML to stdout, warnings to stderr. */
export function runDomainXml(file: string, opts: DomainXmlOptions): void {
  const { vmi, source } = instanceFromFile(file, opts.name);
  try {
    const { xml, warnings } = convertVmi(vmi, nodeContext(vmi, { stateDir: opts.stateDir, emulation: opts.emulation }));
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(xml);
  } catch (e) {
    if (e instanceof ConversionError) throw new Error(`${file}: ${source}: ${e.message}`);
    throw e;
  }
}

export interface Instance {
  vmi: VirtualMachineInstance;
  /** What the file held, for messages: `VirtualMachine lab/web`. */
  source: string;
}

/** Reads FILE and returns the one VMI it describes (a VM becomes the VMI its template would create). */
export function instanceFromFile(file: string, name?: string): Instance {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return instanceFromText(text, file, name);
}

export function instanceFromText(text: string, file: string, name?: string): Instance {
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
  const candidates = objects.filter(isKubevirtWorkload);
  const named = name === undefined ? candidates : candidates.filter((o) => o.metadata?.name === name);
  if (named.length === 1) {
    const obj = named[0]!;
    if (obj.apiVersion !== API_VERSION) throw new Error(`${file}: ${describe(obj)}: apiVersion "${String(obj.apiVersion)}" is not supported. Fix: use ${API_VERSION}`);
    if (obj.kind === 'VirtualMachineInstance') return { vmi: obj, source: describe(obj) };
    if (typeof obj.spec?.template?.spec !== 'object' || obj.spec.template.spec === null) {
      throw new Error(`${file}: ${describe(obj)}: spec.template.spec is missing. Fix: give the VirtualMachine a template with a spec`);
    }
    return { vmi: vmiFromVm(obj), source: describe(obj) };
  }
  if (named.length === 0) {
    const kinds = objects.map((o) => (o as { kind?: unknown })?.kind).filter((k) => typeof k === 'string');
    const found = kinds.length ? `found: ${[...new Set(kinds)].join(', ')}` : 'found no Kubernetes objects';
    if (name !== undefined && candidates.length > 0) {
      throw new Error(`${file}: no VirtualMachine or VirtualMachineInstance named "${name}" (there are: ${candidates.map(describe).join(', ')})`);
    }
    throw new Error(`${file}: no VirtualMachine or VirtualMachineInstance (${found}). Fix: pass a manifest holding one`);
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
