import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { addConnectionOptions, parseVmName, type ConnectionOptions } from '../../reconciler/standalone/client.js';
import { resolveForwardTarget } from './port-forward.js';

/**
 * `virtops ssh [USER@]VM [-- COMMAND]`: the system `ssh`, connected to the VM through
 * `virtops port-forward --stdio VM PORT` as its ProxyCommand (as virtctl ssh does with
 * --local-ssh). The host key is recorded under `vmi/NAME.NAMESPACE` (HostKeyAlias), so the
 * VM's key is remembered across restarts and host ports, and not mixed with 127.0.0.1's.
 */

export interface SshOptions extends ConnectionOptions {
  namespace?: string;
  username?: string;
  identityFile?: string;
  port: string;
  sshOpt?: string[];
  launcherSocket?: string;
}

/** POSIX shell single-quoting (ssh runs ProxyCommand through the user's shell). */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `ssh` argument list (pure). `self` is how to run this CLI again (node, its flags, the
 * script) for the ProxyCommand.
 */
export function sshArgs(target: string, command: string[], opts: SshOptions, self: string[]): string[] {
  const at = target.lastIndexOf('@');
  const user = at >= 0 ? target.slice(0, at) : opts.username;
  const vm = at >= 0 ? target.slice(at + 1) : target;
  const [ns, name] = parseVmName(vm, opts.namespace);
  const proxy = [...self, 'port-forward', '--stdio', '-n', ns, `${ns}/${name}`, opts.port];
  if (opts.launcherSocket) proxy.push('--launcher-socket', opts.launcherSocket);
  if (opts.stateDir) proxy.push('--state-dir', opts.stateDir);
  if (opts.server) proxy.push('--server', opts.server);
  if (opts.tokenFile) proxy.push('--token-file', opts.tokenFile);
  const args = ['-o', `ProxyCommand=${proxy.map(shellQuote).join(' ')}`, '-o', `HostKeyAlias=vmi/${name}.${ns}`];
  if (opts.identityFile) args.push('-i', opts.identityFile);
  if (user) args.push('-l', user);
  for (const o of opts.sshOpt ?? []) args.push('-o', o);
  args.push(name);
  if (command.length) args.push('--', ...command);
  return args;
}

export function registerSsh(program: Command): void {
  addConnectionOptions(
    program
      .command('ssh')
      .description('ssh into a VM through its forwarded port (system ssh; ProxyCommand: virtops port-forward --stdio); single host')
      .argument('<target>', '[USER@]VM, VM as NAME or NAMESPACE/NAME')
      .argument('[command...]', 'command to run instead of a login shell (after --)')
      .option('-n, --namespace <ns>', 'namespace', 'default')
      .option('-l, --username <user>', 'user to log in as (or USER@VM)')
      .option('-i, --identity-file <file>', 'private key for ssh')
      .option('-p, --port <port>', 'guest port of sshd (declared in the pod interface\'s ports)', '22')
      .option('-o, --ssh-opt <option>', 'an ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--launcher-socket <path>', 'ask this launcher socket directly instead of virtops up (root or the launcher\'s user)'),
  ).action(async (target: string, command: string[], opts: SshOptions) => {
    const vm = target.slice(target.lastIndexOf('@') + 1);
    // Fail here with a clear message rather than as ssh's "Connection closed by UNKNOWN".
    await resolveForwardTarget(vm, opts);
    const self = [process.execPath, ...process.execArgv, process.argv[1]!];
    const child = spawn('ssh', sshArgs(target, command, opts, self), { stdio: 'inherit' });
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'ENOENT' ? 'ssh is not installed: install openssh-client' : `ssh: ${err.message}`)));
      child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    process.exitCode = code;
  });
}
