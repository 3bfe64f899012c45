import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ExtraUser } from '../../reconciler/cluster/testenv/index.js';
import { defaultBinDir } from '../../reconciler/cluster/testenv/versions.js';

/** The control-plane code (Go builds, process management) loads only when a testenv command runs. */
const testenvModule = () => import('../../reconciler/cluster/testenv/index.js');

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

/** `--user name[:group1,group2]` → ExtraUser; messages name the flag. */
function parseUser(spec: string): ExtraUser {
  const eq = spec.indexOf('=');
  const name = eq < 0 ? spec : spec.slice(0, eq);
  const groups = eq < 0 ? [] : spec.slice(eq + 1).split(',').filter(Boolean);
  if (name === '') throw new Error(`--user "${spec}": expected NAME or NAME=GROUP1,GROUP2`);
  return { name, groups };
}

/**
 * `virtops testenv build|up|down`: a real local Kubernetes control plane (etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler) built from Go modules, no Docker.
 * `up` leaves the processes running in the background; `down` stops them.
 */
export function registerTestenv(program: Command): void {
  const testenv = program.command('testenv').description('a local Kubernetes control plane for tests, built from source (no Docker)');

  testenv
    .command('build')
    .description('build kube-apiserver/scheduler/controller-manager and etcd into the cache (skipped when present)')
    .option('--kubelet', 'also the real node: kubelet, containerd + shim, pause/busybox images')
    .action(async (flags: { kubelet?: boolean }) => {
      const { ensureBinaries, ensureNodeArtifacts } = await testenvModule();
      const bins = await ensureBinaries({ onProgress: progress });
      if (flags.kubelet) await ensureNodeArtifacts(bins.binDir, progress);
      process.stdout.write(`${bins.binDir}\n`);
    });

  testenv
    .command('up')
    .description('build if needed, start the control plane in the background, print the admin kubeconfig path')
    .requiredOption('--dir <dir>', 'state directory (kubeconfig, pki, etcd data, logs, pid files)')
    .option('--bin-dir <dir>', `directory with prebuilt kube and etcd (default: ${defaultBinDir()})`)
    .option('--user <name[=groups]>', 'extra static-token user, e.g. alice=devs,ops (repeatable); kubeconfig in DIR/users/', collect)
    .option('--controllers <list>', 'kube-controller-manager --controllers', '*')
    .option('--kubelet', 'also start one real node: containerd + kubelet + CNI (root; changes host state that `down` restores, see reconciler/cluster/testenv/README.md)')
    .option('--node-name <name>', 'Node name of the --kubelet node; must resolve to a loopback address (default: this machine\'s hostname if it does, else localhost)')
    .action(async (flags: { dir: string; binDir?: string; user?: string[]; controllers: string; kubelet?: boolean; nodeName?: string }) => {
      if (flags.nodeName !== undefined && !flags.kubelet) throw new Error('--node-name: only with --kubelet');
      const { startControlPlane, startNode, stopControlPlane, defaultNodeName } = await testenvModule();
      const nodeName = flags.nodeName ?? (await defaultNodeName());
      const cp = await startControlPlane({
        dir: flags.dir,
        ...(flags.binDir ? { binDir: flags.binDir } : {}),
        // The node's own identity (Node authorizer), as a kubelet has in a real cluster.
        users: [...(flags.user ?? []).map(parseUser), ...(flags.kubelet ? [{ name: `system:node:${nodeName}`, groups: ['system:nodes'] }] : [])],
        controllers: flags.controllers.split(',').map((c) => c.trim()).filter(Boolean),
        detached: true,
        onProgress: progress,
      });
      if (flags.kubelet) {
        try {
          const node = await startNode({ controlPlane: cp, name: nodeName, detached: true, onProgress: progress });
          progress(`node ${node.name} Ready (containerd ${node.containerdVersion}); images: ${node.images.busybox}, push more to ${node.registryHost}`);
        } catch (err) {
          await stopControlPlane(cp.dir);
          throw err;
        }
      }
      progress(`API server ${cp.apiServerUrl} (${cp.kubernetesVersion}); logs in ${cp.dir}/logs; stop with: virtops testenv down --dir ${cp.dir}`);
      process.stdout.write(`${cp.kubeconfigPath}\n`);
    });

  testenv
    .command('down')
    .description('stop every process of the control plane in DIR (SIGTERM, then SIGKILL); a --kubelet node first, restoring the host')
    .requiredOption('--dir <dir>', 'state directory given to `up`')
    .action(async (flags: { dir: string }) => {
      const { runningComponents, stopControlPlane, stopNode, runningNodeProcesses } = await testenvModule();
      const nodeDir = join(flags.dir, 'node');
      if (existsSync(nodeDir)) {
        const nodeBefore = runningNodeProcesses(nodeDir);
        await stopNode(nodeDir);
        if (nodeBefore.length > 0) progress(`stopped the node (${nodeBefore.join(', ')}), removed its containers and restored the host state it changed`);
      }
      const before = runningComponents(flags.dir);
      await stopControlPlane(flags.dir);
      const left = runningComponents(flags.dir);
      if (left.length > 0) throw new Error(`still running in ${flags.dir}: ${left.join(', ')}`);
      progress(before.length > 0 ? `stopped ${before.join(', ')}` : `nothing was running in ${flags.dir}`);
    });

  testenv
    .command('status')
    .description('print the state of the control plane in DIR as JSON')
    .requiredOption('--dir <dir>', 'state directory given to `up`')
    .action(async (flags: { dir: string }) => {
      const { readControlPlane, runningComponents, readNode, runningNodeProcesses } = await testenvModule();
      const info = readControlPlane(flags.dir);
      const running = runningComponents(flags.dir);
      const nodeDir = join(flags.dir, 'node');
      const node = readNode(nodeDir);
      const nodeStatus = node ? { node: { name: node.name, running: runningNodeProcesses(nodeDir), registry: node.registryHost } } : {};
      process.stdout.write(
        `${JSON.stringify({ running, apiServerUrl: info?.apiServerUrl, kubeconfig: info?.kubeconfigPath, version: info?.kubernetesVersion, ...nodeStatus }, null, 2)}\n`,
      );
      if (running.length === 0) process.exitCode = 1;
    });
}
