import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  binariesPresent,
  defaultBinDir,
  goAvailable,
  killControlPlaneOnExit,
  readControlPlane,
  stopControlPlane,
} from '../../../reconciler/cluster/testenv/index.js';

/**
 * One real control plane for the whole `cluster` project, started by the first test file that
 * asks for it (testenv-fixture.ts) and stopped here at the end. Vitest runs every project's
 * global setup before the first test of any project, so building or starting the control plane
 * here would hold up the unit and integration projects; started lazily, the cold Go build that
 * `npm test` runs in the background (scripts/test.sh) overlaps them instead. This setup only
 * reserves the state dir and hands it to the files through `inject('clusterTestenv')`.
 * Without Go (and no prebuilt binaries) the tests skip loudly, except under CI=true.
 */
export default function setup(project: TestProject): (() => Promise<void>) | undefined {
  if (!binariesPresent() && !goAvailable()) {
    const why = `Go is not installed and ${defaultBinDir()} holds no kube/etcd binaries`;
    if (process.env.CI === 'true') throw new Error(`cluster tests must run in CI but cannot: ${why}`);
    const banner = '!'.repeat(100);
    process.stderr.write(`\n${banner}\n!!! SKIPPING ALL CLUSTER TESTS: ${why}.\n!!! Install Go >= 1.26 and run: npx tsx cli/main.ts testenv build\n${banner}\n\n`);
    project.provide('clusterTestenv', { skipReason: why });
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'virtops-testenv-'));
  // The worker that starts it is gone by the end; this process's exit takes it down.
  killControlPlaneOnExit(dir);
  project.provide('clusterTestenv', { dir });
  return async () => {
    if (readControlPlane(dir)) await stopControlPlane(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}
