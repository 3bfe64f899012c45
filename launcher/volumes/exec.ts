import { execa } from 'execa';
import { CommandError } from './errors.js';

/**
 * Runs a helper program and returns its stdout. Failures become a CommandError carrying
 * the program's stderr, so an ENOSPC from qemu-img or xorriso or a registry message from skopeo
 * reaches the user instead of a bare exit code.
 */
export async function run(command: string, args: readonly string[]): Promise<string> {
  const res = await execa(command, args, { reject: false, stdin: 'ignore' });
  if (res.failed) throw commandError(command, args, res.exitCode, String(res.stderr || res.message));
  return String(res.stdout);
}

/** Like run() but returns stdout as raw bytes (manifests are hashed byte for byte). */
export async function runBytes(command: string, args: readonly string[]): Promise<Buffer> {
  const res = await execa(command, args, { reject: false, stdin: 'ignore', encoding: 'buffer', stripFinalNewline: false });
  if (res.failed) {
    const stderr = res.stderr ? Buffer.from(res.stderr).toString('utf8') : (res.message ?? '');
    throw commandError(command, args, res.exitCode, stderr);
  }
  return Buffer.from(res.stdout);
}

function commandError(command: string, args: readonly string[], exitCode: number | undefined, stderr: string): CommandError {
  return new CommandError(command, args, exitCode, stderr, /no space left on device|ENOSPC|exceeds free space/i.test(stderr));
}
