import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readState, writeState } from '../../../launcher/state-file.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('launcher state file: a corrupt one is moved aside, never trusted', () => {
  it.each([
    ['truncated', (good: string) => good.slice(0, good.length >> 1)],
    ['empty', () => ''],
    ['parses but is not a state', () => '{"volumes": 5}'],
    ['null', () => 'null'],
  ])('%s → null, kept as .corrupt-<time>, reported', async (_name, mangle) => {
    dir = await mkdtemp(join(tmpdir(), 'vo-lstate-'));
    const file = join(dir, 'launcher-state.json');
    await writeState(file, { domainName: 'default_web', uid: 'u1', launcherPid: 42 });
    const { readFile } = await import('node:fs/promises');
    await writeFile(file, mangle(await readFile(file, 'utf8')));
    const reported: string[] = [];
    expect(await readState(file, (movedTo) => reported.push(movedTo))).toBeNull();
    const names = await readdir(dir);
    expect(names).not.toContain('launcher-state.json');
    expect(names.filter((n) => n.startsWith('launcher-state.json.corrupt-'))).toHaveLength(1);
    expect(reported).toEqual([join(dir, names.find((n) => n.includes('.corrupt-'))!)]);
  });

  it('a good one and a missing one read as before', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vo-lstate-'));
    const file = join(dir, 'launcher-state.json');
    expect(await readState(file)).toBeNull();
    await writeState(file, { domainName: 'default_web', uid: 'u1', launcherPid: 42 });
    expect(await readState(file)).toMatchObject({ domainName: 'default_web', uid: 'u1' });
  });
});
