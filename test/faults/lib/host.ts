/**
 * Host-level fault actions and observations for the fault-injection tests: a small
 * loop-mounted filesystem that can be filled, libvirtd/virtlogd restarts (with
 * scripts/setup-host.sh's own start commands), and process lookups by command line.
 * Everything here acts only on what the test created or on the two libvirt daemons, which
 * `ensureDaemons` restores.
 */
import { open, readdir, readFile, rm, stat, statfs, unlink } from 'node:fs/promises';
import { mkdtemp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { processAlive } from '../../../reconciler/agent/process-runtime.js';
import { waitFor } from '../../helpers/wait.js';

const SETUP_HOST = new URL('../../../scripts/setup-host.sh', import.meta.url).pathname;

/** A small ext4 filesystem in a file, loop-mounted at `mountPoint`. */
export interface LoopFs {
  dir: string;
  image: string;
  mountPoint: string;
  /** Fills every free block with one file; returns its size. */
  fill(): Promise<number>;
  /** Removes the fill file (no-op when absent). */
  free(): Promise<void>;
  /** Bytes available right now. */
  available(): Promise<number>;
  /** Frees, unmounts (lazily if busy) and removes the image and its directory. */
  destroy(): Promise<void>;
}

/** Creates and mounts a `sizeMiB` ext4 filesystem under a fresh dir `/tmp/<prefix>XXXXXX/` (mount point `<dir>/s`). */
export async function createLoopFs(prefix: string, sizeMiB: number): Promise<LoopFs> {
  const dir = await mkdtemp(join('/tmp', prefix));
  const image = join(dir, 'fs.img');
  const mountPoint = join(dir, 's');
  const fillFile = join(mountPoint, '.fault-fill');
  await execa('truncate', ['-s', `${sizeMiB}M`, image]);
  await execa('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  await mkdir(mountPoint);
  await execa('mount', ['-o', 'loop', image, mountPoint]);
  let mounted = true;
  const available = async () => {
    const s = await statfs(mountPoint);
    return Number(s.bavail) * Number(s.bsize);
  };
  const free = () => unlink(fillFile).catch(() => undefined);
  return {
    dir,
    image,
    mountPoint,
    available,
    free,
    fill: async () => {
      const avail = await available();
      // fallocate takes the blocks at once; then top up byte by byte-ish until ENOSPC.
      await execa('fallocate', ['-l', String(Math.max(4096, avail)), fillFile], { reject: false });
      const fh = await open(fillFile, 'a');
      const chunk = Buffer.alloc(64 * 1024);
      try {
        for (let i = 0; i < 4096; i++) await fh.write(chunk);
      } catch {
        // ENOSPC: full.
      } finally {
        await fh.close().catch(() => undefined);
      }
      return (await stat(fillFile)).size;
    },
    destroy: async () => {
      await free();
      if (mounted) {
        const r = await execa('umount', [mountPoint], { reject: false });
        if (r.exitCode !== 0) await execa('umount', ['-l', mountPoint], { reject: false });
        mounted = false;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function pidFromFile(file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/**
 * The pid of the host's daemon from its pid file (never by name: other tests may run a
 * libvirtd of their own in a sandbox, and that one is not ours to stop).
 */
async function daemonPid(name: 'libvirtd' | 'virtlogd'): Promise<number | undefined> {
  const pid = await pidFromFile(`/run/${name}.pid`);
  if (!pid) return undefined;
  const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0] ?? '';
  return argv0.endsWith(name) && (await processAlive(pid)) ? pid : undefined;
}

/** Starts whichever of virtlogd/libvirtd is not running, with setup-host.sh (the one start path), and waits until libvirtd answers. */
export async function ensureDaemons(): Promise<void> {
  await execa('bash', [SETUP_HOST], { reject: false, stdio: 'ignore' });
}

/**
 * Restarts a libvirt daemon: SIGTERM (libvirtd leaves QEMU running and reconnects to it on
 * start), wait for exit, start again at once through setup-host.sh. Returns how long it was down.
 */
export async function restartDaemon(name: 'libvirtd' | 'virtlogd'): Promise<number> {
  const t0 = Date.now();
  await stopDaemon(name);
  await startDaemon(name);
  return Date.now() - t0;
}

/** Stops this host's daemon (by its pid file): SIGTERM, SIGKILL if it has not exited in 30 s. */
export async function stopDaemon(name: 'libvirtd' | 'virtlogd'): Promise<void> {
  const pid = await daemonPid(name);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    await waitFor(`${name} (pid ${pid}) to exit`, async () => !(await processAlive(pid)), 30_000, 50).catch(() => process.kill(pid, 'SIGKILL'));
  }
}

/** Starts it again through setup-host.sh and waits until it answers. */
export async function startDaemon(name: 'libvirtd' | 'virtlogd'): Promise<void> {
  // setup-host.sh waits 10 s for libvirtd's socket; on a loaded host start-up can take longer.
  await waitFor(`${name} back after a restart through scripts/setup-host.sh`, async () => {
    await ensureDaemons();
    return (await daemonPid(name)) !== undefined && (await execa('virsh', ['-c', 'qemu:///system', 'version'], { reject: false })).exitCode === 0;
  }, 90_000, 500);
}

export interface ProcInfo {
  pid: number;
  argv: string[];
}

/** Live (not zombie) processes whose argv satisfies `match`. */
export async function findProcesses(match: (argv: string[]) => boolean): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0').filter((a) => a !== '');
    if (argv.length === 0 || !match(argv)) continue;
    const st = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    if (!st || /\) [ZX] /.test(st)) continue;
    out.push({ pid: Number(e), argv });
  }
  return out;
}

/** QEMU processes by libvirt domain name (`-name guest=<domain>,...`), for domains starting with `prefix`. */
export async function qemuProcesses(prefix: string): Promise<{ pid: number; domain: string }[]> {
  const procs = await findProcesses((argv) => /qemu-system/.test(argv[0] ?? '') && argv.some((a) => a.startsWith(`guest=${prefix}`)));
  return procs.map((p) => ({ pid: p.pid, domain: /guest=([^,]+)/.exec(p.argv.find((a) => a.startsWith('guest='))!)![1]! }));
}

/** Domains of a libvirt URI whose names start with `prefix`, with their state (`virsh list --all`). */
export async function libvirtDomains(uri: string, prefix: string): Promise<{ name: string; state: string }[]> {
  const r = await execa('virsh', ['-c', uri, 'list', '--all'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`virsh list failed: ${r.stderr.trim()}`);
  const out: { name: string; state: string }[] = [];
  for (const line of r.stdout.split('\n').slice(2)) {
    const m = /^\s*(\S+)\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (m && m[2]!.startsWith(prefix)) out.push({ name: m[2]!, state: m[3]! });
  }
  return out;
}

/** Destroys and undefines every domain of `uri` starting with `prefix` (test cleanup). */
export async function removeDomains(uri: string, prefix: string): Promise<string[]> {
  const names = (await libvirtDomains(uri, prefix).catch(() => [])).map((d) => d.name);
  for (const n of names) {
    await execa('virsh', ['-c', uri, 'destroy', n], { reject: false });
    await execa('virsh', ['-c', uri, 'undefine', n, '--nvram'], { reject: false });
    await execa('virsh', ['-c', uri, 'undefine', n], { reject: false });
  }
  return names;
}

/** Every file under `root` (no symlink following) with its type. */
export async function walk(root: string): Promise<{ path: string; type: 'file' | 'dir' | 'socket' | 'symlink' | 'other' }[]> {
  const out: { path: string; type: 'file' | 'dir' | 'socket' | 'symlink' | 'other' }[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(dir, e.name);
      const type = e.isDirectory() ? 'dir' : e.isFile() ? 'file' : e.isSocket() ? 'socket' : e.isSymbolicLink() ? 'symlink' : 'other';
      out.push({ path: p, type });
      if (type === 'dir') await visit(p);
    }
  };
  await visit(root);
  return out;
}
