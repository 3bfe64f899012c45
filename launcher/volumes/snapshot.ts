/**
 * The copies behind VM snapshots and restores (api/snapshot.ts decides what to copy):
 *
 * - offline (no running domain): each disk file is copied (`cp --reflink=auto --sparse=always`:
 *   a reflink where the filesystem has them, a sparse copy elsewhere);
 * - online (a running domain): one libvirt push-mode backup job (`virsh backup-begin`) copies
 *   the chosen disks as they were when the job began, while the guest keeps running; when a
 *   guest agent answers, the guest's filesystems are frozen for the moment the job begins
 *   (`virsh domfsfreeze`/`domfsthaw`), else the copy is crash-consistent (NoGuestAgent).
 *
 * Every copy is written as `<dest>.partial` and renamed into place: a failed or aborted copy
 * never replaces anything, and the source disks are only read.
 */
import { spawn } from 'node:child_process';
import { chown, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** Copies `src` to `dest` (raw, sparse, reflinked where possible), atomically. */
export async function copyDiskFile(src: string, dest: string, signal?: AbortSignal): Promise<void> {
  const tmp = `${dest}.partial`;
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('cp', ['--reflink=auto', '--sparse=always', '--', src, tmp], { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      child.once('error', (e) => reject(new SnapshotError(`copying ${src}: ${e.message}`)));
      child.once('close', (code) => (code === 0 ? resolve() : reject(new SnapshotError(`copying ${src} to ${tmp} failed: ${err.trim() || `exit ${code}`}`))));
    });
    await fsyncFile(tmp);
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { force: true });
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fd = await open(path, 'r+');
  await fd.sync().finally(() => fd.close());
}

/** The domain's disks: target dev (vda) → source file. */
export async function domainDisks(uri: string, domain: string): Promise<{ target: string; source: string }[]> {
  const out = await run('virsh', ['-c', uri, 'domblklist', domain, '--details']);
  const disks: { target: string; source: string }[] = [];
  for (const line of out.split('\n').slice(2)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 4 && f[1] === 'disk') disks.push({ target: f[2]!, source: f.slice(3).join(' ') });
  }
  return disks;
}

/** The push-mode backup XML: `copies` (target dev → destination file, in the source's format: raw unless said) backed up, every other disk not. */
export function backupXml(allTargets: readonly string[], copies: ReadonlyMap<string, string | { file: string; format: 'raw' | 'qcow2' }>): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');
  const disks = allTargets.map((t) => {
    const c = copies.get(t);
    const dest = typeof c === 'string' ? { file: c, format: 'raw' } : c;
    return dest
      ? `    <disk name='${esc(t)}' backup='yes' type='file'>\n      <driver type='${dest.format}'/>\n      <target file='${esc(dest.file)}'/>\n    </disk>`
      : `    <disk name='${esc(t)}' backup='no'/>`;
  });
  return `<domainbackup mode='push'>\n  <disks>\n${disks.join('\n')}\n  </disks>\n</domainbackup>\n`;
}

/** `Job type:` from `virsh domjobinfo` output. */
export function jobType(out: string): string | undefined {
  return /^Job type:\s*(\S+)/m.exec(out)?.[1];
}

export interface OnlineCopy {
  /** The disk's file as the domain has it (matched against `domblklist`). */
  source: string;
  dest: string;
  /** The source's format, kept by the copy (a `<claim>.qcow2` stays qcow2). @default raw */
  format?: 'raw' | 'qcow2';
  /**
   * Where QEMU writes the copy when `dest` is not in its reach (a launcher Pod's daemon: another
   * mount namespace, another user): one file as the daemon names it and as this process does
   * (e.g. in the claim's dir, which both see). It is moved to `dest` once the job completed.
   */
  staging?: { daemon: string; local: string };
}

/**
 * A point-in-time copy of `copies` from the running `domain`: freeze (if a guest agent
 * answers), begin the backup job, thaw, wait for the job. Resolves with whether the guest
 * agent froze the filesystems.
 */
