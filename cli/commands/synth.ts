import type { Command } from 'commander';
import { untilStopped } from '../stop-signal.js';

/**
 * `virtops synth [--app CMD] [--out DIR] [--check | --watch]`: synthesize vms/ into dist/
 * (validated, all or nothing), or with --check verify that dist/ matches a fresh synth (exit 1
 * if stale), or with --watch synthesize again on every change under vms/ or to cdk8s.yaml,
 * rewriting only the files that changed (synth/watch.ts).
 */
export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description('synthesize the VMs-as-code app into validated manifests in dist/ (all or nothing)')
    .option('--app <command>', "command that runs the cdk8s app (default: 'app' in cdk8s.yaml)")
    .option('--out <dir>', "output directory (default: 'output' in cdk8s.yaml, else dist)")
    .option('--check', 'compare a fresh synth with the output directory instead of writing; exit 1 if stale')
    .option('--watch', 'keep running: re-synthesize on every change under the app directory (vms/) or cdk8s.yaml and rewrite only the files that changed')
    .action(async (opts: { app?: string; out?: string; check?: boolean; watch?: boolean }) => {
      if (opts.check && opts.watch) throw new Error('--check and --watch: choose one (--check compares once, --watch writes on every change)');
      if (opts.watch) return watch(opts);
      // Loaded here, not at the top: cdk8s and the validator cost ~300 ms on every other command.
      const { checkSynth, formatCheck, runSynth } = await import('../../synth/run.js');
      if (opts.check) {
        const result = await checkSynth(opts);
        const out = opts.out ?? 'dist';
        if (!result.upToDate) throw new Error(formatCheck(result, out));
        process.stdout.write(`${formatCheck(result, out)}\n`);
        return;
      }
      const result = await runSynth(opts);
      process.stdout.write(`wrote ${result.files.length} files (${result.objects} objects) to ${result.out}\n`);
    });
}

async function watch(opts: { app?: string; out?: string }): Promise<void> {
  const { watchSynth, formatUpdate } = await import('../../synth/watch.js');
  const watcher = await watchSynth(opts, (u) => {
    (u.error ? process.stderr : process.stdout).write(`${formatUpdate(u)}\n`);
  });
  process.stdout.write(`watching for changes (${watcher.mode} mode); output: ${watcher.out}\n`);
  await untilStopped(() => watcher.close());
}
