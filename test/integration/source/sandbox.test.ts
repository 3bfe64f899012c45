/**
 * Issue 9 part 3, "git content is data": by default a pushed commit's code never runs in the
 * reconciler; with the opt-in verifier it runs only in the sandbox, where writing outside its
 * scratch dir, reading the state dir or a root-only secret, and reaching the network all fail.
 * These commits carry no lockfile: the sandbox gets this checkout's dependencies
 * (`nodeModules`) instead of a pinned install (that path: freshness.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { GitSource, PROJECT_NODE_MODULES, sandboxUnavailable } from '../../../reconciler/source/index.js';
import { nextEvent, TestRepo, vmYaml } from './helpers.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

/** A repository whose dist/ is valid and whose vms/main.ts runs `body` (ESM, top-level await allowed). */
function attackerFiles(body: string): Record<string, string> {
  return {
    'package.json': '{ "name": "attacker", "private": true, "type": "module" }\n',
    'cdk8s.yaml': 'language: typescript\napp: npx tsx vms/main.ts\noutput: dist\n',
    'vms/main.ts': body,
    'dist/vm.k8s.yaml': vmYaml('victim'),
  };
}

describe('git content is data (issue 9 part 3)', () => {
  it('by default no code from the commit runs, and a commit with a valid dist/ is applied', async () => {
    const marker = join(tmpdir(), `pwned-${randomBytes(6).toString('hex')}`);
    cleanups.push(() => rmSync(marker, { force: true }));
    const repo = new TestRepo();
    cleanups.push(() => repo.remove());
    const sha = repo.commit(attackerFiles(`import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'pwned by ' + process.getuid?.());\n`), 'a VM, and code that should never run');

    const source = new GitSource({ repo: repo.bare, logger: silent, debounceMs: 100 });
    cleanups.push(() => source.stop());
    await source.start();
    expect(source.counters.refused).toBe(0);
    expect(source.current?.sha).toBe(sha);
    expect(source.current?.manifests.map((m) => m.metadata?.name)).toEqual(['victim']);
    // The check is synchronous with start(): had anything run, the file would be there by now.
    expect(existsSync(marker)).toBe(false);
  });

  it('with --verify-synth, the commit\'s code cannot write outside its sandbox, read the state dir or a root-only secret, or reach the network; it is refused with that reason', async () => {
    expect(sandboxUnavailable(), 'the sandbox needs root, bwrap, prlimit and setpriv (bash scripts/setup-host.sh)').toBeUndefined();
    const id = randomBytes(6).toString('hex');
    const marker = join(tmpdir(), `pwned-${id}`);
    cleanups.push(() => rmSync(marker, { force: true }));
    // A state dir like the reconciler's: root-only, with a root-only secret in it.
    const stateDir = mkdtempSync(join(tmpdir(), 'virtops-state-'));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    chmodSync(stateDir, 0o700);
    const secret = join(stateDir, 'api.token');
    writeFileSync(secret, `s3cret-${id}\n`, { mode: 0o600 });
    // A root-only file outside the state dir too, in a directory anyone may enter.
    const looseSecret = join(tmpdir(), `virtops-secret-${id}`);
    writeFileSync(looseSecret, `s3cret-${id}\n`, { mode: 0o600 });
    cleanups.push(() => rmSync(looseSecret, { force: true }));
    // Something listening on the host's loopback that the commit must not reach.
    let connections = 0;
    const server: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    // And a secret in the reconciler's environment.
    process.env['VIRTOPS_TEST_SECRET'] = id;
    cleanups.push(() => void delete process.env['VIRTOPS_TEST_SECRET']);

    const probe = `import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
const lines: string[] = [];
const attempt = (what: string, f: () => unknown): void => {
  try { f(); lines.push(\`probe \${what}: ESCAPED\`); }
  catch (e) { lines.push(\`probe \${what}: blocked (\${(e as NodeJS.ErrnoException).code ?? String(e)})\`); }
};
attempt(${JSON.stringify(`write ${marker}`)}, () => writeFileSync(${JSON.stringify(marker)}, 'pwned'));
attempt(${JSON.stringify(`read ${secret}`)}, () => readFileSync(${JSON.stringify(secret)}, 'utf8'));
attempt(${JSON.stringify(`list ${stateDir}`)}, () => readdirSync(${JSON.stringify(stateDir)}));
attempt(${JSON.stringify(`read ${looseSecret}`)}, () => readFileSync(${JSON.stringify(looseSecret)}, 'utf8'));
attempt('read /etc/shadow', () => readFileSync('/etc/shadow', 'utf8'));
attempt('write /src/vms/main.ts', () => writeFileSync('vms/main.ts', ''));
const net = await new Promise<string>((resolve) => {
  const s = connect(${port}, '127.0.0.1');
  s.on('connect', () => { s.destroy(); resolve('ESCAPED'); });
  s.on('error', (e: NodeJS.ErrnoException) => resolve(\`blocked (\${e.code})\`));
  setTimeout(() => { s.destroy(); resolve('blocked (timeout)'); }, 5000);
});
lines.push(\`probe connect 127.0.0.1:${port}: \${net}\`);
lines.push(\`probe env secret: \${process.env['VIRTOPS_TEST_SECRET'] === undefined ? 'blocked (absent)' : 'ESCAPED'}\`);
lines.push(\`probe uid=\${process.getuid?.()} gid=\${process.getgid?.()}\`);
console.error(lines.join('\\n'));
process.exit(3);
`;
    const repo = new TestRepo();
    cleanups.push(() => repo.remove());
    const sha = repo.commit(attackerFiles(probe), 'tries to escape the verifier');

    const source = new GitSource({ repo: repo.bare, logger: silent, debounceMs: 100, freshness: { timeoutMs: 120_000, nodeModules: PROJECT_NODE_MODULES } });
    cleanups.push(() => source.stop());
    const ev = nextEvent(source, 150_000);
    await source.start();
    const e = await ev;
    expect(e.type).toBe('refused');
    if (e.type !== 'refused') return;
    expect(e.refused.sha).toBe(sha);
    const errors = e.refused.errors.join('\n');
    expect(errors).toMatch(/synth check failed in the verifier sandbox/);
    // Every probe ran (so the code did execute, in the sandbox) and every one was blocked.
    expect(errors).toMatch(new RegExp(`probe write ${marker}: blocked \\((ENOENT|EROFS|EACCES)\\)`));
    expect(errors).toMatch(new RegExp(`probe read ${secret}: blocked \\((ENOENT|EACCES)\\)`));
    expect(errors).toMatch(new RegExp(`probe list ${stateDir}: blocked \\((ENOENT|EACCES)\\)`));
    expect(errors).toMatch(new RegExp(`probe read ${looseSecret}: blocked \\((ENOENT|EACCES)\\)`));
    expect(errors).toMatch(/probe read \/etc\/shadow: blocked \((ENOENT|EACCES)\)/);
    expect(errors).toMatch(/probe write \/src\/vms\/main.ts: blocked \((EROFS|EACCES)\)/);
    expect(errors).toMatch(new RegExp(`probe connect 127.0.0.1:${port}: blocked \\((ECONNREFUSED|ENETUNREACH|timeout)\\)`));
    expect(errors).toMatch(/probe env secret: blocked \(absent\)/);
    expect(errors).toMatch(/probe uid=65534 gid=65534/);
    expect(errors).not.toMatch(/ESCAPED/);
    if (process.env['VIRTOPS_TEST_VERBOSE']) console.log(errors);
    // And from the host's side: nothing written, nothing connected, the last good revision unchanged.
    expect(existsSync(marker)).toBe(false);
    expect(connections).toBe(0);
    expect(source.current).toBeUndefined();
  });

  it('with --verify-synth, a commit that never finishes is killed at the timeout with every process it started, and is not accepted', async () => {
    expect(sandboxUnavailable()).toBeUndefined();
    const id = randomBytes(6).toString('hex');
    const hang = `import { spawn } from 'node:child_process';
spawn('sh', ['-c', 'sleep 600; echo ${id}'], { detached: true, stdio: 'ignore' }).unref();
for (;;) { /* burn CPU until killed */ }
`;
    const repo = new TestRepo();
    cleanups.push(() => repo.remove());
    repo.commit(attackerFiles(hang), 'never finishes');
    const source = new GitSource({ repo: repo.bare, logger: silent, debounceMs: 100, freshness: { timeoutMs: 20_000, nodeModules: PROJECT_NODE_MODULES } });
    cleanups.push(() => source.stop());
    const left = () => execFileSync('ps', ['-eo', 'uid=,args='], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(id));
    const began = Date.now();
    const started = source.start();
    // While the check runs, its child is there, as the sandbox uid (not the reconciler's).
    let seen: string[] = [];
    for (let i = 0; i < 150 && seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = left();
    }
    expect(seen.length, 'the commit\'s child process never appeared').toBeGreaterThan(0);
    expect(seen.every((l) => l.trim().startsWith('65534 '))).toBe(true);
    await started;
    expect(Date.now() - began).toBeLessThan(60_000);
    expect(source.counters.errors).toBe(1); // a timeout says nothing about the commit: retried later, never applied
    expect(source.counters.refused).toBe(0);
    expect(source.current).toBeUndefined();
    // The pid namespace's teardown is asynchronous: give the kernel a moment.
    for (let i = 0; i < 20 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(left()).toEqual([]);
  });
});
