/**
 * The implementation of `virtops expand` (cli/commands/expand.ts registers it) and the
 * manifest loading `virtops domain-xml` shares with it: every document of the given files,
 * instancetypes and preferences validated with the shared validator before use.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { toYaml } from '../../api/yaml-compat.js';
import { expandVm, formatExpansionErrors, referencesInstancetype, resolverFor, type Expanded } from '../../api/expand.js';
import { isInstancetypeObject } from '../../api/instancetype.js';
import type { VirtualMachine } from '../../api/kubevirt.js';
import { formatIssues, validateManifest } from '../../api/validate.js';

export interface ExpandOptions {
  file: string[];
  output: 'yaml' | 'json';
}

export interface LoadedObject {
  obj: unknown;
  /** `file#index`, for messages. */
  origin: string;
}

/** Every non-empty document of `file`; malformed YAML names the line. */
export function readManifestFile(file: string): LoadedObject[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseManifestText(text, file);
}

export function parseManifestText(text: string, file: string): LoadedObject[] {
  const docs = parseAllDocuments(text);
  const out: LoadedObject[] = [];
  (Array.isArray(docs) ? docs : [docs]).forEach((doc, index) => {
    const err = doc.errors[0];
    if (err) {
      const at = err.linePos?.[0];
      throw new Error(`${at ? `${file}:${at.line}:${at.col}` : file}: malformed YAML/JSON: ${err.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push({ obj: value, origin: `${file}#${index}` });
  });
  return out;
}

/** The instancetypes and preferences among `objects`, each checked against KubeVirt's schema. */
export function instancetypeObjects(objects: readonly LoadedObject[]): unknown[] {
  const found = objects.filter((o) => isInstancetypeObject(o.obj));
  const problems = found.flatMap((o) => {
    const issues = validateManifest(o.obj);
    return issues.length ? [formatIssues(issues, o.origin)] : [];
  });
  if (problems.length) throw new Error(`invalid instancetype/preference manifests:\n${problems.join('\n')}`);
  return found.map((o) => o.obj);
}

/**
 * `vm` expanded against the instancetypes and preferences in `objects`; throws one line per
 * problem (`where: field: message (fix: ...)`). A VM without matchers comes back unchanged.
 */
export function expandForCli(vm: VirtualMachine, objects: readonly LoadedObject[], where: string): Expanded {
  if (!referencesInstancetype(vm)) return { vm };
  const r = expandVm(vm, resolverFor(instancetypeObjects(objects)));
  if ('errors' in r) {
    const notFound = r.errors.some((e) => e.message.endsWith('not found'));
    throw new Error(`${where}: cannot expand its instancetype/preference:\n${formatExpansionErrors(r.errors).replace(/^/gm, '  ')}${
      notFound ? '\n  (instancetypes and preferences are read from the file and from each -f FILE)' : ''}`);
  }
  return r;
}

const describeVm = (o: { metadata?: { name?: string; namespace?: string } }): string =>
  `VirtualMachine ${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? '<unnamed>'}`;

/** Expands the VM in FILE and prints it. */
export function runExpand(file: string, name: string | undefined, opts: ExpandOptions): void {
  const own = readManifestFile(file);
  const objects = [...own, ...opts.file.flatMap(readManifestFile)];
  const vms = own.map((o) => o.obj).filter((o): o is VirtualMachine => (o as { kind?: unknown })?.kind === 'VirtualMachine');
  const named = name === undefined ? vms : vms.filter((v) => v.metadata?.name === name);
  if (named.length !== 1) {
    if (vms.length === 0) throw new Error(`${file}: no VirtualMachine. Fix: pass a manifest holding one`);
    if (named.length === 0) throw new Error(`${file}: no VirtualMachine named "${name}" (there are: ${vms.map(describeVm).join(', ')})`);
    throw new Error(`${file}: holds ${named.length} VirtualMachines (${named.map(describeVm).join(', ')}). Fix: name one: virtops expand ${file} <vm>`);
  }
  const vm = named[0]!;
  if (typeof vm.spec?.template?.spec !== 'object' || vm.spec.template.spec === null) {
    throw new Error(`${file}: ${describeVm(vm)}: spec.template.spec is missing. Fix: give the VirtualMachine a template with a spec`);
  }
  const expanded = structuredClone(expandForCli(vm, objects, `${file}: ${describeVm(vm)}`).vm);
  // As virtctl expand: the result stands alone, without the matchers it was expanded from.
  delete expanded.spec.instancetype;
  delete expanded.spec.preference;
  process.stdout.write(opts.output === 'json' ? `${JSON.stringify(expanded, null, 2)}\n` : toYaml(expanded));
}
