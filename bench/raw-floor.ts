/**
 * The floors bench:floor and bench:scaling measure virtops against, in one place:
 *   - the raw floor: the very domains virtops defined (their inactive XML, every file they name
 *     copied out of the state dir, renamed `floor_<i>`), defined and started by parallel `virsh`;
 *   - the Node floor: the same XML defined and started by parallel minimal Node processes
 *     (bench/node-floor-launcher.mjs), what any design with one Node process per VM pays.
 */
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { waitFor } from '../test/integration/standalone/harness.js';
import { GUEST_MARKERS } from '../test/helpers/test-guest.js';

export const NODE_FLOOR_LAUNCHER = new URL('./node-floor-launcher.mjs', import.meta.url).pathname;

export const virsh = (...args: string[]) => execa('virsh', ['-q', '-c', 'qemu:///system', ...args], { reject: false });

/**
 * The floor's copy of each of virtops' domains (`domains[i]` → `floor_<i>`): its inactive XML
 * with the state dir's files copied under `dir` (paths rewritten) and no UUID (libvirt makes
 * one). Returns the XML files, in order.
 */
export async function floorDomains(stateDir: string, dir: string, domains: string[]): Promise<string[]> {
  const files: string[] = [];
  const escaped = stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const [i, domain] of domains.entries()) {
    let xml = (await virsh('dumpxml', '--inactive', domain)).stdout;
    // Paths appear as attributes (disks, sockets) and as element text (<kernel>, <initrd>).
    for (const from of new Set(xml.match(new RegExp(`${escaped}[^'"<>\\s]*`, 'g')) ?? [])) {
      const to = join(dir, `vm${i}`, from.slice(stateDir.length));
      await mkdir(dirname(to), { recursive: true });
      // Not the serial log: the floor's guests must write their own READY marker.
      if (!to.endsWith('.log') && (await stat(from).catch(() => undefined))?.isFile()) await copyFile(from, to);
    }
    xml = xml.split(stateDir).join(join(dir, `vm${i}`))
      .replace(/<name>[^<]+<\/name>/, `<name>floor_${i}</name>`)
      .replace(/<uuid>[^<]+<\/uuid>\s*/, '');
    const file = join(dir, `floor_${i}.xml`);
    await writeFile(file, xml);
    files.push(file);
  }
  return files;
}

/** Per domain, ms from the start until its `virsh define && virsh start` returned. */
export async function rawFloorStart(files: string[]): Promise<number[]> {
  const t0 = performance.now();
  return Promise.all(files.map(async (file, i) => {
    const d = await virsh('define', file);
    const s = d.exitCode === 0 ? await virsh('start', `floor_${i}`) : d;
    if (s.exitCode !== 0) throw new Error(`floor_${i}: ${s.stderr}`);
    return performance.now() - t0;
  }));
}

/** Per domain, ms from the start until its minimal Node process (define && start) exited. */
export async function nodeFloorStart(files: string[]): Promise<number[]> {
  const t0 = performance.now();
  return Promise.all(files.map(async (file) => {
    await execa(process.execPath, [NODE_FLOOR_LAUNCHER, file]);
    return performance.now() - t0;
  }));
}

/** Destroys and undefines floor_0 … floor_<n-1> (not timed). */
export async function removeFloorDomains(n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    await virsh('destroy', `floor_${i}`);
    await virsh('undefine', `floor_${i}`);
  }));
}

/** The serial log a domain XML names (QEMU appends to it: `append='on'`). */
export function serialLog(xml: string, label: string): string {
  const log = /<log file=['"]([^'"]+)['"]/.exec(xml)?.[1];
  if (!log) throw new Error(`${label}: the domain has no serial log to read the READY marker from`);
  return log;
}

/**
 * Until the guest of this domain XML printed its READY marker (acpid listens from then on).
 * A guest kernel that panicked (rare under TCG here, but seen) never will: that fails at once
 * with the log's tail instead of waiting out the timeout.
 */
export async function guestReady(xml: string, label: string): Promise<void> {
  const log = serialLog(xml, label);
  // waitFor takes a throw as "not yet": the panic comes back as a value and is thrown here.
  const outcome = await waitFor(`${label} READY`, async () => {
    const text = await readFile(log, 'utf8').catch(() => '');
    if (text.includes(GUEST_MARKERS.ready)) return { ready: true as const };
    const panic = text.indexOf('Kernel panic');
    return panic >= 0 ? { ready: false as const, panic: text.slice(panic, panic + 300).trim() } : false;
  }, 600_000, 100);
  if (!outcome.ready) {
    // The run's clean-up removes the log with its work dir: keep a copy that says why.
    const kept = join(tmpdir(), `vo-bench-guest-panic-${label}-${Date.now()}.log`);
    await copyFile(log, kept);
    throw new Error(`${label}: the guest's kernel panicked while booting (serial log kept in ${kept}): ${outcome.panic}`);
  }
}
