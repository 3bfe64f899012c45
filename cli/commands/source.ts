import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { untilStopped } from '../stop-signal.js';
import type { SourceEvent, WebhookProvider } from '../../reconciler/source/index.js';

interface SourceWatchFlags {
  branch: string;
  dist: string;
  pollInterval: string;
  resyncInterval: string;
  cacheDir?: string;
  freshnessCheck: boolean;
  verifySynth?: boolean;
  freshnessCommand?: string;
  webhookListen?: string;
  webhookSecretFile?: string;
  webhookProvider?: WebhookProvider;
  once?: boolean;
}

/**
 * `virtops source watch <repo>`: run the git source on its own and print each revision or
 * refusal as a JSON line (logs go to stderr). `--once` checks the branch tip and exits 1 if
 * it is refused, which makes it usable as a CI gate.
 */
export function registerSource(program: Command): void {
  const source = program.command('source').description('the git source: watch a branch and yield validated revisions');
  source
    .command('watch')
    .argument('<repo>', 'local repository path (watched) or git URL (polled), file:// included')
    .option('--branch <name>', 'branch to follow', 'main')
    .option('--dist <path>', 'manifest directory inside the repository', 'dist')
    .option('--poll-interval <seconds>', 'poll interval for git URLs', '30')
    .option('--resync-interval <seconds>', 'periodic re-read of the branch in both modes', '300')
    .option('--cache-dir <dir>', 'keep the private cache repository here (default: a temp dir removed on exit)')
    .option('--verify-synth', "opt-in: prove each commit's dist/ matches its vms/ by running 'synth --check' in a sandbox (unprivileged uid, no network, read-only, limited; needs root, bwrap, prlimit, setpriv). Default: dist/ is data and no repository code runs")
    .option('--no-freshness-check', 'accepted for compatibility and ignored: the synth check is off unless --verify-synth')
    .option('--freshness-command <cmd>', "with --verify-synth: the command run in the sandbox (cwd /src = the commit, /virtops = this checkout), split on spaces")
    .option('--webhook-listen <host:port>', 'serve push webhooks on POST /hooks/git')
    .option('--webhook-secret-file <file>', 'file holding the webhook secret (required with --webhook-listen)')
    .option('--webhook-provider <name>', 'github | gitlab | generic (default: detected from headers)')
    .option('--once', 'check the branch tip once, print the verdict and exit (1 if refused)')
    .action(async (repo: string, flags: SourceWatchFlags) => {
      const seconds = (flag: string, value: string): number => {
        const n = Number(value);
        if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag} must be a positive number of seconds, got "${value}"`);
        return n * 1000;
      };
      if (flags.webhookProvider && !['github', 'gitlab', 'generic'].includes(flags.webhookProvider)) {
        throw new Error(`--webhook-provider must be github, gitlab or generic, got "${flags.webhookProvider}"`);
      }
      const [{ createWebhookRoute, GitSource }, { daemonLogger }] = await Promise.all([import('../../reconciler/source/index.js'), import('../daemon-log.js')]);
      const logger = daemonLogger('virtops', 2);
      if (flags.verifySynth && !flags.freshnessCheck) throw new Error('--verify-synth and --no-freshness-check contradict each other: pass one of them');
      if (flags.freshnessCommand && !flags.verifySynth) throw new Error('--freshness-command needs --verify-synth (without it no command from the repository runs)');
      const command = flags.freshnessCommand?.split(/\s+/).filter(Boolean);
      const src = new GitSource({
        repo,
        branch: flags.branch,
        distPath: flags.dist,
        pollIntervalMs: seconds('poll-interval', flags.pollInterval),
        resyncIntervalMs: seconds('resync-interval', flags.resyncInterval),
        ...(flags.cacheDir ? { cacheDir: flags.cacheDir } : {}),
        freshness: flags.verifySynth ? (command ? { command } : true) : false,
        logger,
      });
      const print = (e: SourceEvent) =>
        process.stdout.write(
          `${JSON.stringify(e.type === 'revision' ? { type: e.type, sha: e.revision.sha, manifests: e.revision.origins } : { type: e.type, sha: e.refused.sha, errors: e.refused.errors })}\n`,
        );
      src.on('revision', (revision) => print({ type: 'revision', revision }));
      src.on('refused', (refused) => print({ type: 'refused', refused }));

      if (flags.once) {
        await src.start();
        const refused = src.counters.refused > 0 || src.counters.errors > 0 || !src.current;
        await src.stop();
        if (refused) process.exitCode = 1;
        return;
      }

      let server: { address: string; close(): Promise<void> } | undefined;
      if (flags.webhookListen) {
        if (!flags.webhookSecretFile) throw new Error('--webhook-listen needs --webhook-secret-file <file> (the shared secret)');
        const secret = readFileSync(flags.webhookSecretFile, 'utf8').trim();
        if (!secret) throw new Error(`--webhook-secret-file ${flags.webhookSecretFile} is empty: put the shared secret in it`);
        // The listener `virtops up --webhook-listen` runs: /hooks/* only (404 for anything else,
        // /api/* included), HMAC-verified, size- and per-client rate-limited, bounded timeouts.
        const [{ startWebhookServer }, { validateHostPort }] = await Promise.all([import('../../reconciler/standalone/api.js'), import('../../reconciler/standalone/up.js')]);
        const errors: string[] = [];
        const at = validateHostPort(flags.webhookListen, '--webhook-listen', '0.0.0.0:9000', errors);
        if (!at) throw new Error(errors.join('\n'));
        const route = createWebhookRoute({
          secret,
          branch: flags.branch,
          ...(flags.webhookProvider ? { provider: flags.webhookProvider } : {}),
          onPush: () => void src.checkNow('webhook'),
          logger,
        });
        server = await startWebhookServer({ kind: 'tcp', ...at }, { route, log: logger.child({ component: 'webhook' }) });
        logger.info({ address: server.address }, 'serving push webhooks on /hooks/git');
      }
      await src.start();
      await untilStopped(async () => {
        await server?.close();
        await src.stop();
      }, logger);
    });
}
