/**
 * The virtops cdk8s app: what `vms/main.ts` instantiates.
 *
 *   const app = new VirtopsApp();
 *   new MyVms(app, 'web');        // charts holding VirtualMachine constructs
 *   app.synth();
 *
 * Output: one `<chart-id>.k8s.yaml` per chart in `$CDK8S_OUTDIR` (default `dist`), including
 * `crds.k8s.yaml` (the VirtualMachine/VMI CRDs) and `install.k8s.yaml` (the reconciler). Each
 * VirtualMachine gets its launcher Pod rendered next to it, in the same chart, so one file
 * holds a VM and its Pod and a diff of dist/ shows everything that will change.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ApiObject, App, Chart, Names, Yaml, YamlOutputType, type AppProps } from 'cdk8s';
import type { IConstruct } from 'constructs';
import type * as api from '../api/kubevirt.js';
import { INSTANCETYPE_KINDS, isInstancetypeObject } from '../api/instancetype.js';
import { PlainApiObject } from '../dsl/plain-api-object.js';
import { CrdChart } from './crds.js';
import { InstallChart, type InstallChartProps } from './install.js';
import { imageRefProblem } from './image.js';
import { installDiskCompiledSchemaStore } from '../api/compiled-schema-cache.js';
import { formatIssues, validateManifest } from '../api/validate.js';
import { renderLauncherPod, type LauncherPodOptions } from './launcher-pod.js';
import type { PodManifest } from './pod-types.js';
import { VALIDATED_REPORT_ENV, YAML_CACHE_FILE_ENV, type ValidatedReport } from './validated-report.js';
import { fastYaml, manifestStringify } from './fast-yaml.js';
import { loadYamlCache, saveYamlCache, serializerId, yamlCacheKey } from './yaml-cache.js';
import { YAML_CACHE_KEY, type YamlCache } from './watch-protocol.js';

export const OUTPUT_FILE_EXTENSION = '.k8s.yaml';
/** Construct id of the launcher Pod added under each VirtualMachine construct. */
export const LAUNCHER_POD_ID = 'LauncherPod';

/** What synth needs from the DSL's VirtualMachine construct (dsl/virtual-machine.ts). */
export interface VirtualMachineConstruct extends IConstruct {
  toManifest(): api.VirtualMachine;
  /** Render and validate once per synthesis instead of once per cdk8s pass (optional). */
  beginSynthesis?(): void;
  endSynthesis?(): void;
  /** True when the construct's cdk8s validation runs validateManifest over toManifest(). */
  readonly validatesManifest?: boolean;
}

/**
 * True for the DSL's VirtualMachine constructs. Asks the construct's own class
 * (`VirtualMachine.isVirtualMachine(x)`), so synth needs no import of dsl/ and copies of the
 * DSL loaded twice still match.
 */
export function isVirtualMachineConstruct(x: IConstruct): x is VirtualMachineConstruct {
  const ctor = (x as { constructor?: { isVirtualMachine?: (c: unknown) => boolean } }).constructor;
  return typeof ctor?.isVirtualMachine === 'function' && ctor.isVirtualMachine(x) === true
    && typeof (x as Partial<VirtualMachineConstruct>).toManifest === 'function';
}

export interface VirtopsAppProps extends Omit<AppProps, 'yamlOutputType' | 'outputFileExtension'> {
  /** Emit `crds.k8s.yaml`. @default true */
  readonly crds?: boolean;
  /** Emit `install.k8s.yaml` (namespace, RBAC, controller, node agent). @default true */
  readonly install?: boolean | InstallChartProps;
  /** How launcher Pods are rendered (image, emulation). */
  readonly launcher?: LauncherPodOptions;
  /**
   * The virtops image the controller, the node agent and every launcher Pod run (what
   * `npm run image` builds and prints); `launcher.launcherImage` and `install.image`
   * override it for their part. @default virtopsImage() (synth/image.ts): localhost:5000/virtops:<version>
   */
  readonly image?: string;
}

export class VirtopsApp extends App {
  private readonly launcherOptions: LauncherPodOptions;

