import type { Command } from 'commander';
import { LAUNCHER_FLAGS, type LauncherConfig, type RawLauncherFlags, validateLauncherFlags } from '../../launcher/flags.js';

/**
 * `virtops launcher <flags>`: the per-VMI launcher (command socket, libvirt domain).
 * `virtops launcher-monitor <flags>`: the launcher in the same process plus the monitor's
 * duties (signals, cleanup after its failure); this is what the launcher Pod's compute
 * container runs, one Node process per VM. Both take the same flags; see
 * launcher/flags.ts, launcher/server/README.md and launcher/monitor/monitor.ts.
 */
export function registerLauncher(program: Command): void {
  addFlags(
    program.command('launcher').description('run the launcher for one VMI: converge its libvirt domain and serve the command socket'),
  ).action(async (opts: RawLauncherFlags) => {
    const config = parseOrExit(opts);
    const { runLauncher } = await import('../../launcher/main.js');
    process.exit(await runLauncher(config));
  });

  addFlags(
    program.command('launcher-monitor').description(
      'run the launcher for one VMI in this process and clean up after its failure (exit codes: 0 clean, 1 launcher failed and cleaned up, 2 bad flags, 3 cleanup failed, 4 launcher could not start); with --cleanup-only, only the cleanup after a launcher process that died (the node agent runs it after a SIGKILL)',
    ),
  )
    .option('--cleanup-only', 'do not run the launcher: stop the domain within the grace period, undefine it, release volumes and remove the socket of the launcher these flags describe (exit 0 clean, 3 failed)')
    .action(async (opts: RawLauncherFlags & { cleanupOnly?: boolean }) => {
      const { cleanupOnly, ...flags } = opts;
      const config = parseOrExit(flags);
      const { runMonitor, runCleanupOnly } = await import('../../launcher/monitor/monitor.js');
      process.exit(await (cleanupOnly ? runCleanupOnly(config) : runMonitor(config)));
    });
}

function addFlags(cmd: Command): Command {
  for (const f of LAUNCHER_FLAGS) {
    if (f.repeatable) cmd.option(f.flag, f.description, (v: string, prev: string[] = []) => [...prev, v]);
    else cmd.option(f.flag, f.description + (f.default ? ` (default ${f.default})` : ''));
  }
  return cmd;
}

function parseOrExit(opts: RawLauncherFlags): LauncherConfig {
  const r = validateLauncherFlags(opts);
  if (!r.ok) {
    process.stderr.write(`virtops: invalid flags:\n${r.errors.map((e) => `  ${e}`).join('\n')}\n`);
    process.exit(2);
  }
  return r.config;
}
