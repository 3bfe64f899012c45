import type { Command } from 'commander';
import { addAccessOptions, openAccess, parseResource, type AccessOptions } from '../vm-access.js';

/**
 * `virtops get vms|vmis [-n NS | -A] [-o wide|json|yaml]`, kubectl-style, from the local
 * `virtops up` or (with a kubeconfig) the cluster, with KubeVirt's columns there.
 */
export function registerGet(program: Command): void {
  addAccessOptions(
    program
      .command('get')
      .description('list VMs (single host: NAME AGE STATUS READY REVISION; cluster: KubeVirt\'s columns) or VMIs (NAME AGE PHASE IP NODENAME READY; on a single host from each launcher, as root)')
      .argument('<resource>', 'vms | vmis (vm, vmi, virtualmachines, virtualmachineinstances) | dv (datavolumes: NAME PHASE PROGRESS RESTARTS AGE) | pools (vmpools, single host: NAME DESIRED CURRENT READY VMS)')
      .option('-o, --output <format>', 'wide | json | yaml')
      .option('-n, --namespace <ns>', 'only this namespace (single host default: all; cluster default: the context\'s)')
      .option('-A, --all-namespaces', 'every namespace (adds a NAMESPACE column)'),
  ).action(async (resource: string, opts: { output?: string; namespace?: string; allNamespaces?: boolean } & AccessOptions) => {
    if (DATAVOLUME_RESOURCES.includes(resource)) return getDataVolumes(opts);
    if (POOL_RESOURCES.includes(resource)) return getPools(opts);
    const r = parseResource(resource, ['vms', 'vmis'], 'virtops get vms (or, in a cluster, virtops get vmis)');
    if (opts.output !== undefined && !['wide', 'json', 'yaml'].includes(opts.output)) {
      throw new Error(`-o "${opts.output}" is not one of wide, json, yaml: e.g. virtops get vms -o wide`);
    }
    if (opts.allNamespaces && opts.namespace) throw new Error('-A and -n exclude each other: pass one');
    const access = await openAccess(opts);
    const listing = await access.list(r, { ...(opts.namespace ? { namespace: opts.namespace } : {}), all: opts.allNamespaces === true });
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(listing.data, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write((await import('../../api/yaml-compat.js')).toYaml(listing.data));
    if (listing.notice) process.stderr.write(`${listing.notice}\n`);
    const text = listing.table({ wide: opts.output === 'wide', now: Date.now() });
    if (text === undefined) return void process.stderr.write(`${listing.empty}\n`);
    process.stdout.write(`${text}\n`);
  });
}

type DataVolumeView = import('../../reconciler/standalone/datavolumes.js').DataVolumeView;
type ClusterDataVolume = import('../../api/datavolume.js').DataVolume & { metadata: { creationTimestamp?: string } };

/** Pure: a DataVolume of the API server as `virtops get dv` shows it (CDI's Pending before any status). */
export function clusterDataVolumeView(dv: ClusterDataVolume): DataVolumeView {
  const src = dv.spec?.source ?? {};
  const kind = Object.keys(src).find((k) => src[k] !== undefined && src[k] !== null) ?? (dv.spec?.sourceRef ? 'sourceRef' : 'unknown');
  const owner = dv.metadata.ownerReferences?.find((o) => o.kind === 'VirtualMachine');
  const st = dv.status;
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name: dv.metadata.name, namespace: dv.metadata.namespace ?? 'default', ...(owner ? { ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, controller: owner.controller === true }] } : {}) },
    spec: { source: { kind } },
    status: st?.phase
      ? { ...st, progress: st.progress ?? 'N/A', claimName: st.claimName ?? dv.metadata.name, conditions: st.conditions ?? [] }
      : { phase: 'Pending', progress: 'N/A', claimName: dv.metadata.name, conditions: dv.metadata.creationTimestamp ? [{ type: 'Bound', status: 'False', reason: 'Pending', message: '', lastTransitionTime: dv.metadata.creationTimestamp }] : [] },
  };
}