  constructor(props: VirtopsAppProps = {}) {
    super({
      ...props,
      outdir: props.outdir ?? process.env.CDK8S_OUTDIR ?? 'dist',
      outputFileExtension: OUTPUT_FILE_EXTENSION,
      yamlOutputType: YamlOutputType.FILE_PER_CHART,
    });
    // The DSL validates every VM against the KubeVirt schema: load its compiled validator from disk.
    installDiskCompiledSchemaStore();
    const badImage = props.image === undefined ? undefined : imageRefProblem('VirtopsApp image', props.image);
    if (badImage) throw new Error(badImage);
    const image = props.image ? { image: props.image } : {};
    this.launcherOptions = { ...(props.image ? { launcherImage: props.image } : {}), ...props.launcher };
    if (props.crds !== false) new CrdChart(this, 'crds');
    if (props.install !== false) new InstallChart(this, 'install', { ...image, ...(typeof props.install === 'object' ? props.install : {}) });
  }

  /** Every VirtualMachine construct in the tree, in construct-tree order. */
  get virtualMachines(): VirtualMachineConstruct[] {
    return this.node.findAll().filter(isVirtualMachineConstruct);
  }

  /**
   * Adds a launcher Pod ApiObject under each VirtualMachine construct that has none yet.
   * Idempotent, so synth() may run twice. Returns how many were added. `constructs`: the
   * app's tree, if the caller has already walked it (synth does).
   */
  attachLauncherPods(constructs: readonly IConstruct[] = this.node.findAll()): number {
    let added = 0;
    // The app's instancetypes/preferences: a VM sized by one gets a Pod sized by it.
    const instancetypes = constructs.flatMap((c) => (ApiObject.isApiObject(c) && (INSTANCETYPE_KINDS as readonly string[]).includes(c.kind) ? [c.toJson()] : [])).filter(isInstancetypeObject);
    for (const vm of constructs.filter(isVirtualMachineConstruct)) {
      if (vm.node.tryFindChild(LAUNCHER_POD_ID)) continue;
      const manifest = vm.toManifest();
      let pod: PodManifest;
      try {
        pod = renderLauncherPod(manifest, this.launcherOptions, instancetypes);
      } catch (err) {
        // An invalid VM cannot be rendered; report why through cdk8s validation, which names
        // the construct path, instead of failing on the first bad quantity.
        const issues = validateManifest(manifest);
        const messages = issues.length ? formatIssues(issues).split('\n') : [(err as Error).message];
        vm.node.addValidation({ validate: () => messages });
        continue;
      }
      new PlainApiObject(vm, LAUNCHER_POD_ID, pod);
      added++;
    }
    return added;
  }

  private validatedReport(vms: readonly VirtualMachineConstruct[], files: ReadonlyMap<Chart, string>): ValidatedReport {
    const validated: Record<string, string[]> = {};
    for (const vm of vms) {
      if (vm.validatesManifest !== true) continue;
      const file = files.get(Chart.of(vm));
      const { metadata } = vm.toManifest();
      if (file === undefined || !metadata?.name) continue;
      (validated[file] ??= []).push(`${metadata.namespace ?? ''}/${metadata.name}`);
    }
    return { validatedVirtualMachines: validated };
  }

  /**
   * `<chart-id>.k8s.yaml` per chart (the construct path joined with '-' for nested charts,
   * lowercased; no hash suffix), in the order of `charts` (default: the app's topological
   * order, a dependency graph of the whole tree). Throws when two charts would share a file.
   */
  chartFileNames(charts: readonly Chart[] = this.charts): Map<Chart, string> {
    const names = new Map<Chart, string>();
    const owners = new Map<string, string>();
    for (const chart of charts) {
      const file = chartFileName(chart) + OUTPUT_FILE_EXTENSION;
      const other = owners.get(file);
      if (other !== undefined) {
        throw new Error(`charts '${other}' and '${chart.node.path}' would both be written to ${file}; give one of them a different id`);
      }
      owners.set(file, chart.node.path);
      names.set(chart, file);
    }
    return names;
  }

