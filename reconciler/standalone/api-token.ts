/**
 * The bearer token of the TCP control API: 32 random bytes, generated into the state dir on
 * the first start that asks for TCP and kept (so clients configured with it keep working).
 * Written to a 0600 temp file and linked into place (no window where it is wider or partial,
 * and two starts cannot both win); a token file others can read is refused, not trusted.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TOKEN_FILE_NAME } from './client.js';

export function tokenPath(stateDir: string): string {
  return join(stateDir, TOKEN_FILE_NAME);
}

export async function loadOrCreateToken(stateDir: string): Promise<{ token: string; path: string; created: boolean }> {
  const path = tokenPath(stateDir);
  let created = false;
  if (!(await stat(path).catch(() => undefined))) {
    const tmp = `${path}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${randomBytes(32).toString('base64url')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await rm(tmp, { force: true });
    }
  }
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`${path} is readable or writable by others (mode ${(st.mode & 0o777).toString(8)}): the token may have leaked; delete it (a new one is generated) or chmod 600 it`);
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new Error(`${path} belongs to uid ${st.uid}, not to this process (uid ${process.getuid()}): delete it so a new token is generated`);
  }
  const token = (await readFile(path, 'utf8')).trim();
  if (token.length < 32) throw new Error(`${path} holds no usable token (under 32 characters): delete it so a new one is generated`);
  return { token, path, created };
}