/** `virtops get dv`: the DataVolumes of the local `virtops up` or (with a kubeconfig) the cluster (CDI's columns). */
const DATAVOLUME_RESOURCES = ['dv', 'dvs', 'datavolume', 'datavolumes'];

async function getDataVolumes(opts: { output?: string; namespace?: string; allNamespaces?: boolean } & AccessOptions): Promise<void> {
  const { formatDataVolumes } = await import('./storage-format.js');
  let items: DataVolumeView[];
  if (opts.kubeconfig !== undefined || (process.env['KUBECONFIG'] && !opts.server && !opts.stateDir && !process.env['VIRTOPS_SERVER'] && !process.env['VIRTOPS_STATE_DIR'])) {
    // A cluster: the DataVolumes on the API server (virtops' agents or CDI write their status).
    if (opts.allNamespaces && opts.namespace) throw new Error('-A and -n exclude each other: pass one');
    const access = await openAccess(opts);
    const kube = (access as unknown as { kube: import('../kube-rest.js').KubeRest }).kube;
    const ns = opts.namespace ?? kube.target.namespace;
    const path = opts.allNamespaces ? '/apis/cdi.kubevirt.io/v1beta1/datavolumes' : `/apis/cdi.kubevirt.io/v1beta1/namespaces/${encodeURIComponent(ns)}/datavolumes`;
    const list = await kube.get<{ items: ClusterDataVolume[] }>(path).catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) throw new Error('the cluster has no cdi.kubevirt.io/v1beta1 DataVolume kind: apply virtops CRDs (dist/crds.k8s.yaml carries the DataVolume CRD) or install CDI');
      throw err;
    });
    items = (list?.items ?? []).map(clusterDataVolumeView);
  } else {
    const { apiCall, resolveTarget } = await import('../../reconciler/standalone/client.js');
    const list = await apiCall<{ items: DataVolumeView[] }>(await resolveTarget(opts), 'GET', '/api/v1/datavolumes');
    items = opts.namespace && !opts.allNamespaces ? list.items.filter((d) => d.metadata.namespace === opts.namespace) : list.items;
  }
  if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify({ items }, null, 2)}\n`);
  if (opts.output === 'yaml') return void process.stdout.write((await import('../../api/yaml-compat.js')).toYaml({ items }));
  const text = formatDataVolumes(items, { now: Date.now(), wide: opts.output === 'wide' });
  if (text === undefined) return void process.stderr.write('No DataVolumes found.\n');
  process.stdout.write(`${text}\n`);
}

/** `virtops get pools`: the VirtualMachinePools of the local `virtops up` and their status. */
const POOL_RESOURCES = ['pool', 'pools', 'vmpool', 'vmpools', 'virtualmachinepool', 'virtualmachinepools'];

async function getPools(opts: { output?: string; namespace?: string; allNamespaces?: boolean } & AccessOptions): Promise<void> {
  if (opts.kubeconfig !== undefined || (process.env['KUBECONFIG'] && !opts.server && !opts.stateDir && !process.env['VIRTOPS_SERVER'] && !process.env['VIRTOPS_STATE_DIR'])) {
    throw new Error('virtops get pools talks to a local virtops up; in a cluster, kubectl get vmpools shows the same columns (the CRD\'s printer columns)');
  }
  const { apiCall, resolveTarget } = await import('../../reconciler/standalone/client.js');
  const { formatPools } = await import('../pool-format.js');
  const list = await apiCall<{ pools: import('../../reconciler/standalone/pools.js').PoolView[] }>(await resolveTarget(opts), 'GET', '/api/v1/pools');
  const pools = opts.namespace && !opts.allNamespaces ? list.pools.filter((p) => p.namespace === opts.namespace) : list.pools;
  if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify({ pools }, null, 2)}\n`);
  if (opts.output === 'yaml') return void process.stdout.write((await import('../../api/yaml-compat.js')).toYaml({ pools }));
  const text = formatPools(pools, { allNamespaces: opts.allNamespaces === true || !opts.namespace });
  if (text === undefined) return void process.stderr.write('No VirtualMachinePools found.\n');
  process.stdout.write(`${text}\n`);
}
