/**
 * `virtops up` with a real guest: real libvirtd (qemu:///system, TCG), the test guest's
 * kernel-boot image in a real local registry, real git. One VM, booted three times (push,
 * after `virsh destroy`, after a SIGKILL of its launcher process), then pruned.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { bareVm, testGuestVm, vmDocuments } from './fixture.js';
import { CLI, guestUpFixture, launcherPids, vm, waitFor } from './harness.js';

const NAME = 'vo-up-guest';
const DOMAIN = `default_${NAME}`;
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

/** The QEMU process of a libvirt domain (its argv names it `guest=<domain>,...`). */
async function qemuPidOf(domain: string): Promise<number | undefined> {
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0]?.includes('qemu-system') && argv.some((a) => a.startsWith(`guest=${domain},`))) return Number(e);
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('virtops up boots a real guest (qemu:///system, TCG)', () => {
  const f = guestUpFixture(DOMAIN, ({ git, registry }) => ['--repo', git.bare, '--emulation', 'tcg', '--interval', '3s', '--insecure-registry', registry.host, '--no-freshness-check']);

  const serial = async (path: string) => readFile(path, 'utf8').catch(() => '');

  it('a push starts the VM: Running, the guest prints its markers and the user-data from git', async () => {
    await f.git.commitVms([testGuestVm({ image: f.image, name: NAME })], 'add the test guest');
    const v = await waitFor('Running', async () => {
      const x = await vm(f.up!.server, NAME);
      return x?.status?.printableStatus === 'Running' ? x : undefined;
    }, 180_000, 250);
    expect((await virsh('domstate', DOMAIN)).stdout.trim()).toBe('running');
    // What runs is the Pod from git plus the host flags, visibly.
    const argv = (await readFile(`/proc/${v.instance!.pid}/cmdline`, 'utf8')).split('\0');
    expect(argv).toContain('launcher-monitor');
    expect(argv.slice(argv.indexOf('--emulation'))[1]).toBe('tcg');
    expect(f.up!.logText()).toMatch(/host flag --emulation tcg \(the Pod in git says auto\)/);
    const out = await waitFor('guest ready marker', async () => {
      const text = await serial(v.instance!.serialLog);
      return text.includes(GUEST_MARKERS.ready) ? text : undefined;
    }, 120_000, 500);
    expect(out).toContain(`${GUEST_MARKERS.userData} hello-from-git`);

    // `virtops domain-xml` previews the same paths the launcher defined (disks, ISO, kernel, initrd, console).
    const manifest = join(f.stateDir, 'preview.yaml');
    await writeFile(manifest, vmDocuments(testGuestVm({ image: f.image, name: NAME })));
    const preview = await execa(process.execPath, [CLI, 'domain-xml', manifest, '--emulation', 'tcg', '--state-dir', f.stateDir, '--uid', v.instance!.uid]);
    const defined = (await virsh('dumpxml', DOMAIN)).stdout;
    const previewPaths = domainPaths(preview.stdout);
    expect(previewPaths.filter((p) => p.kind === 'disk').length).toBe(2);
    expect(previewPaths.map((p) => p.kind)).toEqual(expect.arrayContaining(['kernel', 'initrd', 'serial', 'log']));
    const definedPaths = domainPaths(defined);
    for (const p of previewPaths) {
      // The image digest is known only after the pull: the preview names it as a placeholder.
      const pattern = new RegExp(`^${p.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/&lt;digest of [^&]+&gt;/g, '[0-9a-f]{64}')}$`);
      expect(definedPaths.filter((d) => d.kind === p.kind).map((d) => d.path), `${p.kind} ${p.path}`).toEqual(expect.arrayContaining([expect.stringMatching(pattern)]));
    }
  }, 400_000);

  it('virsh destroy behind its back: the Always VM is restarted', async () => {
    const before = (await vm(f.up!.server, NAME))!;
    expect((await virsh('destroy', DOMAIN)).exitCode).toBe(0);
    const after = await waitFor('a new instance Running', async () => {
      const x = await vm(f.up!.server, NAME);
      return x?.instance && x.instance.uid !== before.instance!.uid && x.status?.printableStatus === 'Running' ? x : undefined;
    }, 120_000, 250);
    expect((await virsh('domstate', DOMAIN)).stdout.trim()).toBe('running');
    expect(after.events.map((e) => e.reason)).toContain('Stopped');
    // The old incarnation's launcher is gone; exactly one monitor remains.
    const monitors = (await launcherPids(f.stateDir)).filter((p) => p.monitor);
    expect(monitors.map((p) => p.uid)).toEqual([after.instance!.uid]);
  }, 200_000);

  it('SIGKILL of its one launcher process: up cleans up after it (domain, sockets, disks) and runs the VM again', async () => {
    const before = (await vm(f.up!.server, NAME))!;
    const inst = before.instance!;
    // One Node process per VM: the launcher runs inside `launcher-monitor`.
    const procs = (await launcherPids(f.stateDir)).filter((p) => p.uid === inst.uid);
    expect(procs).toEqual([{ pid: inst.pid, monitor: true, uid: inst.uid }]);
    const qemu = await qemuPidOf(DOMAIN);
    expect(qemu).toBeDefined();
    const ephemeral = `${inst.podDir}/ephemeral-disks/volumes/ephemeral/${inst.uid}`;
    expect(existsSync(ephemeral)).toBe(true);
    process.kill(inst.pid!, 'SIGKILL');
    const after = await waitFor('a new instance Running', async () => {
      const x = await vm(f.up!.server, NAME);
      return x?.instance && x.instance.uid !== inst.uid && x.status?.printableStatus === 'Running' ? x : undefined;
    }, 180_000, 250);
    // The old incarnation is gone: its QEMU (the domain was stopped and undefined by the
    // cleanup, then defined again for the new instance), its disks, its process.
    expect(pidAlive(qemu!)).toBe(false);
    expect(existsSync(ephemeral)).toBe(false);
    expect((await launcherPids(f.stateDir)).map((p) => p.uid)).toEqual([after.instance!.uid]);
    expect((await virsh('domstate', DOMAIN)).stdout.trim()).toBe('running');
    expect(f.up!.logText()).toMatch(/the launcher died without cleaning up; running its cleanup/);
    expect(await readFile(inst.launcherLog, 'utf8')).toMatch(/virtops-launcher-cleanup.*cleaned up after the launcher/);
  }, 240_000);

  it('removing it from git prunes domain, disks, ISO, socket and process', async () => {
    const v = (await vm(f.up!.server, NAME))!;
    const ephemeral = `${v.instance!.podDir}/ephemeral-disks/volumes/ephemeral/${v.instance!.uid}`;
    expect(existsSync(ephemeral)).toBe(true);
    // `virtops console` stays attached and sees the guest's ACPI shutdown message.
    const consoleProc = execa(process.execPath, [CLI, 'console', NAME, '--server', f.up!.server], { reject: false, stdin: 'pipe' });
    let consoleErr = '';
    consoleProc.stderr?.on('data', (b: Buffer) => (consoleErr += b.toString()));
    await waitFor('console attached', async () => /Connected to default_vo-up-guest/.test(consoleErr), 30_000, 100);
    await f.git.commitVms([bareVm('placeholder', { runStrategy: 'Halted' })], 'remove the guest');
    await waitFor('pruned', async () => (await vm(f.up!.server, NAME)) === undefined, 120_000);
    expect((await virsh('domstate', DOMAIN)).exitCode).not.toBe(0);
    expect(existsSync(v.instance!.podDir)).toBe(false);
    expect(existsSync(v.instance!.socket)).toBe(false);
    expect(existsSync(v.instance!.console)).toBe(false);
    expect((await launcherPids(f.stateDir)).length).toBe(0);
    consoleProc.stdin?.end();
    const con = await consoleProc;
    expect(con.stdout).toContain(GUEST_MARKERS.shutdown);
    // A Halted VM is healthy and stopped.
    expect((await vm(f.up!.server, 'placeholder'))?.status?.printableStatus).toBe('Stopped');
  }, 200_000);
});

/** File paths a domain XML names, by what they are (libvirt quotes with ', the converter with "). */
function domainPaths(xml: string): { kind: string; path: string }[] {
  const found: { kind: string; path: string }[] = [];
  for (const m of xml.matchAll(/<disk\b[\s\S]*?<source file=["']([^"']+)["']/g)) found.push({ kind: 'disk', path: m[1]! });
  for (const m of xml.matchAll(/<(kernel|initrd)>([^<]+)</g)) found.push({ kind: m[1]!, path: m[2]! });
  for (const m of xml.matchAll(/<serial type=["']unix["']>[\s\S]*?<source mode=["']bind["'] path=["']([^"']+)["']/g)) found.push({ kind: 'serial', path: m[1]! });
  for (const m of xml.matchAll(/<log file=["']([^"']+)["']/g)) found.push({ kind: 'log', path: m[1]! });
  return found;
}
