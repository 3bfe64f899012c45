import type { Command } from 'commander';
import type { VirtualMachineRestore, VirtualMachineSnapshot } from '../../api/snapshot.js';
import { addConnectionOptions, apiCall, parseVmName, resolveTarget, type ApiTarget, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import { formatRestores, formatSnapshots } from './storage-format.js';

/**
 * `virtops snapshot create|list|restore|delete`: snapshots of a VM's persistent disks (claims,
 * hostDisks) through the local `virtops up` (reconciler/standalone/snapshots.ts). Snapshots and
 * restores declared in git (snapshot.kubevirt.io/v1beta1) are listed too.
 */
export function registerSnapshot(program: Command): void {
  const snap = program
    .command('snapshot')
    .description('single host: snapshots of VMs\' persistent disks (claims, hostDisks), online (running VM: libvirt backup job, guest fs frozen by its agent when one answers) or offline; restore into the same VM (stopped, as KubeVirt requires) or another');

  addConnectionOptions(
    snap
      .command('create')
      .description('snapshot the VM\'s claims and hostDisks now (VirtualMachineSnapshot); prints its name')
      .argument('<vm>', 'VM name or namespace/name')
      .option('--name <name>', 'snapshot name (default: <vm>-<UTC time>)')
      .option('-n, --namespace <ns>', 'namespace (default: default)')
      .option('--failure-deadline <duration>', 'give up after this long (default 5m, KubeVirt\'s)')
      .option('--wait', 'wait until it is ready to use (or failed)'),
  ).action(async (vmArg: string, opts: { name?: string; namespace?: string; failureDeadline?: string; wait?: boolean } & ConnectionOptions) => {
    const [namespace, vm] = parseVmName(vmArg, opts.namespace);
    const target = await resolveTarget(opts);
    let s = await apiCall<VirtualMachineSnapshot>(target, 'POST', '/api/v1/snapshots', { namespace, vm, ...(opts.name ? { name: opts.name } : {}), ...(opts.failureDeadline ? { failureDeadline: opts.failureDeadline } : {}) });
    process.stdout.write(`virtualmachinesnapshot ${namespace}/${s.metadata.name} created\n`);
    if (opts.wait) {
      s = await waitFor(target, () => apiCall<{ items: VirtualMachineSnapshot[] }>(target, 'GET', '/api/v1/snapshots').then((l) => l.items.find((x) => x.metadata.name === s.metadata.name && x.metadata.namespace === namespace)), (x) => x?.status?.phase !== 'InProgress');
      report(s.status?.phase === 'Succeeded', `${s.metadata.name}: ${s.status?.phase}${s.status?.indications?.length ? ` (${s.status.indications.join(', ')})` : ''}${s.status?.error ? `: ${s.status.error.message}` : ''}`);
    }
  });

  addConnectionOptions(
    snap
      .command('list')
      .alias('ls')
      .description('list snapshots (NAME SOURCEKIND SOURCENAME PHASE READYTOUSE CREATIONTIME INDICATIONS ERROR); --restores lists restores')
      .option('--restores', 'list VirtualMachineRestores instead')
      .option('-o, --output <format>', 'json | yaml'),
  ).action(async (opts: { restores?: boolean; output?: string } & ConnectionOptions) => {
    if (opts.output !== undefined && !['json', 'yaml'].includes(opts.output)) throw new Error(`-o "${opts.output}" is not one of json, yaml`);
    const target = await resolveTarget(opts);
    const path = opts.restores ? '/api/v1/restores' : '/api/v1/snapshots';
    const list = await apiCall<{ items: (VirtualMachineSnapshot | VirtualMachineRestore)[] }>(target, 'GET', path);
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write((await import('yaml')).stringify(list));
    const text = opts.restores ? formatRestores(list.items as VirtualMachineRestore[], { now: Date.now() }) : formatSnapshots(list.items as VirtualMachineSnapshot[], { now: Date.now() });
    if (text === undefined) return void process.stderr.write(`No ${opts.restores ? 'restores' : 'snapshots'} found.\n`);
    process.stdout.write(`${text}\n`);
  });

  addConnectionOptions(
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
  ).action(async (snapArg: string, opts: { target?: string; name?: string; stop?: boolean; policy?: string; namespace?: string; wait?: boolean } & ConnectionOptions) => {
    const [namespace, snapshot] = parseVmName(snapArg, opts.namespace);
    if (opts.stop && opts.policy && opts.policy !== 'StopTarget') throw new Error(`--stop and --policy ${opts.policy} contradict each other: pass one`);
    const policy = opts.stop ? 'StopTarget' : opts.policy;
    const target = await resolveTarget(opts);
    let r = await apiCall<VirtualMachineRestore>(target, 'POST', '/api/v1/restores', { namespace, snapshot, ...(opts.target ? { target: opts.target } : {}), ...(opts.name ? { name: opts.name } : {}), ...(policy ? { targetReadinessPolicy: policy } : {}) });
    process.stdout.write(`virtualmachinerestore ${namespace}/${r.metadata.name} created (target VirtualMachine ${r.spec.target.name})\n`);
    if (opts.wait) {
      r = await waitFor(target, () => apiCall<{ items: VirtualMachineRestore[] }>(target, 'GET', '/api/v1/restores').then((l) => l.items.find((x) => x.metadata.name === r.metadata.name && x.metadata.namespace === namespace)), (x) => x?.status?.complete === true || x?.status?.conditions.some((c) => c.type === 'Ready' && c.reason === 'Operation failed') === true);
      const msg = r.status?.conditions.find((c) => c.type === 'Ready')?.message;
      report(r.status?.complete === true, `${r.metadata.name}: ${r.status?.complete ? 'complete' : 'failed'}${msg ? `: ${msg}` : ''}`);
    }
  });

  addConnectionOptions(
    snap
      .command('delete')
      .alias('rm')
      .description('delete a snapshot and its disk copies (one declared in git: remove its manifest instead)')
      .argument('<snapshot>', 'snapshot name or namespace/name')
      .option('-n, --namespace <ns>', 'namespace (default: default)'),
  ).action(async (snapArg: string, opts: { namespace?: string } & ConnectionOptions) => {
    const [namespace, name] = parseVmName(snapArg, opts.namespace);
    await apiCall(await resolveTarget(opts), 'POST', `/api/v1/snapshots/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/delete`);
    process.stdout.write(`virtualmachinesnapshot ${namespace}/${name} deleted\n`);
  });
}

async function waitFor<T>(_target: ApiTarget, get: () => Promise<T | undefined>, done: (x: T | undefined) => boolean): Promise<T> {
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
