import type { Command } from 'commander';
import { SNAPSHOT_API_VERSION, defaultRestoreName, defaultSnapshotName, type VirtualMachineRestore, type VirtualMachineSnapshot } from '../../api/snapshot.js';
import { apiCall, parseVmName, resolveTarget } from '../../reconciler/standalone/client.js';
import type { KubeRest } from '../kube-rest.js';
import { addAccessOptions, selectMode, type AccessOptions } from '../vm-access.js';
import { formatRestores, formatSnapshots } from './storage-format.js';

/**
 * Where snapshots live: the local `virtops up` (its API) or, with a kubeconfig, the cluster
 * (the objects on the API server; the node agent holding the VM's claims takes them,
 * reconciler/cluster/snapshots.ts).
 */
interface SnapshotBackend {
  /** The namespace of a bare name. */
  defaultNamespace: string;
  create(namespace: string, vm: string, opts: { name?: string; failureDeadline?: string }): Promise<VirtualMachineSnapshot>;
  snapshots(namespace: string | undefined): Promise<VirtualMachineSnapshot[]>;
  restores(namespace: string | undefined): Promise<VirtualMachineRestore[]>;
  restore(namespace: string, snapshot: string, opts: { target?: string; name?: string; policy?: string }): Promise<VirtualMachineRestore>;
  remove(namespace: string, name: string): Promise<void>;
}

async function backend(opts: AccessOptions): Promise<SnapshotBackend> {
  const mode = selectMode(opts, process.env);
  if (mode.mode === 'cluster') {
    const { KubeRest } = await import('../kube-rest.js');
    return clusterBackend(await KubeRest.connect(mode.kubeconfigPaths, opts.context ? { context: opts.context } : {}));
  }
  const target = await resolveTarget(opts);
  return {
    defaultNamespace: 'default',
    create: (namespace, vm, o) => apiCall<VirtualMachineSnapshot>(target, 'POST', '/api/v1/snapshots', { namespace, vm, ...(o.name ? { name: o.name } : {}), ...(o.failureDeadline ? { failureDeadline: o.failureDeadline } : {}) }),
    snapshots: async (ns) => (await apiCall<{ items: VirtualMachineSnapshot[] }>(target, 'GET', '/api/v1/snapshots')).items.filter((x) => ns === undefined || x.metadata.namespace === ns),
    restores: async (ns) => (await apiCall<{ items: VirtualMachineRestore[] }>(target, 'GET', '/api/v1/restores')).items.filter((x) => ns === undefined || x.metadata.namespace === ns),
    restore: (namespace, snapshot, o) => apiCall<VirtualMachineRestore>(target, 'POST', '/api/v1/restores', { namespace, snapshot, ...(o.target ? { target: o.target } : {}), ...(o.name ? { name: o.name } : {}), ...(o.policy ? { targetReadinessPolicy: o.policy } : {}) }),
    remove: async (namespace, name) => void (await apiCall(target, 'POST', `/api/v1/snapshots/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/delete`)),
  };
}

