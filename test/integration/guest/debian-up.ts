/**
 * What the Debian-guest tests that run a real `virtops up` share: the libvirt CLI, how `up`
 * is started for a Debian guest (TCG, the local registry over plain HTTP, no synth check),
 * and a teardown that leaves no `up`, state dir, domain, git fixture or registry behind.
 */
import { execa } from 'execa';
import type { LocalRegistry } from '../../helpers/registry.js';
import { cleanupStateDir, startUp, type UpProcess } from '../standalone/harness.js';

export const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

/** `virtops up` on `repo`, pulling the guest's containerDisk from `registry`. */
export function startDebianUp(repo: string, registry: LocalRegistry, stateDir: string): Promise<UpProcess> {
  return startUp(['--repo', repo, '--emulation', 'tcg', '--interval', '3s', '--insecure-registry', registry.host, '--no-freshness-check'], stateDir);
}

/** Stops `up`, removes its state dir, then any of `domains` it left, the git fixture and the registry. */
export async function tearDownDebianUp(o: { up?: UpProcess; stateDir?: string; domains: string[]; git?: { cleanup(): Promise<void> }; registry?: LocalRegistry }): Promise<void> {
  await o.up?.stop().catch(() => undefined);
  if (o.stateDir) await cleanupStateDir(o.stateDir);
  for (const domain of o.domains) {
    if ((await virsh('domstate', domain)).exitCode !== 0) continue;
    await virsh('destroy', domain);
    await virsh('undefine', domain);
  }
  await o.git?.cleanup();
  await o.registry?.stop();
}
