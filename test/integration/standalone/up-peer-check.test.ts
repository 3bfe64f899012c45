/**
 * SO_PEERCRED on the sockets virtops serves (issue 9, part 2): besides their 0600 mode, the
 * API socket up.sock and a launcher's command socket refuse a peer whose uid is not theirs
 * (nor root) and log the refusal. To prove the peer check alone refuses, this test relaxes the
 * modes of the socket files and their directories (its own temporary state dir only), then
 * connects as uid 65534 (setpriv) and as itself.
 */
import { chmod, readFile, stat } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { bareVm } from './fixture.js';
import { join, startUp, upFixture, vm, waitFor } from './harness.js';

/** One HTTP GET /healthz over a unix socket, as `uid` (or as this process); prints the answer or CLOSED. */
async function healthzAs(socket: string, uid?: number): Promise<string> {
  const client = `const s=require('net').connect(${JSON.stringify(socket)});let t='';s.on('data',b=>t+=b);s.on('error',e=>{process.stdout.write('CLOSED '+e.code);process.exit(0)});s.on('close',()=>{process.stdout.write(t||'CLOSED');process.exit(0)});s.write('GET /healthz HTTP/1.0\\r\\n\\r\\n');`;
  const argv = uid === undefined ? ['/usr/bin/node', '-e', client] : ['/usr/bin/setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', '/usr/bin/node', '-e', client];
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, cwd: '/', env: { PATH: '/usr/bin:/bin' }, timeout: 20_000 });
  return `${r.stdout}${r.stderr}`;
}

/** Lets others traverse every directory from `root` down to `file`'s, and open `file` (test only). */
async function relax(root: string, file: string): Promise<void> {
  let d = dirname(file);
  const dirs: string[] = [];
  while (relative(root, d) !== '' && !relative(root, d).startsWith('..')) {
    dirs.push(d);
    d = dirname(d);
  }
  for (const x of [root, ...dirs]) await chmod(x, (await stat(x)).mode | 0o011);
  await chmod(file, 0o666);
}

describe('peer checks on virtops sockets (SO_PEERCRED)', () => {
  const f = upFixture();

  beforeAll(async () => {
    await f.git.commitVms([bareVm('alpha')], 'alpha');
    f.up = await startUp(['--repo', f.git.bare, '--libvirt-uri', 'test:///default', '--interval', '2s'], f.stateDir);
  }, 120_000);

  it('up.sock and the launcher socket answer their owner and refuse uid 65534, logging it', async () => {
    const v = await waitFor('alpha Running', async () => {
      const x = await vm(f.up!.server, 'alpha');
      return x?.status?.printableStatus === 'Running' && x.instance ? x : undefined;
    });
    const upSock = join(f.stateDir, 'up.sock');
    const launcherSock = v.instance!.socket;
    for (const s of [upSock, launcherSock]) await relax(f.stateDir, s);

    for (const s of [upSock, launcherSock]) {
      expect(await healthzAs(s), s).toMatch(/^HTTP\/1\.1 200/);
      const stranger = await healthzAs(s, 65534);
      expect(stranger, s).not.toMatch(/HTTP\//);
      expect(stranger, s).toMatch(/CLOSED/);
    }
    await waitFor('up logs the refusal', () => /refused a connection to .*up\.sock: uid 65534/.test(f.up!.logText()), 10_000);
    await waitFor('the launcher logs the refusal', async () => /refused a connection to .*uid 65534/.test(await readFile(v.instance!.launcherLog, 'utf8')), 10_000);
    // Still serving its owner afterwards.
    expect(await healthzAs(upSock)).toMatch(/^HTTP\/1\.1 200/);
  }, 120_000);
});
