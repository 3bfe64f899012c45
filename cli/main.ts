/**
 * The `virtops` command. Thin by design: each subcommand lives in cli/commands/<name>.ts,
 * parses its flags with commander and calls into dsl/, synth/, launcher/ or reconciler/.
 */
import { realpathSync } from 'node:fs';
import { Command } from 'commander';
import { registerSynth } from './commands/synth.js';
import { registerDomainXml } from './commands/domain-xml.js';
import { registerImport } from './commands/import.js';
import { registerInit } from './commands/init.js';
import { registerLauncher } from './commands/launcher.js';
import { registerSource } from './commands/source.js';
import { registerUp } from './commands/up.js';
import { registerGet } from './commands/get.js';
import { registerDescribe } from './commands/describe.js';
import { registerConsole } from './commands/console.js';
import { registerVmActions } from './commands/vm-actions.js';
import { registerDiff } from './commands/diff.js';
import { registerController } from './commands/controller.js';
import { registerAgent } from './commands/agent.js';
import { registerTestenv } from './commands/testenv.js';

export function buildProgram(): Command {
  const program = new Command('virtops')
    .description('Virtual machines as code: typed DSL → KubeVirt manifests in git → libvirt domains')
    .version('0.1.0')
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });
  registerSynth(program);
  registerDomainXml(program);
  registerImport(program);
  registerInit(program);
  registerLauncher(program);
  registerSource(program);
  registerUp(program);
  registerGet(program);
  registerDescribe(program);
  registerConsole(program);
  registerVmActions(program);
  registerDiff(program);
  registerController(program);
  registerAgent(program);
  registerTestenv(program);
  return program;
}

// Through node_modules/.bin the path is a symlink; resolve it before matching.
const isEntry = process.argv[1] && /cli[\\/](main\.ts|bin\.js)$/.test(realpathSync(process.argv[1]));
if (isEntry) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`virtops: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
