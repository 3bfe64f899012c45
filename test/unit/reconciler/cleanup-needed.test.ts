import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLauncherArgs, launcherPaths, type LauncherConfig } from '../../../launcher/flags.js';
import { cleanupNeeded } from '../../../reconciler/agent/process-runtime.js';

describe('cleanupNeeded: did a launcher that is gone leave its cleanup undone?', () => {
  let dir: string;
  let config: LauncherConfig;
  let argv: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vo-cleanup-needed-'));
    config = {
      name: 'web', uid: '6f1c2a3b-0000-4000-8000-000000000001', namespace: 'default',
      kubevirtShareDir: join(dir, 'share'), ephemeralDiskDir: join(dir, 'eph'), containerDiskDir: join(dir, 'cd'),
      gracePeriodSeconds: 30, hookSidecars: 0, qemuTimeoutMs: 60_000, emulation: 'tcg',
      libvirtUri: 'qemu:///system', libvirtDaemon: 'external',
      stateDir: join(dir, 'state'), imageStore: join(dir, 'images'), secretsDir: join(dir, 'secrets'), pvcDir: join(dir, 'pvcs'),
      insecureRegistries: [],
    };
    // As the agent records it: the node binary and entry, then the command and its flags.
    argv = ['/usr/bin/node', '/opt/virtops/cli/bin.js', 'launcher-monitor', ...buildLauncherArgs(config)];
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('no socket and no state file: a clean exit, nothing to do', async () => {
    expect(await cleanupNeeded(argv, launcherPaths(config).socket)).toBe(false);
  });

  it('the state file where the launcher keeps it (its --state-dir): cleanup needed', async () => {
    const { stateFile } = launcherPaths(config);
    await mkdir(config.stateDir, { recursive: true });
    await writeFile(stateFile, '{}');
    expect(await cleanupNeeded(argv, launcherPaths(config).socket)).toBe(true);
    await rm(stateFile);
  });

  it('the socket left behind: cleanup needed, whatever the flags', async () => {
    const { socket, socketsDir } = launcherPaths(config);
    await mkdir(socketsDir, { recursive: true });
    await writeFile(socket, '');
    expect(await cleanupNeeded(argv, socket)).toBe(true);
    expect(await cleanupNeeded(['node', 'not-a-launcher'], socket)).toBe(true);
    await rm(socket);
  });

  it('an argv that names no launcher command: nothing of it to clean', async () => {
    expect(await cleanupNeeded(['node', 'not-a-launcher'], join(dir, 'nope'))).toBe(false);
  });
});
