import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  binariesPresent,
  defaultBinDir,
  ensureBinaries,
  goAvailable,
  startControlPlane,
  type ControlPlane,
} from '../../../reconciler/cluster/testenv/index.js';
import type { ClusterTestenv } from './testenv-fixture.js';

/**
 * One real control plane for the whole `cluster` project: built once (cached by version),
 * started in a temp dir, handed to test files through `inject('clusterTestenv')`, stopped at
 * the end. Without Go (and no prebuilt binaries) the tests skip loudly, except under CI=true.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (!binariesPresent() && !goAvailable()) {
    const why = `Go is not installed and ${defaultBinDir()} holds no kube/etcd binaries`;
    if (process.env.CI === 'true') throw new Error(`cluster tests must run in CI but cannot: ${why}`);
    const banner = '!'.repeat(100);
    process.stderr.write(`\n${banner}\n!!! SKIPPING ALL CLUSTER TESTS: ${why}.\n!!! Install Go >= 1.26 and run: npx tsx cli/main.ts testenv build\n${banner}\n\n`);
    project.provide('clusterTestenv', { skipReason: why });
    return undefined;
  }
  const started = Date.now();
  await ensureBinaries({ onProgress: (line) => process.stderr.write(`${line}\n`) });
  const dir = mkdtempSync(join(tmpdir(), 'virtops-testenv-'));
  let cp: ControlPlane;
  try {
    cp = await startControlPlane({ dir });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  process.stderr.write(`cluster testenv: ${cp.apiServerUrl} (${cp.kubernetesVersion}) ready in ${Date.now() - started} ms, dir ${dir}\n`);
  const provided: ClusterTestenv = {
    dir,
    kubeconfigPath: cp.kubeconfigPath,
    apiServerUrl: cp.apiServerUrl,
    token: cp.token,
    caFile: cp.caFile,
    kubernetesVersion: cp.kubernetesVersion,
  };
  project.provide('clusterTestenv', provided);
  return async () => {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
