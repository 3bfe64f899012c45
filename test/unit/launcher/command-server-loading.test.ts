/**
 * The command socket listens before the launcher is loaded (launcher/main.ts): /healthz
 * answers at once, the other endpoints wait for the launcher, and a launcher that failed to
 * load makes them answer 500 with the reason. A real unix socket; the launcher is a stand-in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCommandServer, type CommandServer } from '../../../launcher/server/server.js';
import { callLauncher } from '../../../launcher/server/client.js';
import type { Launcher } from '../../../launcher/launcher.js';

const quiet = { warn: () => undefined };
let server: CommandServer | undefined;
let dir: string | undefined;

afterEach(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  server = dir = undefined;
});

/** `launcher()` is called right before the server starts, as launcher/main.ts passes its promise. */
async function serve(launcher: () => Promise<Launcher>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'vo-cmd-server-'));
  server = await startCommandServer(launcher(), join(dir, 'sockets', 'launcher-sock'), quiet);
  return server.socketPath;
}

describe('startCommandServer with a launcher still loading', () => {
  it('answers /healthz at once and /v1/info once the launcher is there', async () => {
    let loaded!: (l: Launcher) => void;
    const socket = await serve(() => new Promise<Launcher>((resolve) => (loaded = resolve)));
    expect((await callLauncher(socket, 'GET', '/healthz', undefined, 2000)).status).toBe(200);
    let answered = false;
    const info = callLauncher(socket, 'GET', '/v1/info', undefined, 5000).then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 100));
    expect(answered, '/v1/info answered before the launcher was loaded').toBe(false);
    loaded({ info: async () => ({ state: 'Absent' }) } as unknown as Launcher);
    expect(await info).toMatchObject({ status: 200, body: { state: 'Absent' } });
  });

  it('answers 500 with the reason when the launcher failed to load; /healthz still answers', async () => {
    const socket = await serve(() => Promise.reject(new Error('cannot load the launcher: chunk missing')));
    expect(await callLauncher(socket, 'POST', '/v1/kill', undefined, 2000)).toMatchObject({ status: 500, body: { error: 'cannot load the launcher: chunk missing' } });
    expect((await callLauncher(socket, 'GET', '/healthz', undefined, 2000)).status).toBe(200);
  });
});
