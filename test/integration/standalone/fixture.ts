/**
 * A real git setup for the single-host tests: a bare repository (what `virtops up` watches)
 * and a work clone that commits dist/ (a VirtualMachine and the launcher Pod synth renders
 * for it) and pushes. Real `git`, real commits, real force-pushes.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'cdk8s';
import { execa } from 'execa';
import YAML from 'yaml';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { TestGuest } from '../../../vms/test-guest.js';

export interface GitFixture {
  dir: string;
  bare: string;
  work: string;
  /**
   * Writes dist/ with exactly these VMs (and their launcher Pods), commits, pushes; returns the
   * SHA. `onPush` is called right before `git push` (the benchmarks time from the push).
   */
  commitVms(vms: VirtualMachine[], message: string, onPush?: () => void): Promise<string>;
  /** Writes arbitrary files into dist/ (replacing it), commits, pushes. */
  commitDist(files: Record<string, string>, message: string, onPush?: () => void): Promise<string>;
  /** `git push --force` of an older commit to the branch. */
  forcePush(sha: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function gitFixture(): Promise<GitFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-git-'));
  const bare = join(dir, 'vms.git');
  const work = join(dir, 'work');
  const git = (args: string[], cwd = work) => execa('git', args, { cwd, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } });
  await execa('git', ['init', '--bare', '-q', '-b', 'main', bare]);
  await execa('git', ['init', '-q', '-b', 'main', work]);
  await git(['remote', 'add', 'origin', bare]);

  const commitDist = async (files: Record<string, string>, message: string, onPush?: () => void): Promise<string> => {
    await rm(join(work, 'dist'), { recursive: true, force: true });
    await mkdir(join(work, 'dist'), { recursive: true });
    for (const [name, text] of Object.entries(files)) await writeFile(join(work, 'dist', name), text);
    await git(['add', '-A', 'dist']);
    await git(['commit', '-q', '--allow-empty', '-m', message]);
    onPush?.();
    await git(['push', '-q', '--force', 'origin', 'main']);
    return (await git(['rev-parse', 'HEAD'])).stdout.trim();
  };

  return {
    dir,
    bare,
    work,
    commitDist,
    commitVms: (vms, message, onPush) => commitDist(Object.fromEntries(vms.map((vm) => [`${vm.metadata.name}.k8s.yaml`, vmDocuments(vm)])), message, onPush),
    forcePush: async (sha) => {
      await git(['push', '-q', '--force', 'origin', `${sha}:refs/heads/main`]);
      await git(['reset', '-q', '--hard', sha]);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The VM and its launcher Pod as one multi-document YAML file, as synth writes them. */
export function vmDocuments(vm: VirtualMachine): string {
  return [vm, renderLauncherPod(vm)].map((d) => YAML.stringify(d)).join('---\n');
}

/** The test guest (kernel boot from an OCI image, cloud-init marker, emptyDisk) with its image at `image`. */
export function testGuestVm(opts: { image: string; name?: string; memory?: string }): VirtualMachine {
  const vm = new TestGuest(new App(), 'test-guest').vm.toManifest();
  vm.metadata.name = opts.name ?? 'test-guest';
  const spec = vm.spec.template.spec;
  const kb = spec.domain.firmware?.kernelBoot?.container;
  if (!kb) throw new Error('vms/test-guest.ts no longer boots a kernel from a container image; update this fixture');
  kb.image = opts.image;
  kb.imagePullPolicy = 'IfNotPresent';
  if (opts.memory) spec.domain.memory = { guest: opts.memory };
  return vm;
}

/** A VM with no disks: enough for libvirt's test:///default driver, which boots nothing. */
export function bareVm(name: string, opts: { memory?: string; runStrategy?: VirtualMachine['spec']['runStrategy'] } = {}): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: opts.runStrategy ?? 'Always',
      template: {
        metadata: { labels: { 'kubevirt.io/vm': name } },
        spec: {
          domain: { devices: {}, memory: { guest: opts.memory ?? '64Mi' } },
          terminationGracePeriodSeconds: 0,
        },
      },
    },
  } as VirtualMachine;
}
