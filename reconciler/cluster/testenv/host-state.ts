import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What a real kubelet node changes on the host, recorded before it changes it, and how it is
 * undone. The record (HostState) is a JSON file in the node's dir, written before anything is
 * touched, so `testenv down` can undo a node whose processes crashed or were killed.
 * Decisions are pure functions (parsers and planners); the I/O helpers below apply them.
 */

/** Sysctls the kubelet sets at start (no warn-only mode) and the bridge plugin's ip_forward. */
export const NODE_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
] as const;

/**
 * Host directories the kubelet, containerd's shims and CNI write to whatever their config
 * says; each one that did not exist before the node is removed with it.
 */
export const HOST_DIRS = ['/var/log/containers', '/run/containerd', '/var/lib/cni', '/var/run/netns', '/var/lib/kubelet', '/usr/libexec/kubernetes'] as const;

/** iptables chains created by the kubelet (KUBE-*) and the CNI plugins (CNI-*). */
const NODE_CHAIN = /^(KUBE-|CNI-)/;

export interface HostState {
  readonly dir: string;
  /** sysctl → value before the node started. */
  readonly sysctls: Record<string, string>;
  /** Host dirs that already existed (left alone at down). */
  readonly preexistingDirs: readonly string[];
  /** `table/chain` names (ipv4 and ipv6) that existed before; new KUBE-/CNI- chains are removed. */
  readonly iptablesChains: { readonly v4: readonly string[]; readonly v6: readonly string[] };
  /** The node's cgroup (made in every v1 hierarchy), removed with everything under it. */
  readonly cgroupRoot: string;
  /** The CNI bridge; deleted unless it existed before. */
  readonly bridge: string;
  readonly bridgePreexisting: boolean;
}

// ---------- pure parts ----------

/** `table/chain` of every chain in `iptables-save` output. Pure. */
export function parseIptablesChains(save: string): string[] {
  const out: string[] = [];
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith(':')) out.push(`${table}/${line.slice(1).split(/\s+/)[0]}`);
  }
  return out;
}

/**
 * An `iptables-restore --noflush` script that removes the KUBE-/CNI- chains that are in
 * `save` but not in `before`: first the rules of older chains that jump to them, then the
 * chains' own rules, then the chains. Empty string when there is nothing to remove. Pure.
 */
export function iptablesCleanupScript(save: string, before: readonly string[]): string {
  const old = new Set(before);
  const tables = new Map<string, { chains: string[]; rules: string[] }>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      tables.set(table, { chains: [], rules: [] });
    } else if (line.startsWith(':')) {
      const chain = line.slice(1).split(/\s+/)[0]!;
      if (NODE_CHAIN.test(chain) && !old.has(`${table}/${chain}`)) tables.get(table)!.chains.push(chain);
    } else if (line.startsWith('-A ')) {
      tables.get(table)?.rules.push(line);
    }
  }
  const out: string[] = [];
  for (const [name, t] of tables) {
    if (t.chains.length === 0) continue;
    const ours = new Set(t.chains);
    const deletes = t.rules.filter((r) => {
      const [, chain] = r.split(/\s+/);
      const target = /\s-[jg]\s+(\S+)/.exec(r)?.[1];
      return !ours.has(chain!) && target !== undefined && ours.has(target);
    });
    out.push(`*${name}`, ...deletes.map((r) => `-D${r.slice(2)}`), ...t.chains.map((c) => `-F ${c}`), ...t.chains.map((c) => `-X ${c}`), 'COMMIT');
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

/** Mount points at or under `dir` in /proc/self/mountinfo text, deepest first. Pure. */
export function mountsUnder(mountinfo: string, dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

// ---------- I/O ----------

export function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function writeSysctl(name: string, value: string): void {
  writeFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, `${value}\n`);
}

function iptablesSave(v6: boolean): string {
  const r = spawnSync(v6 ? 'ip6tables-save' : 'iptables-save', [], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

export function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;
}

/**
 * The hierarchies mounted under /sys/fs/cgroup: v1 (cpu, memory, pids, name=systemd, ...) and
 * the hybrid layout's unified v2 one, where runc makes a cgroup per container too.
 */
export function cgroupHierarchies(): string[] {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!)
    .filter((p) => p.startsWith('/sys/fs/cgroup/'));
}

/** Records the host state the node is about to change (call before starting anything). */
export function recordHostState(dir: string, o: { cgroupRoot: string; bridge: string }): HostState {
  const sysctls: Record<string, string> = {};
  for (const s of NODE_SYSCTLS) {
    const v = readSysctl(s);
    if (v !== undefined) sysctls[s] = v;
  }
  return {
    dir,
    sysctls,
    preexistingDirs: HOST_DIRS.filter((d) => existsSync(d)),
    iptablesChains: { v4: parseIptablesChains(iptablesSave(false)), v6: parseIptablesChains(iptablesSave(true)) },
    cgroupRoot: o.cgroupRoot,
    bridge: o.bridge,
    bridgePreexisting: linkExists(o.bridge),
  };
}

/** Every pid in the node's cgroup subtree (any hierarchy). */
export function pidsInCgroup(cgroupRoot: string): number[] {
  const pids = new Set<number>();
  const walk = (path: string): void => {
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    try {
      for (const p of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n')) if (p.trim()) pids.add(Number(p));
    } catch {
      // gone meanwhile
    }
    for (const e of entries) if (e.isDirectory()) walk(join(path, e.name));
  };
  for (const h of cgroupHierarchies()) walk(join(h, cgroupRoot));
  return [...pids];
}

/** rmdir the node's cgroup tree in every hierarchy, children first. Returns what is left. */
export function removeCgroups(cgroupRoot: string): string[] {
  const left: string[] = [];
  const rm = (path: string): void => {
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) rm(join(path, e.name));
    try {
      rmdirSync(path);
    } catch {
      if (existsSync(path)) left.push(path);
    }
  };
  for (const h of cgroupHierarchies()) rm(join(h, cgroupRoot));
  return left;
}

/** Unmounts everything at or under `dir`, deepest first (lazily when busy). Returns what is left. */
export function unmountUnder(dir: string): string[] {
  for (const point of mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), dir)) {
    if (spawnSync('umount', [point], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
  }
  return mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), dir);
}

