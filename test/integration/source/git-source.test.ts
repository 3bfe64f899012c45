import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { validateManifest } from '../../../api/validate.js';
import { createWebhookRoute, GitSource, signBody, type GitSourceOptions } from '../../../reconciler/source/index.js';
import { nextEvent, sh, tempEntries, TestRepo, vmYaml } from './helpers.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

function newRepo(): TestRepo {
  const repo = new TestRepo();
  cleanups.push(() => repo.remove());
  return repo;
}

async function startSource(opts: GitSourceOptions): Promise<GitSource> {
  const source = new GitSource({ freshness: false, logger: silent, debounceMs: 100, ...opts });
  cleanups.push(() => source.stop());
  await source.start();
  return source;
}

describe('GitSource watching a local bare repository', () => {
  it('sees the first push, later pushes, refuses invalid ones, follows force-pushes and packed refs', async () => {
    const repo = newRepo();
    const cacheDir = mkdtempSync(join(tmpdir(), 'virtops-srctest-cache-'));
    cleanups.push(() => rmSync(cacheDir, { recursive: true, force: true }));
    // Start on an empty repository: packed-refs and refs/heads/main do not exist yet.
    const source = await startSource({ repo: repo.bare, cacheDir });
    expect(source.mode).toBe('watch');
    expect(source.current).toBeUndefined();

    // 1. first push
    let ev = nextEvent(source);
    const a = repo.commit({ 'dist/web.k8s.yaml': vmYaml('web'), 'README.md': 'vms\n' }, 'first');
    let e = await ev;
    expect(e).toMatchObject({ type: 'revision', revision: { sha: a } });
    expect(e.type === 'revision' && e.revision.manifests.map((m) => m.metadata.name)).toEqual(['web']);
    expect(e.type === 'revision' && e.revision.origins).toEqual(['dist/web.k8s.yaml#0']);

    // 2. a second push with two files and a multi-document file: deterministic order
    ev = nextEvent(source);
    const b = repo.commit({ 'dist/web.k8s.yaml': vmYaml('web', '256Mi'), 'dist/db.k8s.yaml': `${vmYaml('db')}---\n${vmYaml('db2')}` }, 'second');
    e = await ev;
    expect(e).toMatchObject({ type: 'revision', revision: { sha: b } });
    expect(e.type === 'revision' && e.revision.manifests.map((m) => m.metadata.name)).toEqual(['db', 'db2', 'web']);

    // 3. an invalid manifest is refused and the previous revision stays current
    ev = nextEvent(source);
    const c = repo.commit({ 'dist/web.k8s.yaml': vmYaml('web').replace('bus: virtio', 'bus: virtio\n                cachee: none') }, 'broken');
    e = await ev;
    expect(e.type).toBe('refused');
    expect(e.type === 'refused' && e.refused.sha).toBe(c);
    expect(e.type === 'refused' && e.refused.errors.join('\n')).toMatch(/dist\/web\.k8s\.yaml#0: \/spec\/template\/spec\/domain\/devices\/disks\/0\/disk\/cachee: unknown field 'cachee'/);
    expect(source.current?.sha).toBe(b);

    // 4. force-push back to an older commit: that revision is yielded again
    ev = nextEvent(source);
    repo.forcePush(a);
    e = await ev;
    expect(e).toMatchObject({ type: 'revision', revision: { sha: a } });
    expect(source.current?.sha).toBe(a);

    // 5. packed refs: pack everything (loose ref disappears), then push again
    sh(repo.bare, 'pack-refs', '--all');
    expect(existsSync(join(repo.bare, 'refs/heads/main'))).toBe(false);
    // the pack itself does not move the branch: no event expected, but a re-check is harmless
    await source.checkNow('manual');
    expect(source.current?.sha).toBe(a);
    ev = nextEvent(source);
    sh(repo.work, 'reset', '--quiet', '--hard', a);
    const d = repo.commit({ 'dist/web.k8s.yaml': vmYaml('web', '512Mi') }, 'after pack', false);
    repo.forcePush(d);
    e = await ev;
    expect(e).toMatchObject({ type: 'revision', revision: { sha: d } });

    // 6. a ref that changes only inside packed-refs (update-ref on a packed ref, then repack)
    ev = nextEvent(source);
    sh(repo.bare, 'pack-refs', '--all');
    sh(repo.bare, 'update-ref', 'refs/heads/main', b);
    sh(repo.bare, 'pack-refs', '--all');
    e = await ev;
    expect(e).toMatchObject({ type: 'revision', revision: { sha: b } });

    // Re-checks of an unchanged branch publish nothing.
    const before = { ...source.counters };
    await source.checkNow('manual');
    await source.checkNow('resync');
    expect(source.counters.revisions).toBe(before.revisions);
    expect(source.counters.refused).toBe(before.refused);
    // At least the two asked for: a late watcher event from step 6 may add one more check.
    expect(source.counters.checks).toBeGreaterThanOrEqual(before.checks + 2);

    // No worktree survives a check.
    expect(sh(cacheDir, '--git-dir', join(cacheDir, 'repo.git'), 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree '))).toHaveLength(1);
    expect(existsSync(join(cacheDir, 'worktrees')) ? readdirSync(join(cacheDir, 'worktrees')) : []).toEqual([]);

    // Stop: no more checks, even on a push; the given cache is kept, worktrees are gone.
    await source.stop();
    const checks = source.counters.checks;
    repo.commit({ 'dist/web.k8s.yaml': vmYaml('web', '1Gi') }, 'after stop');
    await new Promise((r) => setTimeout(r, 600));
    expect(source.counters.checks).toBe(checks);
    expect(existsSync(join(cacheDir, 'repo.git'))).toBe(true);
    expect(existsSync(join(cacheDir, 'worktrees'))).toBe(false);
  });

  it('refuses a commit without dist/ or with an empty dist/, and offers the async iterator', async () => {
    const repo = newRepo();
    repo.commit({ 'README.md': 'no dist yet\n' }, 'no dist');
    const source = await startSource({ repo: repo.bare });
    expect(source.current).toBeUndefined();
    expect(source.counters.refused).toBe(1);

    const it = source.events()[Symbol.asyncIterator]();
    const good = repo.commit({ 'dist/app.yaml': vmYaml('app') }, 'dist');
    const first = await it.next();
    expect(first.value).toMatchObject({ type: 'revision', revision: { sha: good } });
    const empty = repo.commit({ 'dist/app.yaml': '# nothing\n' }, 'empty');
    const second = await it.next();
    expect(second.value).toMatchObject({ type: 'refused', refused: { sha: empty, errors: [expect.stringMatching(/holds no manifests/)] } });
    await source.stop();
    expect((await it.next()).done).toBe(true);
  });

  it('reads dist/ from the git objects: parses only the files a push changed, skips symlinks and other files, refuses a dist that is not a directory', async () => {
    const repo = newRepo();
    const names = ['a', 'b', 'c', 'd', 'e'];
    repo.commit({ ...Object.fromEntries(names.map((n) => [`dist/${n}.k8s.yaml`, vmYaml(n)])), 'dist/sub/f.yml': vmYaml('f'), 'dist/notes.txt': 'not a manifest\n' }, 'six VMs', false);
    symlinkSync('a.k8s.yaml', join(repo.work, 'dist', 'link.yaml'));
    repo.commit({}, 'a symlink (a checkout\'s readdir skipped it too)');
    const validated: string[] = [];
    const validate = (obj: unknown) => (validated.push(String((obj as { metadata?: { name?: string } }).metadata?.name)), validateManifest(obj));
    const source = await startSource({ repo: repo.bare, validate });
    expect(source.current?.manifests.map((m) => m.metadata.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(validated.sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);

    validated.length = 0;
    let ev = nextEvent(source);
    const edited = repo.commit({ 'dist/c.k8s.yaml': vmYaml('c', '256Mi') }, 'c grows');
    const e = await ev;
    expect(e).toMatchObject({ type: 'revision', revision: { sha: edited } });
    expect(validated).toEqual(['c']);
    expect(e.type === 'revision' && e.revision.manifests.map((m) => m.metadata.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);

    ev = nextEvent(source);
    rmSync(join(repo.work, 'dist'), { recursive: true });
    const file = repo.commit({ dist: 'a file\n' }, 'dist is a file');
    expect(await ev).toMatchObject({ type: 'refused', refused: { sha: file, errors: [expect.stringMatching(/^dist\/ does not exist in commit/)] } });
    expect(source.current?.sha).toBe(edited);
  });

  it('changedBetween: the VMs good commits between two revisions changed, even when the net change is nothing', async () => {
    const repo = newRepo();
    const key = (name: string) => `kubevirt.io/v1/VirtualMachine/default/${name}`;
    const base = repo.commit({ 'dist/a.k8s.yaml': vmYaml('a'), 'dist/b.k8s.yaml': vmYaml('b'), 'dist/c.k8s.yaml': vmYaml('c') }, 'base');
    repo.commit({ 'dist/a.k8s.yaml': vmYaml('a', '256Mi') }, 'a grows');
    // Refused (invalid): never applied, so its change to b counts for nothing.
    repo.commit({ 'dist/b.k8s.yaml': vmYaml('b').replace('bus: virtio', 'bus: virtio\n                cachee: none') }, 'broken b');
    repo.commit({ 'dist/b.k8s.yaml': vmYaml('b'), 'dist/a.k8s.yaml': vmYaml('a') }, 'a back, b back');
    repo.commit({ 'dist/c.k8s.yaml': null }, 'c removed');
    const tip = repo.commit({ 'dist/c.k8s.yaml': vmYaml('c') }, 'c back');
    const source = await startSource({ repo: repo.bare });
    expect(source.current?.sha).toBe(tip);
    // a: changed and changed back; c: removed and added back; b: only a refused commit touched it.
    expect(await source.changedBetween(base, tip, [key('a'), key('b'), key('c')])).toEqual([key('a'), key('c')]);
    expect(await source.changedBetween(base, tip, [key('b')])).toEqual([]);
    expect(await source.changedBetween(tip, tip, [key('a')])).toEqual([]);
    // Not an ancestor (history rewritten): only the net change is known.
    sh(repo.work, 'reset', '--quiet', '--hard', base);
    const other = repo.commit({ 'dist/a.k8s.yaml': vmYaml('a', '512Mi') }, 'rewritten', false);
    repo.forcePush(other);
    await source.checkNow('manual');
    expect(await source.changedBetween(tip, other, [key('a')])).toEqual([]);
  });

  it('removes its own temp cache on stop', async () => {
    const before = tempEntries('virtops-source-');
    const repo = newRepo();
    repo.commit({ 'dist/app.yaml': vmYaml('app') }, 'dist');
    const source = await startSource({ repo: repo.bare });
    expect(source.current).toBeDefined();
    expect(tempEntries('virtops-source-').length).toBe(before.length + 1);
    await source.stop();
    expect(tempEntries('virtops-source-')).toEqual(before);
  });
});

describe('GitSource polling a remote URL', () => {
  it('polls file:// with git ls-remote and yields new revisions', async () => {
    const repo = newRepo();
    const a = repo.commit({ 'dist/app.yaml': vmYaml('app') }, 'a');
    const source = await startSource({ repo: `file://${repo.bare}`, pollIntervalMs: 200 });
    expect(source.mode).toBe('poll');
    expect(source.current?.sha).toBe(a);
    const ev = nextEvent(source);
    const b = repo.commit({ 'dist/app.yaml': vmYaml('app', '64Mi') }, 'b');
    expect(await ev).toMatchObject({ type: 'revision', revision: { sha: b } });
    const ev2 = nextEvent(source);
    repo.forcePush(a);
    expect(await ev2).toMatchObject({ type: 'revision', revision: { sha: a } });
  });

  it('re-checks immediately on a verified webhook and never on a bad signature', async () => {
    const repo = newRepo();
    repo.commit({ 'dist/app.yaml': vmYaml('app') }, 'a');
    // Polling effectively off: only the webhook can trigger a check.
    const source = await startSource({ repo: `file://${repo.bare}`, pollIntervalMs: 3_600_000, resyncIntervalMs: 3_600_000 });
    const secret = 'hook-secret';
    const route = createWebhookRoute({ secret, branch: 'main', onPush: () => void source.checkNow('webhook'), logger: silent });
    const server: Server = createServer((req, res) => {
      if (!route(req, res)) {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const url = `http://127.0.0.1:${port}/hooks/git`;

    const b = repo.commit({ 'dist/app.yaml': vmYaml('app', '64Mi') }, 'b');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: b });
    const checks = source.counters.checks;
    const bad = await fetch(url, { method: 'POST', body, headers: { 'x-github-event': 'push', 'x-hub-signature-256': signBody(body, 'wrong') } });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { reason: string }).reason).toMatch(/does not match/);
    await new Promise((r) => setTimeout(r, 300));
    expect(source.counters.checks).toBe(checks);

    const tooBig = await fetch(url, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024), headers: { 'x-signature-256': signBody('x', secret) } });
    expect(tooBig.status).toBe(413);

    const ev = nextEvent(source);
    const good = await fetch(url, { method: 'POST', body, headers: { 'x-github-event': 'push', 'x-hub-signature-256': signBody(body, secret) } });
    expect(good.status).toBe(202);
    expect(await ev).toMatchObject({ type: 'revision', revision: { sha: b } });
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });
});
