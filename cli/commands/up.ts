import type { Command } from 'commander';
import { untilStopped } from '../stop-signal.js';
import type { RawUpFlags, UpConfig, UpOptions } from '../../reconciler/standalone/up.js';
// A leaf module (node:path only): registering the command still loads no reconciler wiring.
import { DEFAULT_STATE_DIR } from '../../reconciler/agent/host-config.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/**
 * `virtops up`: git → running VMs on this host, kept converged (foreground; JSON logs on
 * stdout; SIGTERM/SIGINT stop reconciling and leave VMs running for the next `up` to adopt).
 * `inject.options`: what code (not flags) passes to runUp; only benchmarks use it
 * (bench/pool-entry.ts injects its pool runtime).
 */
export function registerUp(program: Command, inject: { options?: (config: UpConfig) => UpOptions } = {}): void {
  program
    .command('up')
    .description('run the single-host GitOps reconciler: apply dist/ of a git branch to libvirt on this host and keep it converged')
    .requiredOption('--repo <path|url>', 'git repository: a local path (watched) or a URL (polled)')
    .option('--branch <name>', 'branch to follow', 'main')
    .option('--path <dir>', 'manifest directory inside the repository', 'dist')
    .option('--state-dir <dir>', 'where virtops keeps its state, launcher dirs and image cache', DEFAULT_STATE_DIR)
    .option('--listen <host:port>', 'also serve the control API on TCP and the web dashboard at / (every request then needs the bearer token in <state-dir>/api.token, or for the dashboard a session from the login link printed at start); default: only the unix socket <state-dir>/up.sock (mode 0600)')
    .option('--webhook-listen <host:port>', 'serve the git push webhook (/hooks/git, and nothing else) here; needs --webhook-secret-file')
    .option('--metrics-listen <host:port>', 'serve /metrics, /healthz and /readyz (read-only, unauthenticated, nothing else) here')
    .option('--emulation <mode>', 'auto | kvm | tcg: overrides the launcher Pods\' --emulation on this host', 'auto')
    .option('--interval <duration>', 'resync period (and poll period for URLs), e.g. 30s, 1m', '1m')
    .option('--libvirt-uri <uri>', 'libvirt connection for launchers', 'qemu:///system')
    .option('--webhook-secret-file <file>', 'shared secret for POST /hooks/git on --webhook-listen (GitHub, GitLab, generic HMAC)')
    .option('--insecure-registry <host:port>', 'registry reached over plain HTTP (repeatable)', collect)
    .option('--verify-synth', "opt-in: prove each commit's dist/ matches its vms/ by running 'synth --check' in a sandbox (unprivileged uid, no network, read-only, limited; needs root, bwrap, prlimit, setpriv). Default: dist/ is data and no repository code runs")
    .option('--no-freshness-check', 'accepted for compatibility and ignored: the synth check is off unless --verify-synth')
    .option('--concurrency <n>', 'VMs reconciled in parallel', '16')
    .option('--crash-loop-backoff <duration>', 'CrashLoopBackOff: the wait before restarting a VM that failed, doubling per failure in a row', '10s')
    .option('--crash-loop-backoff-max <duration>', 'CrashLoopBackOff: the longest wait between restarts', '5m')
    .action(async (raw: RawUpFlags) => {
      const [{ runUp, validateUpFlags }, { daemonLogger }] = await Promise.all([import('../../reconciler/standalone/up.js'), import('../daemon-log.js')]);
      const v = validateUpFlags(raw);
      if (!v.ok) throw new Error(`invalid flags:\n  ${v.errors.join('\n  ')}`);
      const log = daemonLogger('virtops-up');
      const handle = await runUp(v.config, log, inject.options?.(v.config));
      await untilStopped(() => handle.stop(), log).catch((err: unknown) => log.error({ err }, 'stopping failed'));
      process.exit(0);
    });
}
