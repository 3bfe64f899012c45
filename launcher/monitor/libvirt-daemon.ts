/**
 * The compute container's own libvirt daemon (`--libvirt-daemon pod`), as KubeVirt's
 * virt-launcher runs virtqemud: the monitor starts it before the launcher, so QEMU is the
 * daemon's child, in the launcher Pod's cgroup, and the Pod's memory request and limit bound
 * the guest.
 *
 * It is libvirtd in *session* mode, as the Pod's non-root user (107): an unprivileged libvirt
 * QEMU driver never touches cgroups (QEMU stays where its parent is), needs no capability,
 * keeps its sockets under $XDG_RUNTIME_DIR/libvirt (the `libvirt-runtime` emptyDir at
 * /var/run/libvirt), its config under $XDG_CONFIG_HOME/libvirt and its state under
 * $XDG_CACHE_HOME/libvirt (the `private` emptyDir): all per Pod, gone with it. Written
 * config: no virtlogd (QEMU writes its own log and the serial file), no cgroups.
 * The image has no virtqemud (Debian 12's libvirt-daemon ships libvirtd only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The session daemon's socket named by a `qemu[+unix]:///session?socket=PATH` URI. */
export function sessionSocketOf(uri: string): string | undefined {
  const q = uri.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(uri.slice(q + 1)).get('socket') ?? undefined;
}

/** $XDG_CONFIG_HOME/libvirt/qemu.conf for the session daemon. */
export const SESSION_QEMU_CONF = [
  '# Written by virtops launcher-monitor (--libvirt-daemon pod).',
  '# QEMU writes its stdout/stderr log itself: no virtlogd in the container.',
  'stdio_handler = "file"',
  '# The container\'s cgroup is the VM\'s: libvirt makes none (session mode makes none anyway).',
  'cgroup_controllers = [ ]',
  '',
].join('\n');

/** $XDG_CONFIG_HOME/libvirt/libvirtd.conf for the session daemon. */
export const SESSION_LIBVIRTD_CONF = [
  '# Written by virtops launcher-monitor (--libvirt-daemon pod).',
  '# Logs to stderr, which is the compute container\'s log; warnings and errors only.',
  'log_outputs = "3:stderr"',
  '',
].join('\n');

export interface DaemonDirs {
  /** $XDG_CONFIG_HOME */
  config: string;
  /** $XDG_RUNTIME_DIR */
  runtime: string;
}

/** The XDG directories the daemon will use, from this process's environment (the Pod's env sets them). */
export function daemonDirs(env: NodeJS.ProcessEnv): DaemonDirs | { error: string } {
  const config = env['XDG_CONFIG_HOME'];
  const runtime = env['XDG_RUNTIME_DIR'];
  if (!config || !runtime) {
    return { error: 'XDG_CONFIG_HOME and XDG_RUNTIME_DIR must be set for --libvirt-daemon pod (synth sets them in the compute container; re-run virtops synth)' };
  }
  return { config, runtime };
}

export interface RunningDaemon {
  readonly pid: number | undefined;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves with the exit (code, signal) when the daemon dies. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A child subreaper around the daemon, in Perl (perl-base is in every Debian root, the image
 * included; Node has no waitpid for processes it did not spawn). libvirt daemonizes QEMU
 * (double fork), so QEMU's parent dies at once and the kernel hands QEMU to the nearest
 * subreaper ancestor, else to the container's PID 1, the launcher monitor, which could never
 * reap it: a guest that stopped stayed a zombie until the Pod ended. With
 * prctl(PR_SET_CHILD_SUBREAPER) this wrapper becomes QEMU's parent instead and reaps every
 * child that exits; it forwards TERM/INT/HUP to the daemon and exits as the daemon did.
 * The prctl syscall number is per architecture (x86_64 157, arm64 167).
 */
export const REAPER_SCRIPT = [
  'my $nr = shift @ARGV;',
  'syscall($nr, 36, 1, 0, 0, 0) == 0 or warn "virtops reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: $!; stopped guests stay zombies\\n";',
  'my $pid = fork() // die "virtops reaper: fork: $!\\n";',
  'if ($pid == 0) { exec { $ARGV[0] } @ARGV or die "virtops reaper: exec $ARGV[0]: $!\\n"; }',
  'for my $s (qw(TERM INT HUP)) { $SIG{$s} = sub { kill $s, $pid }; }',
  'my $status = 255;',
  'while (1) { my $w = waitpid(-1, 0); if ($w == $pid) { $status = $?; last } if ($w == -1) { last unless $!{EINTR} } }',
  'exit(($status & 127) ? 128 + ($status & 127) : ($status >> 8));',
].join(' ');

/** prctl's syscall number on this architecture, or undefined where the wrapper is not used. */
export function prctlSyscall(arch: string = process.arch): number | undefined {
  return arch === 'x64' ? 157 : arch === 'arm64' ? 167 : undefined;
}

/**
 * Writes the config, starts `libvirtd` (foreground, stderr to ours) and waits until `socket`
 * exists. Throws naming the socket when the daemon dies or does not make it in `timeoutMs`.
 */
export async function startSessionDaemon(opts: { socket: string; dirs: DaemonDirs; timeoutMs?: number; binary?: string; reaper?: boolean }): Promise<RunningDaemon> {
  const confDir = join(opts.dirs.config, 'libvirt');
  await mkdir(confDir, { recursive: true });
  await writeFile(join(confDir, 'qemu.conf'), SESSION_QEMU_CONF);
  await writeFile(join(confDir, 'libvirtd.conf'), SESSION_LIBVIRTD_CONF);
  await mkdir(join(opts.dirs.runtime, 'libvirt'), { recursive: true });

  const binary = opts.binary ?? 'libvirtd';
  const nr = prctlSyscall();
  const perl = opts.reaper === false || nr === undefined ? undefined : ['/usr/bin/perl', '/bin/perl'].find((p) => existsSync(p));
  const child: ChildProcess = perl
    ? spawn(perl, ['-e', REAPER_SCRIPT, String(nr), binary], { stdio: ['ignore', 'inherit', 'inherit'] })
    : spawn(binary, [], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', () => resolve({ code: null, signal: null }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let dead: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((e) => (dead = e));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!existsSync(opts.socket)) {
    if (dead) throw new Error(`libvirtd exited (code ${dead.code}, signal ${dead.signal}) before its socket ${opts.socket} appeared; its log is above`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`libvirtd did not create ${opts.socket} within ${opts.timeoutMs ?? 30_000} ms: check that --libvirt-uri's socket= is $XDG_RUNTIME_DIR/libvirt/libvirt-sock`);
    }
    await sleep(50);
  }
  return {
    pid: child.pid,
    exited,
    async stop(graceMs = 10_000) {
      if (dead) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