export async function onlineCopy(uri: string, domain: string, copies: readonly OnlineCopy[], workDir: string, opts: { signal?: AbortSignal; pollMs?: number } = {}): Promise<{ guestAgent: boolean }> {
  const disks = await domainDisks(uri, domain);
  // Per target dev: the file as the daemon writes it, and as this process finds it.
  const byTarget = new Map<string, { daemon: string; local: string }>();
  const formats = new Map<string, 'raw' | 'qcow2'>();
  for (const c of copies) {
    const d = disks.find((x) => x.source === c.source);
    if (!d) throw new SnapshotError(`the running domain ${domain} has no disk ${c.source} (its disks: ${disks.map((x) => `${x.target}=${x.source}`).join(', ')}); restart the VM so it runs the volumes in git`);
    byTarget.set(d.target, c.staging ?? { daemon: `${c.dest}.partial`, local: `${c.dest}.partial` });
    formats.set(d.target, c.format ?? 'raw');
  }
  const partials = [...byTarget.values()].map((f) => f.local);
  // A staging file left by an earlier crash would make the job fail (libvirt creates it).
  for (const p of partials) await rm(p, { force: true });
  const xmlFile = join(workDir, 'backup.xml');
  await writeFile(xmlFile, backupXml(disks.map((d) => d.target), new Map([...byTarget].map(([t, file]) => [t, { file: file.daemon, format: formats.get(t) ?? 'raw' }]))));
  const virsh = (...args: string[]) => run('virsh', ['-c', uri, ...args]);
  // A job left by a crash would refuse ours: only ours is ever started on these domains.
  const current = jobType(await virsh('domjobinfo', domain).catch(() => ''));
  if (current && current !== 'None') throw new SnapshotError(`domain ${domain} already runs a job (${current}); try again when it ends`);
  let guestAgent = false;
  try {
    await virsh('domfsfreeze', domain);
    guestAgent = true;
  } catch {
    // No guest agent (or it does not answer): a crash-consistent copy, as KubeVirt's NoGuestAgent.
  }
  try {
    await virsh('backup-begin', domain, xmlFile);
  } finally {
    if (guestAgent) await virsh('domfsthaw', domain).catch(() => undefined);
  }
  try {
    for (;;) {
      if (opts.signal?.aborted) {
        await virsh('domjobabort', domain).catch(() => undefined);
        throw new SnapshotError('the snapshot was aborted (its deadline passed, or virtops up is stopping)');
      }
      const t = jobType(await virsh('domjobinfo', domain));
      if (!t || t === 'None') break;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 300));
    }
    const done = await virsh('domjobinfo', domain, '--completed').catch(() => '');
    if (jobType(done) !== 'Completed') throw new SnapshotError(`the backup job of ${domain} did not complete: ${done.replace(/\s+/g, ' ').trim() || 'no job information'}`);
    for (const c of copies) {
      const tmp = c.staging?.local ?? `${c.dest}.partial`;
      await fsyncFile(tmp);
      if (!c.staging) await rename(tmp, c.dest);
      // Staged elsewhere: renamed where one filesystem holds both, else copied.
      else {
        await rename(tmp, c.dest).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EXDEV') throw err;
          await copyDiskFile(tmp, c.dest, opts.signal);
        });
        // QEMU made it as the daemon's user: the copy is this process's, as every other one.
        if (process.getuid && process.getgid) await chown(c.dest, process.getuid(), process.getgid());
      }
    }
    return { guestAgent };
  } finally {
    for (const p of partials) await rm(p, { force: true });
  }
}

/** Copies a snapshot's file over a claim's or hostDisk's file, atomically (a rename in the target's directory). */
export async function restoreDiskFile(snapshotFile: string, target: string, signal?: AbortSignal): Promise<void> {
  await copyDiskFile(snapshotFile, target, signal);
}