/** The cluster: the objects as kubectl would create them; names defaulted as `virtops up` does. */
export function clusterBackend(kube: KubeRest): SnapshotBackend {
  const path = (plural: string, ns?: string, name?: string) => `/apis/${SNAPSHOT_API_VERSION}/${ns ? `namespaces/${encodeURIComponent(ns)}/` : ''}${plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
  const notFound = (what: string) => (err: unknown) => {
    if ((err as { code?: number }).code === 404) throw new Error(`${what} not found; see virtops snapshot list --kubeconfig F`);
    throw err;
  };
  return {
    defaultNamespace: kube.target.namespace,
    create: (namespace, vm, o) => kube.call<VirtualMachineSnapshot>('POST', path('virtualmachinesnapshots', namespace), {
      apiVersion: SNAPSHOT_API_VERSION, kind: 'VirtualMachineSnapshot', metadata: { name: o.name ?? defaultSnapshotName(vm, new Date()), namespace },
      spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: vm }, ...(o.failureDeadline ? { failureDeadline: o.failureDeadline } : {}) },
    }),
    snapshots: async (ns) => (await kube.call<{ items: VirtualMachineSnapshot[] }>('GET', path('virtualmachinesnapshots', ns))).items,
    restores: async (ns) => (await kube.call<{ items: VirtualMachineRestore[] }>('GET', path('virtualmachinerestores', ns))).items,
    restore: async (namespace, snapshot, o) => {
      const snap = await kube.call<VirtualMachineSnapshot>('GET', path('virtualmachinesnapshots', namespace, snapshot)).catch(notFound(`VirtualMachineSnapshot ${namespace}/${snapshot}`));
      return kube.call<VirtualMachineRestore>('POST', path('virtualmachinerestores', namespace), {
        apiVersion: SNAPSHOT_API_VERSION, kind: 'VirtualMachineRestore', metadata: { name: o.name ?? defaultRestoreName(snapshot, new Date()), namespace },
        spec: { target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: o.target ?? snap.spec.source.name }, virtualMachineSnapshotName: snapshot, ...(o.policy ? { targetReadinessPolicy: o.policy } : {}) },
      });
    },
    remove: async (namespace, name) => void (await kube.call('DELETE', path('virtualmachinesnapshots', namespace, name)).catch(notFound(`VirtualMachineSnapshot ${namespace}/${name}`))),
  };
}

/**
 * `virtops snapshot create|list|restore|delete`: snapshots of a VM's persistent disks (claims,
 * hostDisks) through the local `virtops up` (reconciler/standalone/snapshots.ts) or, with
 * `--kubeconfig` (or $KUBECONFIG), the cluster's VirtualMachineSnapshot/VirtualMachineRestore
 * objects (reconciler/cluster/snapshots.ts). Snapshots and restores declared in git
 * (snapshot.kubevirt.io/v1beta1) are listed too.
 */
export function registerSnapshot(program: Command): void {
  const snap = program
    .command('snapshot')
    .description('snapshots of VMs\' persistent disks (claims, hostDisks), online (running VM: libvirt backup job, guest fs frozen by its agent when one answers) or offline; restore into the same VM (stopped, as KubeVirt requires) or another');

  addAccessOptions(
    snap
      .command('create')
      .description('snapshot the VM\'s claims and hostDisks now (VirtualMachineSnapshot); prints its name')
      .argument('<vm>', 'VM name or namespace/name')
      .option('--name <name>', 'snapshot name (default: <vm>-<UTC time>)')
      .option('-n, --namespace <ns>', 'namespace (default: default)')
      .option('--failure-deadline <duration>', 'give up after this long (default 5m, KubeVirt\'s)')
      .option('--wait', 'wait until it is ready to use (or failed)'),
  ).action(async (vmArg: string, opts: { name?: string; namespace?: string; failureDeadline?: string; wait?: boolean } & AccessOptions) => {
    const b = await backend(opts);
    const [namespace, vm] = parseVmName(vmArg, opts.namespace ?? b.defaultNamespace);
    let s = await b.create(namespace, vm, { ...(opts.name ? { name: opts.name } : {}), ...(opts.failureDeadline ? { failureDeadline: opts.failureDeadline } : {}) });
    process.stdout.write(`virtualmachinesnapshot ${namespace}/${s.metadata.name} created\n`);
    if (opts.wait) {
      // No status yet (a cluster agent has not taken it) counts as in progress.
      s = await waitFor(() => b.snapshots(namespace).then((l) => l.find((x) => x.metadata.name === s.metadata.name)), (x) => x?.status?.phase !== undefined && x.status.phase !== 'InProgress');
      report(s.status?.phase === 'Succeeded', `${s.metadata.name}: ${s.status?.phase}${s.status?.indications?.length ? ` (${s.status.indications.join(', ')})` : ''}${s.status?.error ? `: ${s.status.error.message}` : ''}`);
    }
  });

  addAccessOptions(
    snap
      .command('list')
      .alias('ls')
      .description('list snapshots (NAME SOURCEKIND SOURCENAME PHASE READYTOUSE CREATIONTIME INDICATIONS ERROR); --restores lists restores')
      .option('--restores', 'list VirtualMachineRestores instead')
      .option('-n, --namespace <ns>', 'only this namespace (default: all)')
      .option('-o, --output <format>', 'json | yaml'),
  ).action(async (opts: { restores?: boolean; output?: string; namespace?: string } & AccessOptions) => {
    if (opts.output !== undefined && !['json', 'yaml'].includes(opts.output)) throw new Error(`-o "${opts.output}" is not one of json, yaml`);
    const b = await backend(opts);
    const items = opts.restores ? await b.restores(opts.namespace) : await b.snapshots(opts.namespace);
    const list = { items };
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write((await import('../../api/yaml-compat.js')).toYaml(list));
    const text = opts.restores ? formatRestores(items as VirtualMachineRestore[], { now: Date.now() }) : formatSnapshots(items as VirtualMachineSnapshot[], { now: Date.now() });
    if (text === undefined) return void process.stderr.write(`No ${opts.restores ? 'restores' : 'snapshots'} found.\n`);
    process.stdout.write(`${text}\n`);
  });

  addAccessOptions(
    snap
      .command('restore')
      .description('restore a snapshot (VirtualMachineRestore) into its VM, or --target another: the target must be stopped (--stop stops it; it then stays stopped until virtops start)')
      .argument('<snapshot>', 'snapshot name or namespace/name')
      .option('--target <vm>', 'restore into this VM (default: the snapshot\'s); a VM not in git gets new claims restore-<id>-<volume> to add it with')
      .option('--name <name>', 'restore name (default: restore-<snapshot>-<id>)')
      .option('--stop', 'stop a running target first (targetReadinessPolicy StopTarget); default: wait up to 5 min for it to stop (WaitGracePeriod)')
      .option('--policy <policy>', 'targetReadinessPolicy: WaitGracePeriod | StopTarget | WaitEventually | FailImmediate')
      .option('-n, --namespace <ns>', 'namespace (default: default)')
      .option('--wait', 'wait until it completes (or fails)'),
  ).action(async (snapArg: string, opts: { target?: string; name?: string; stop?: boolean; policy?: string; namespace?: string; wait?: boolean } & AccessOptions) => {
    if (opts.stop && opts.policy && opts.policy !== 'StopTarget') throw new Error(`--stop and --policy ${opts.policy} contradict each other: pass one`);
    const policy = opts.stop ? 'StopTarget' : opts.policy;
    const b = await backend(opts);
    const [namespace, snapshot] = parseVmName(snapArg, opts.namespace ?? b.defaultNamespace);
    let r = await b.restore(namespace, snapshot, { ...(opts.target ? { target: opts.target } : {}), ...(opts.name ? { name: opts.name } : {}), ...(policy ? { policy } : {}) });
    process.stdout.write(`virtualmachinerestore ${namespace}/${r.metadata.name} created (target VirtualMachine ${r.spec.target.name})\n`);
    if (opts.wait) {
      r = await waitFor(() => b.restores(namespace).then((l) => l.find((x) => x.metadata.name === r.metadata.name)), (x) => x?.status?.complete === true || x?.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'Operation failed') === true);
      const msg = r.status?.conditions.find((c) => c.type === 'Ready')?.message;
      report(r.status?.complete === true, `${r.metadata.name}: ${r.status?.complete ? 'complete' : 'failed'}${msg ? `: ${msg}` : ''}`);
    }
  });

  addAccessOptions(
    snap
      .command('delete')
      .alias('rm')
      .description('delete a snapshot and its disk copies (one declared in git: remove its manifest instead)')
      .argument('<snapshot>', 'snapshot name or namespace/name')
      .option('-n, --namespace <ns>', 'namespace (default: default)'),
  ).action(async (snapArg: string, opts: { namespace?: string } & AccessOptions) => {
    const b = await backend(opts);
    const [namespace, name] = parseVmName(snapArg, opts.namespace ?? b.defaultNamespace);
    await b.remove(namespace, name);
    process.stdout.write(`virtualmachinesnapshot ${namespace}/${name} deleted\n`);
  });
}

async function waitFor<T>(get: () => Promise<T | undefined>, done: (x: T | undefined) => boolean): Promise<T> {
  for (;;) {
    const x = await get();
    if (x === undefined) throw new Error('it disappeared while waiting (deleted?)');
    if (done(x)) return x;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function report(ok: boolean, line: string): void {
  (ok ? process.stdout : process.stderr).write(`${line}\n`);
  if (!ok) process.exitCode = 1;
}
