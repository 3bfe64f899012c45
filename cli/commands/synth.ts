import type { Command } from 'commander';

/**
 * `virtops synth [--app CMD] [--out DIR] [--check]`: synthesize vms/ into dist/ (validated,
 * all or nothing), or with --check verify that dist/ matches a fresh synth (exit 1 if stale).
 */
export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description('synthesize the VMs-as-code app into validated manifests in dist/ (all or nothing)')
    .option('--app <command>', "command that runs the cdk8s app (default: 'app' in cdk8s.yaml)")
    .option('--out <dir>', "output directory (default: 'output' in cdk8s.yaml, else dist)")
    .option('--check', 'compare a fresh synth with the output directory instead of writing; exit 1 if stale')
    .action(async (opts: { app?: string; out?: string; check?: boolean }) => {
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
