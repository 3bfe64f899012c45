/**
 * /proc readers shared by the benchmarks: a process's CPU time and memory, the pids whose
 * argv matches, and the whole machine's CPU time. Linux only, as the benchmarks are.
 */
import { readdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';

export const CLK_TCK = Number((await execa('getconf', ['CLK_TCK'])).stdout.trim()) || 100;

export interface ProcMem { rssKiB: number; pssKiB: number }

export async function smapsRollup(pid: number): Promise<ProcMem> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: kb('Rss'), pssKiB: kb('Pss') };
}

/**
 * CPU seconds from /proc/<pid>/stat: the process's own utime+stime, and cutime+cstime, its
 * waited-for children's (short-lived helpers such as virsh, genisoimage, qemu-img, git).
 * Zeros for a process that is gone.
 */
export async function cpuTimes(pid: number): Promise<{ own: number; children: number }> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // After the comm: state is field 3; utime 14, stime 15, cutime 16, cstime 17 (1-based) → index 11-14 here.
  const n = (i: number) => Number(f[i] ?? 0);
  return { own: (n(11) + n(12)) / CLK_TCK, children: (n(13) + n(14)) / CLK_TCK };
}

/** Every live process: pid → argv joined with spaces. */
export async function processes(): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => undefined);
    if (cmd !== undefined) out.set(Number(e), cmd.split('\0').join(' ').trim());
  }
  return out;
}

/** pids whose argv has every one of `needles`. */
export async function pidsWith(...needles: string[]): Promise<number[]> {
  return [...(await processes())].filter(([, cmd]) => needles.every((n) => cmd.includes(n))).map(([pid]) => pid);
}

/** CPU seconds the whole machine has spent busy since boot (/proc/stat: user, nice, system, irq, softirq). */
export async function machineCpuS(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq!) / CLK_TCK;
}