  override synth(): void {
    // cdk8s validates the whole app once per chart and renders each object on every pass;
    // sealed VMs render and validate once for the whole synthesis.
    // One walk of the tree for the VMs, the instancetypes and the charts (launcher Pods, added
    // below, are none of them).
    const constructs = this.node.findAll();
    const vms = constructs.filter(isVirtualMachineConstruct);
    for (const vm of vms) vm.beginSynthesis?.();
    let files: Map<Chart, string>;
    try {
      this.attachLauncherPods(constructs);
      // Fail before writing anything on clashing file names (the order does not matter here).
      this.chartFileNames(constructs.filter(Chart.isChart));
      withYamlCache(() => super.synth());
      // In the charts' topological order after synth: the order cdk8s' namer used (below).
      files = this.chartFileNames();
      // Validation passed (cdk8s throws otherwise): tell `virtops synth` what it covered.
      const report = process.env[VALIDATED_REPORT_ENV];
      if (report) fs.writeFileSync(report, JSON.stringify(this.validatedReport(vms, files)));
    } finally {
      for (const vm of vms) vm.endSynthesis?.();
    }
    // cdk8s names files Names.toDnsLabel(chart), which appends a hash for ids that are not
    // DNS labels, and prefixes a topological index (0000-...) once charts depend on each
    // other, which would rename every file when one dependency is added. Rename to ours, in
    // the charts' topological order after synth (the order cdk8s' namer used).
    const charts = [...files];
    const staged = charts.map(([chart, file], index) => {
      const simple = path.join(this.outdir, Names.toDnsLabel(chart) + OUTPUT_FILE_EXTENSION);
      const indexed = path.join(this.outdir, `${String(index).padStart(4, '0')}-${Names.toDnsLabel(chart)}${OUTPUT_FILE_EXTENSION}`);
      const from = fs.existsSync(indexed) ? indexed : simple;
      const tmp = path.join(this.outdir, `.${file}.tmp`);
      fs.renameSync(from, tmp);
      return [tmp, path.join(this.outdir, file)] as const;
    });
    for (const [tmp, final] of staged) fs.renameSync(tmp, final);
  }
}

/**
 * Runs `fn` (cdk8s' App.synth) with Yaml.stringify writing virtops' YAML (manifestStringify:
 * cdk8s' text, with quotes for strings that YAML 1.2 readers would misread, e.g. `0o17`) and
 * answering unchanged documents from a cache (synth/yaml-cache.ts): the one `synth --watch`'s
 * worker keeps in memory (YAML_CACHE_KEY), else the file `virtops synth` names
 * (YAML_CACHE_FILE_ENV); without either, every document is serialized. A document is
 * serialized by synth/fast-yaml.ts, which returns manifestStringify's exact text or gives up,
 * and then manifestStringify serializes it; documents are joined with '---\n' as cdk8s does.
 * Entries unused by this run are dropped, so the cache holds one synthesis.
 */
function withYamlCache(fn: () => void): void {
  const original = Object.getOwnPropertyDescriptor(Yaml, 'stringify')!;
  const file = process.env[YAML_CACHE_FILE_ENV];
  let cache = (globalThis as Record<symbol, YamlCache | undefined>)[YAML_CACHE_KEY];
  const serializer = !cache && file ? serializerId(manifestStringify) : undefined;
  if (!cache && file) cache = loadYamlCache(file, serializer!);
  const used: YamlCache = new Map();
  let misses = 0;
  const serialize = (doc: unknown): string => fastYaml(doc) ?? manifestStringify(doc);
  const one = !cache ? serialize : (doc: unknown): string => {
    const key = yamlCacheKey(doc);
    let text = used.get(key) ?? cache.get(key);
    if (text === undefined) {
      text = serialize(doc);
      misses++;
    }
    used.set(key, text);
    return text;
  };
  Object.defineProperty(Yaml, 'stringify', { ...original, value: (...docs: unknown[]) => docs.map((d) => (d === undefined ? '\n' : one(d))).join('---\n') });
  try {
    fn();
  } finally {
    Object.defineProperty(Yaml, 'stringify', original);
  }
  if (!cache) return;
  // Only a complete run replaces the cache: a failed one (an invalid VM) used next to nothing.
  if (serializer !== undefined) {
    if (misses > 0 || used.size !== cache.size) saveYamlCache(file!, serializer, used);
    return;
  }
  cache.clear();
  for (const [k, v] of used) cache.set(k, v);
}

/** File name stem of a chart: its construct path, lowercased, '-'-joined, DNS-safe. */
export function chartFileName(chart: Chart): string {
  const stem = chart.node.scopes.slice(1).map((s) => s.node.id).join('-').toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  if (!stem) throw new Error(`chart '${chart.node.path}' has no usable id for a file name; use letters and digits`);
  return stem;
}