/**
 * Undoes what the node changed, given its record: removes its iptables chains, bridge, host
 * dirs it created, and restores the sysctls. Processes, mounts and cgroups are the caller's
 * (they must be gone first). Idempotent; returns problems instead of throwing halfway.
 */
export function restoreHostState(s: HostState): string[] {
  const problems: string[] = [];
  for (const v6 of [false, true]) {
    const script = iptablesCleanupScript(iptablesSave(v6), v6 ? s.iptablesChains.v6 : s.iptablesChains.v4);
    if (script === '') continue;
    const r = spawnSync(v6 ? 'ip6tables-restore' : 'iptables-restore', ['--noflush'], { input: script, encoding: 'utf8' });
    if (r.status !== 0) problems.push(`${v6 ? 'ip6tables' : 'iptables'}-restore: ${r.stderr.trim()} (script:\n${script})`);
  }
  if (!s.bridgePreexisting && linkExists(s.bridge)) {
    // Veths left on the bridge (their netns should be gone by now) go first.
    const slaves = execFileSync('ip', ['-o', 'link', 'show', 'master', s.bridge], { encoding: 'utf8' });
    for (const m of slaves.matchAll(/^\d+:\s+([^:@\s]+)/gm)) spawnSync('ip', ['link', 'del', 'dev', m[1]!], { stdio: 'ignore' });
    if (spawnSync('ip', ['link', 'del', 'dev', s.bridge], { stdio: 'ignore' }).status !== 0) problems.push(`could not delete bridge ${s.bridge}`);
  }
  for (const dir of HOST_DIRS) {
    if (s.preexistingDirs.includes(dir)) {
      if (dir === '/var/log/containers') removeLinksInto(dir, s.dir);
      continue;
    }
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [name, value] of Object.entries(s.sysctls)) {
    if (readSysctl(name) === value) continue;
    try {
      writeSysctl(name, value);
    } catch (err) {
      problems.push(`sysctl ${name}=${value}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** The kubelet links /var/log/containers/<pod>_<ns>_<c>-<id>.log to its pod logs dir. */
function removeLinksInto(dir: string, target: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    try {
      if (lstatSync(path).isSymbolicLink() && readlinkSync(path).startsWith(`${target}/`)) rmSync(path);
    } catch {
      // gone meanwhile
    }
  }
}
