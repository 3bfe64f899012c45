import type { Command } from 'commander';
import { untilStopped } from '../stop-signal.js';
import type { RawControllerFlags } from '../../reconciler/cluster/run.js';

/**
 * `virtops controller`: the cluster-mode reconciler (git → server-side apply → VMs → VMIs →
 * launcher Pods). Foreground, JSON logs; exits non-zero when it loses leadership so its
 * Deployment restarts it as a follower.
 */
export function registerController(program: Command): void {
  program
    .command('controller')
    .description('run the cluster controller: apply dist/ of a git branch to Kubernetes (server-side apply, prune by inventory) and drive VMs → VMIs → launcher Pods')
    .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .requiredOption('--repo <path|url>', 'git repository: a local path (watched) or a URL (polled)')
    .option('--branch <name>', 'branch to follow', 'main')
    .option('--path <dir>', 'manifest directory inside the repository', 'dist')
    .option('--namespace <ns>', 'namespace of the inventory ConfigMap and the leader Lease', 'virtops-system')
    .option('--leader-elect', 'hold a Lease before acting, so only one replica acts')
    .option('--lease-duration <duration>', 'leader lease duration', '15s')
    .option('--identity <id>', 'leader-election identity (default: host-pid-random)')
    .option('--interval <duration>', 're-apply period (reverts drift), poll period for URLs', '1m')
    .option('--verify-synth', "opt-in: prove each commit's dist/ matches its vms/ by running 'synth --check' in a sandbox (unprivileged uid, no network, read-only, limited; needs root, bwrap, prlimit, setpriv). Default: dist/ is data and no repository code runs")
    .option('--no-freshness-check', 'accepted for compatibility and ignored: the synth check is off unless --verify-synth')
    .option('--crash-loop-backoff <duration>', 'CrashLoopBackOff: the wait before restarting a VM that failed, doubling per failure in a row', '10s')
    .option('--crash-loop-backoff-max <duration>', 'CrashLoopBackOff: the longest wait between restarts', '5m')
    .option('--launcher-libvirt-daemon <where>', "pod: every launcher Pod runs its own libvirt daemon (real kubelet nodes; the install manifests pass it) | external: the node's libvirtd (process-runtime agents); default: as each template in git says")
    .option('--launcher-socket-dir <dir>', "with --launcher-libvirt-daemon pod: the node dir launcher Pods publish their sockets in, the agents' --launcher-socket-dir (default /var/lib/virtops/launchers)")
    .option('--cache-dir <dir>', 'keep the git clone here, reused across restarts (default: a temp dir removed on exit)')
    .option('--dashboard-listen <host:port>', 'serve the web dashboard on this address (off by default); sign in with the link `virtops dashboard --kubeconfig F` prints (the token is in Secret virtops-dashboard of --namespace)')
    .action(async (raw: RawControllerFlags & { dashboardListen?: string }) => {
      const [{ runController, validateControllerFlags }, { daemonLogger }] = await Promise.all([import('../../reconciler/cluster/run.js'), import('../daemon-log.js')]);
      const { dashboardListen, ...flags } = raw;
      const v = validateControllerFlags(flags);
      const dash = dashboardListen === undefined ? undefined : (await import('../../reconciler/cluster/dashboard.js')).parseDashboardListen(dashboardListen);
      const errors = [...(v.ok ? [] : v.errors), ...(dash && 'error' in dash ? [dash.error] : [])];
      if (!v.ok || errors.length) throw new Error(`invalid flags:\n  ${errors.join('\n  ')}`);
      const log = daemonLogger('virtops-controller');
      const handle = await runController(v.config, log);
      // The dashboard (reconciler/cluster/dashboard.ts): beside the controller, reading the API server.
      const dashboard = dash && !('error' in dash) ? await (await import('../../reconciler/cluster/dashboard.js')).startControllerDashboard(handle, v.config, dash, log.child({ component: 'dashboard' })) : undefined;
      const stopAll = async (): Promise<void> => {
        await dashboard?.stop();
        await handle.stop();
      };
      const code = await Promise.race([untilStopped(stopAll, log).then(() => 0, () => 1), handle.lostLeadership.then(() => 2)]);
      process.exit(code);
    });
}
