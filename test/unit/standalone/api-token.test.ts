import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateToken } from '../../../reconciler/standalone/api-token.js';

describe('loadOrCreateToken', () => {
  let dir: string;
  beforeEach(async () => void (dir = await mkdtemp(join(tmpdir(), 'vo-tok-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('generates a 0600 token on first start and keeps it', async () => {
    const a = await loadOrCreateToken(dir);
    expect(a.created).toBe(true);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(a.path)).mode & 0o777).toBe(0o600);
    const b = await loadOrCreateToken(dir);
    expect(b).toEqual({ ...a, created: false });
  });

  it('refuses a token file others can read, and one too short to be a token', async () => {
    const { path } = await loadOrCreateToken(dir);
    await chmod(path, 0o644);
    await expect(loadOrCreateToken(dir)).rejects.toThrow(/readable or writable by others \(mode 644\).*delete it/);
    await writeFile(path, 'short\n', { mode: 0o600 });
    await chmod(path, 0o600);
    await expect(loadOrCreateToken(dir)).rejects.toThrow(/no usable token/);
  });
});
