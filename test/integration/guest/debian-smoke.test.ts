/**
 * The seed's smoke VM on this offline machine: `vms/smoke-debian.ts` (the seed's spec with the
 * Debian containerDisk), exactly as `npm run synth` wrote it to dist/, pushed to git with one
 * documented substitution (the image's registry host: the test's registry listens on a free
 * port, not 127.0.0.1:5000). Its user-data comes from the Secret `smoke-debian-cloudinit`
 * (single host: files under up's state dir) and sets the seed's user `fedora` with a password
 * hash. The real `virtops up` boots it (qemu:///system, TCG); then a login on its serial
 * console with that password is accepted, and `lsblk` in the guest shows the 2Gi emptyDisk.
 * Boot time is not asserted.
 */
import { readFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushDebianGuestImage, writeLocalSecret } from '../../helpers/debian-guest.js';
import { startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { SMOKE_DEBIAN_IMAGE } from '../../../vms/smoke-debian.js';
import { gitFixture, type GitFixture } from '../standalone/fixture.js';
import { REPO } from '../launcher/harness.js';
import { makeStateDir, vm as vmView, waitFor, type UpProcess } from '../standalone/harness.js';
import { startDebianUp, tearDownDebianUp, virsh } from './debian-up.js';

const NAME = 'smoke-debian';
const DOMAIN = `default_${NAME}`;
const PASSWORD = 'changeme';

let registry: LocalRegistry;
let git: GitFixture;
let stateDir: string;
let up: UpProcess | undefined;

beforeAll(async () => {
  if ((await virsh('domstate', DOMAIN)).exitCode === 0) throw new Error(`a domain ${DOMAIN} exists already on this host: remove it first`);
  registry = await startRegistry();
  const image = await pushDebianGuestImage(registry);
  git = await gitFixture();
  stateDir = await makeStateDir();
  const hash = (await execa('openssl', ['passwd', '-6', PASSWORD])).stdout.trim();
  await writeLocalSecret(stateDir, 'default', 'smoke-debian-cloudinit', {
    userdata: ['#cloud-config', `user: {name: fedora, lock_passwd: false, passwd: ${JSON.stringify(hash)}}`, 'ssh_pwauth: true', ''].join('\n'),
  });
  const dist = await readFile(join(REPO, 'dist', 'smoke-debian.k8s.yaml'), 'utf8');
  expect(dist).toContain(SMOKE_DEBIAN_IMAGE);
  await git.commitDist({ 'smoke-debian.k8s.yaml': dist.replaceAll(SMOKE_DEBIAN_IMAGE, image) }, 'the smoke VM on Debian');
  up = await startDebianUp(git.bare, registry, stateDir);
}, 1_800_000);

afterAll(async () => {
  await tearDownDebianUp({ up, stateDir, domain: DOMAIN, git, registry });
}, 240_000);

/** A serial console session: what arrived so far, and a wait for a pattern after a mark. */
class Console {
  text = '';
  private constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => (this.text += b.toString('utf8')));
  }

  static open(path: string): Promise<Console> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new Console(s)));
      s.once('error', reject);
    });
  }

  send(line: string): void {
    this.socket.write(`${line}\r`);
  }

  /** Waits for `re` in what arrives after `from`, pressing Enter every `nudgeMs` when given. */
  async expect(re: RegExp, from: number, timeoutMs: number, nudgeMs?: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let lastNudge = Date.now();
    for (;;) {
      const hit = re.exec(this.text.slice(from));
      if (hit) return hit[0];
      if (Date.now() > deadline) throw new Error(`console: no ${re} within ${timeoutMs} ms; last output:\n${this.text.slice(-800)}`);
      if (nudgeMs && Date.now() - lastNudge > nudgeMs) {
        lastNudge = Date.now();
        this.send('');
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('the seed\'s smoke VM with the Debian containerDisk', () => {
  let consolePath: string;

  it('boots from git', async () => {
    const v = await waitFor('Running', async () => {
      const x = await vmView(up!.server, NAME);
      return x?.status?.printableStatus === 'Running' && x.instance ? x : undefined;
    }, 300_000, 500);
    consolePath = v.instance!.console;
  }, 360_000);

  it('accepts the password from the Secret on the serial console, and lsblk shows the 2Gi emptyDisk', async () => {
    const c = await Console.open(consolePath);
    try {
      // cloud-init sets the password late in boot: try the login until it is accepted.
      let loggedIn = false;
      for (let attempt = 0; attempt < 40 && !loggedIn; attempt++) {
        let mark = c.text.length;
        await c.expect(/login: *$/, mark, 900_000, 5000);
        mark = c.text.length;
        c.send('fedora');
        await c.expect(/Password: *$/, mark, 60_000);
        mark = c.text.length;
        c.send(PASSWORD);
        const answer = await c.expect(/(\$ *$)|(Login incorrect)/m, mark, 120_000);
        loggedIn = answer.includes('$');
        if (!loggedIn) await new Promise((r) => setTimeout(r, 5000));
      }
      expect(loggedIn).toBe(true);
      const mark = c.text.length;
      c.send('lsblk -dn -o NAME,SIZE,TYPE; echo SMOKE-$((40+2))');
      await c.expect(/SMOKE-42/, mark, 60_000);
      const out = c.text.slice(mark);
      expect(out).toMatch(/vd[a-z]\s+2G\s+disk/);
      c.send('exit');
    } finally {
      c.socket.destroy();
    }
  }, 1_200_000);
});
