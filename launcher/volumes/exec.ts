import { spawn } from 'node:child_process';
import { CommandError } from './errors.js';

/**
 * Runs a helper program (qemu-img, genisoimage, skopeo, tar) and returns its stdout. Failures
 * become a CommandError carrying the program's stderr, so an ENOSPC from qemu-img or
 * xorriso or a registry message from skopeo reaches the user instead of a bare exit code.
 *
 * node:child_process rather than execa: this runs in every launcher, and execa's module
 * graph alone costs ~4 MiB of private memory per VM for features these calls do not use.
 */
export async function run(command: string, args: readonly string[]): Promise<string> {
  // Like a shell's $(...): one trailing newline is not part of the value.
  return (await runBytes(command, args)).toString('utf8').replace(/\r?\n$/, '');
}

/** Like run() but returns stdout as raw bytes (manifests are hashed byte for byte). */
export async function runBytes(command: string, args: readonly string[]): Promise<Buffer> {
  const res = await exec(command, args);
  if (res.failure !== undefined) throw commandError(command, args, res.exitCode, res.stderr || res.failure);
  return res.stdout;
}

interface ExecResult {
  stdout: Buffer;
  stderr: string;
  exitCode: number | undefined;
  /** Why it failed (undefined: exit code 0). */
  failure?: string;
}

function exec(command: string, args: readonly string[]): Promise<ExecResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const finish = (exitCode: number | undefined, failure: string | undefined): void =>
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), exitCode, ...(failure !== undefined ? { failure } : {}) });
    // 'error': the program could not be started (e.g. ENOENT: not installed).
    child.once('error', (e) => finish(undefined, e.message));
    child.once('close', (code, signal) => {
      if (code === 0) finish(0, undefined);
      else finish(code ?? undefined, signal ? `killed by ${signal}` : `exit code ${code}`);
    });
  });
}

function commandError(command: string, args: readonly string[], exitCode: number | undefined, stderr: string): CommandError {
  return new CommandError(command, args, exitCode, stderr, /no space left on device|ENOSPC|exceeds free space/i.test(stderr));
}
