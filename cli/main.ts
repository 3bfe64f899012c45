/**
 * The `virtops` command. Thin by design: each subcommand lives in cli/commands/<name>.ts,
 * parses its flags with commander and calls into dsl/, synth/, launcher/ or reconciler/.
 */
import { realpathSync } from 'node:fs';
import { Command } from 'commander';
import { registerSynth } from './commands/synth.js';
import { registerDomainXml } from './commands/domain-xml.js';
import { registerExpand } from './commands/expand.js';
import { registerImport } from './commands/import.js';
import { registerInit } from './commands/init.js';
import { registerLauncher } from './commands/launcher.js';
import { registerSource } from './commands/source.js';
import { registerUp } from './commands/up.js';
import { registerGet } from './commands/get.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerDescribe } from './commands/describe.js';
import { registerConsole } from './commands/console.js';
import { registerPortForward } from './commands/port-forward.js';
import { registerSsh } from './commands/ssh.js';
import { registerVmActions } from './commands/vm-actions.js';
import { registerDiff } from './commands/diff.js';
import { registerController } from './commands/controller.js';
import { registerDashboard } from './commands/dashboard.js';
import { registerAgent } from './commands/agent.js';
import { registerTestenv } from './commands/testenv.js';
import { registerReconcile } from './commands/reconcile.js';
import { registerCompletion } from './commands/completion.js';
import { registerVersion, versionFastPath } from './commands/version.js';

/**
 * One example per command, shown at the end of its --help (a unit test checks that every
 * command has one). Cluster-mode variants name --kubeconfig; KUBECONFIG works the same.
 */
export const EXAMPLES: Record<string, string[]> = {
  synth: ['npx virtops synth                  # vms/ → dist/', 'npx virtops synth --check          # fail when dist/ is stale (CI)'],
  'domain-xml': ['npx virtops domain-xml dist/web.k8s.yaml'],
  expand: ['npx virtops expand dist/web.k8s.yaml -f dist/common-instancetypes.k8s.yaml', 'npx virtops expand vm.yaml my-vm -o json'],
  import: ['npx virtops import vm.yaml > vms/web.ts'],
  init: ['npx virtops init my-vms && cd my-vms && npm install'],
  launcher: ['virtops launcher --uid $(VMI_UID) ...   # the launcher alone, unsupervised (launcher-monitor runs it in-process)'],
  'launcher-monitor': ['virtops launcher-monitor --uid $(VMI_UID) ...   # the launcher Pod\'s compute container: the one process per VM', 'virtops launcher-monitor --cleanup-only --uid $(VMI_UID) ...   # the node agent, after that process was killed'],
  source: ['virtops source watch --repo ./my-vms'],
  'source watch': ['virtops source watch --repo ./my-vms --branch main'],
  up: ['sudo virtops up --repo ./my-vms', 'sudo virtops up --repo https://git.example/vms.git --interval 1m'],
  get: ['virtops get vms', 'virtops get vms -o wide', 'virtops get vmis -A --kubeconfig ~/.kube/config'],
  describe: ['virtops describe vm web', 'virtops describe vm prod/web --kubeconfig ~/.kube/config'],
  console: ['virtops console web             # detach with Ctrl-]', 'virtops console web -n prod --kubeconfig ~/.kube/config'],
  'port-forward': ['virtops port-forward web 8080              # 127.0.0.1:8080 → port 8080 of web', 'virtops port-forward web :22 -n prod      # any free local port'],
  ssh: ['virtops ssh debian@web -i ~/.ssh/id_ed25519', 'virtops ssh web -l debian -- cloud-init status'],
  start: ['virtops start web'],
  stop: ['virtops stop web -n prod --kubeconfig ~/.kube/config   # until the next commit changing web'],
  restart: ['virtops restart web'],
  pause: ['virtops pause web'],
  unpause: ['virtops unpause web'],
  diff: ['virtops diff                                 # what up would do next', 'virtops diff --kubeconfig ~/.kube/config        # ./dist against the cluster'],
  reconcile: ['virtops reconcile --kubeconfig ~/.kube/config'],
  controller: ['virtops controller --kubeconfig admin.kubeconfig --repo https://git.example/vms.git --leader-elect'],
  dashboard: ['virtops dashboard --kubeconfig admin.kubeconfig', 'virtops dashboard --kubeconfig admin.kubeconfig --url http://localhost:8687   # through kubectl port-forward'],
  agent: ['virtops agent --node $(hostname) --process-runtime --tls-cert-file node.crt --tls-private-key-file node.key --client-ca-file kubelet-client-ca.crt'],
  testenv: ['npx virtops testenv up --dir /tmp/kube && export KUBECONFIG=/tmp/kube/kubeconfig'],
  'testenv build': ['npx virtops testenv build'],
  'testenv up': ['npx virtops testenv up --dir /tmp/kube'],
  'testenv down': ['npx virtops testenv down --dir /tmp/kube'],
  'testenv status': ['npx virtops testenv status --dir /tmp/kube'],
  completion: ['source <(virtops completion bash)', 'virtops completion zsh > "${fpath[1]}/_virtops"'],
  version: ['virtops version -o json'],
  snapshot: ['virtops snapshot create web --wait', 'virtops snapshot restore web-20260101-000000 --stop --wait'],
  'snapshot create': ['virtops snapshot create web --name before-upgrade --wait   # online if web runs'],
  'snapshot list': ['virtops snapshot list', 'virtops snapshot list --restores -o yaml'],
  'snapshot restore': ['virtops snapshot restore before-upgrade --stop --wait   # web stays stopped: virtops start web', 'virtops snapshot restore before-upgrade --target web-copy'],
  'snapshot delete': ['virtops snapshot delete before-upgrade'],
};

