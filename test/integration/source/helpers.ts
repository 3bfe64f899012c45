import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { GitSource, SourceEvent } from '../../../reconciler/source/index.js';

export function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  }).trim();
}

/** A bare "origin" and a working clone of it in a fresh temp directory. */
export class TestRepo {
  readonly root = mkdtempSync(join(tmpdir(), 'virtops-srctest-'));
  readonly bare = join(this.root, 'origin.git');
  readonly work = join(this.root, 'work');

  constructor() {
    sh(this.root, 'init', '--quiet', '--bare', '--initial-branch=main', this.bare);
    sh(this.root, 'clone', '--quiet', this.bare, this.work);
    sh(this.work, 'checkout', '--quiet', '-B', 'main');
  }

  /** Replace the given files, commit and push; returns the new commit. */
  commit(files: Record<string, string | null>, message: string, push = true): string {
    for (const [path, text] of Object.entries(files)) {
      const full = join(this.work, path);
      if (text === null) rmSync(full, { force: true });
      else {
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, text);
      }
    }
    sh(this.work, 'add', '-A');
    sh(this.work, 'commit', '--quiet', '-m', message);
    if (push) this.push();
    return sh(this.work, 'rev-parse', 'HEAD');
  }

  /** Force: tests also move the branch behind the clone's back (update-ref, force-push). */
  push(): void {
    sh(this.work, 'push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main');
  }

  forcePush(sha: string): void {
    sh(this.work, 'push', '--quiet', '--force', 'origin', `${sha}:refs/heads/main`);
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function vmYaml(name: string, memory = '128Mi'): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: ${name}
  namespace: default
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        memory:
          guest: ${memory}
        devices:
          disks:
            - name: root
              disk:
                bus: virtio
      volumes:
        - name: root
          containerDisk:
            image: registry.local/tiny:1
`;
}

/** Resolves with the next revision/refusal the source publishes. */
export function nextEvent(source: GitSource, timeoutMs = 15_000): Promise<SourceEvent> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      source.off('revision', onRevision);
      source.off('refused', onRefused);
    };
    const onRevision = (revision: Extract<SourceEvent, { type: 'revision' }>['revision']) => {
      done();
      resolve({ type: 'revision', revision });
    };
    const onRefused = (refused: Extract<SourceEvent, { type: 'refused' }>['refused']) => {
      done();
      resolve({ type: 'refused', refused });
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no source event within ${timeoutMs} ms`));
    }, timeoutMs);
    source.on('revision', onRevision);
    source.on('refused', onRefused);
  });
}

export function tempEntries(prefix: string): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(prefix)).sort();
}
