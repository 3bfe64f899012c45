/**
 * The few git plumbing calls the source needs, as small async functions over execa.
 * Prompts are disabled so a remote asking for credentials fails fast instead of hanging.
 */
import { execa } from 'execa';

export interface GitCallOptions {
  cwd?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', GIT_ASKPASS: 'true' };

export async function git(args: string[], opts: GitCallOptions = {}): Promise<string> {
  const r = await execa('git', args, {
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env: GIT_ENV,
    timeout: opts.timeoutMs ?? 120_000,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    stripFinalNewline: true,
  });
  return r.stdout;
}

const SHA_RE = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** The commit a branch points to in a local repository (bare or not), or undefined. */
export async function readLocalBranch(gitDir: string, branch: string, opts: GitCallOptions = {}): Promise<string | undefined> {
  try {
    const out = await git(['--git-dir', gitDir, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], opts);
    return SHA_RE.test(out) ? out : undefined;
  } catch (err) {
    // rev-parse --verify --quiet exits 1 without output when the ref does not exist.
    if ((err as { exitCode?: number }).exitCode === 1) return undefined;
    throw err;
  }
}

/** The commit a branch points to on a remote (any git URL), or undefined. */
export async function readRemoteBranch(url: string, branch: string, opts: GitCallOptions = {}): Promise<string | undefined> {
  const out = await git(['ls-remote', '--refs', url, `refs/heads/${branch}`], opts);
  for (const line of out.split('\n')) {
    const [sha, ref] = line.split('\t');
    if (ref === `refs/heads/${branch}` && sha && SHA_RE.test(sha)) return sha;
  }
  return undefined;
}

/** The git directory of a local repository path (the path itself for a bare repo). */
export async function resolveGitDir(path: string, opts: GitCallOptions = {}): Promise<string> {
  return git(['-C', path, 'rev-parse', '--absolute-git-dir'], opts);
}

export async function initCacheRepo(dir: string, opts: GitCallOptions = {}): Promise<void> {
  await git(['init', '--quiet', '--bare', dir], opts);
}

/**
 * Fetch the branch into the cache under a private ref (force: a force-push must win) and
 * return the commit fetched, which may be newer than the one that triggered the fetch.
 */
export async function fetchBranch(cacheDir: string, url: string, branch: string, opts: GitCallOptions = {}): Promise<string> {
  const ref = 'refs/virtops/source';
  await git(['--git-dir', cacheDir, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', url, `+refs/heads/${branch}:${ref}`], opts);
  return git(['--git-dir', cacheDir, 'rev-parse', '--verify', `${ref}^{commit}`], opts);
}

export async function addWorktree(cacheDir: string, dir: string, sha: string, opts: GitCallOptions = {}): Promise<void> {
  await git(['--git-dir', cacheDir, 'worktree', 'add', '--quiet', '--detach', dir, sha], opts);
}

export async function removeWorktree(cacheDir: string, dir: string, opts: GitCallOptions = {}): Promise<void> {
  try {
    await git(['--git-dir', cacheDir, 'worktree', 'remove', '--force', dir], opts);
  } finally {
    // Also drops the metadata of worktrees whose directory vanished (e.g. after a crash).
    await git(['--git-dir', cacheDir, 'worktree', 'prune'], opts).catch(() => undefined);
  }
}

export async function pruneWorktrees(cacheDir: string, opts: GitCallOptions = {}): Promise<void> {
  await git(['--git-dir', cacheDir, 'worktree', 'prune'], opts);
}

/** A regular file in a commit's tree: its path from the repository root and its blob. */
export interface TreeFile {
  path: string;
  blob: string;
}

/**
 * The regular files under `dir` in commit `sha` (recursively; symlinks and submodules are
 * left out, as a checkout's readdir leaves them out), or undefined when `dir` is not a
 * directory in that commit. `dir` is normalized (no `./`, no trailing slash); `.` is the root.
 */
export async function listTreeFiles(gitDir: string, sha: string, dir: string, opts: GitCallOptions = {}): Promise<TreeFile[] | undefined> {
  const out = await git(['--literal-pathspecs', '--git-dir', gitDir, 'ls-tree', '-r', '-z', '--full-tree', sha, '--', dir], opts);
  const prefix = dir === '.' ? '' : `${dir}/`;
  const files: TreeFile[] = [];
  let found = false;
  // Each entry: "<mode> <type> <object>\t<path>\0" (-z: paths are not quoted).
  for (const entry of out.split('\0')) {
    if (!entry) continue;
    const tab = entry.indexOf('\t');
    const [mode, type, object] = entry.slice(0, tab).split(' ');
    const path = entry.slice(tab + 1);
    if (!path.startsWith(prefix)) continue; // `dir` itself is a file or a symlink
    found = true;
    if (type === 'blob' && (mode === '100644' || mode === '100755') && object) files.push({ path, blob: object });
  }
  return found ? files : undefined;
}

/**
 * The contents of these blobs as UTF-8 text, read by `git cat-file --batch`, one call per
 * BLOB_BATCH blobs (so a large dist/ never meets execa's output limit).
 */
export async function readBlobs(gitDir: string, blobs: readonly string[], opts: GitCallOptions = {}): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (let i = 0; i < blobs.length; i += BLOB_BATCH) {
    const batch = blobs.slice(i, i + BLOB_BATCH);
    const r = await execa('git', ['--git-dir', gitDir, 'cat-file', '--batch'], {
      input: `${batch.join('\n')}\n`,
      encoding: 'buffer',
      env: GIT_ENV,
      maxBuffer: 1024 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 120_000,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    });
    const out = Buffer.from(r.stdout);
    // Each object: "<object> <type> <size>\n<contents>\n"; a missing one: "<object> missing\n".
    let at = 0;
    for (const blob of batch) {
      const eol = out.indexOf(0x0a, at);
      const header = out.subarray(at, eol).toString('latin1');
      const [object, type, size] = header.split(' ');
      if (object !== blob || type !== 'blob' || size === undefined) throw new Error(`git cat-file --batch: expected blob ${blob}, got "${header}"`);
      const end = eol + 1 + Number(size);
      texts.set(blob, out.subarray(eol + 1, end).toString('utf8'));
      at = end + 1;
    }
  }
  return texts;
}

const BLOB_BATCH = 1000;