function addExamples(cmd: Command, path: string[] = []): void {
  for (const c of cmd.commands) {
    const key = [...path, c.name()].join(' ');
    const ex = EXAMPLES[key];
    if (ex) c.addHelpText('after', `\nExamples:\n${ex.map((e) => `  ${e}`).join('\n')}\n`);
    addExamples(c, [...path, c.name()]);
  }
}

export function buildProgram(): Command {
  const program = new Command('virtops')
    .description('Virtual machines as code: typed DSL → KubeVirt manifests in git → libvirt domains')
    // --version is answered before the program is built (see below); this is its help line.
    .option('-V, --version', 'print the version, the git commit and the KubeVirt API version')
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });
  registerSynth(program);
  registerDomainXml(program);
  registerExpand(program);
  registerImport(program);
  registerInit(program);
  registerLauncher(program);
  registerSource(program);
  registerUp(program);
  registerGet(program);
  registerSnapshot(program);
  registerDescribe(program);
  registerConsole(program);
  registerPortForward(program);
  registerSsh(program);
  registerVmActions(program);
  registerDiff(program);
  registerController(program);
  registerDashboard(program);
  registerAgent(program);
  registerTestenv(program);
  registerReconcile(program);
  registerCompletion(program);
  registerVersion(program);
  addExamples(program);
  program.addHelpText('after', `\nExamples:\n  virtops get vms\n  virtops get vms --kubeconfig ~/.kube/config   # the same commands act on a cluster\n  virtops <command> --help\n`);
  return program;
}

// Through node_modules/.bin the path is a symlink; resolve it before matching.
const isEntry = process.argv[1] && /cli[\\/](main\.ts|bin\.js)$/.test(realpathSync(process.argv[1]));
// `--version` is not a commander option here (see buildProgram); the installed package's
// cli/bin.js answers it (and `version`) sooner, from the same function.
const versionText = isEntry && (process.argv[2] === '--version' || process.argv[2] === '-V') ? versionFastPath(process.argv.slice(2)) : undefined;
if (versionText !== undefined) {
  process.stdout.write(versionText);
} else if (isEntry) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`virtops: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
