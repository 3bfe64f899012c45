#!/usr/bin/env node
// Entry point for the `virtops` command: runs the TypeScript CLI through tsx so the
// repository needs no separate build step.
//
// Fast paths run prebuilt JavaScript bundles (scripts/build-bundles.mjs; rebuilt on demand
// whenever their sources change) instead of tsx + the full CLI, for less memory and a
// faster start:
// - `launcher` and `launcher-monitor` run once per VM: ~4x less memory per VM;
// - `up`, `controller` and `agent` are long-lived: tsx's loader and the other commands'
//   modules would stay resident for their whole life.
// VIRTOPS_NO_BUNDLE=1 forces the tsx path (debugging with source maps).
const BUNDLED = {
  launcher: 'launcher',
  'launcher-monitor': 'launcher',
  up: 'reconciler',
  controller: 'reconciler',
  agent: 'reconciler',
};

const name = Object.hasOwn(BUNDLED, process.argv[2] ?? '') ? BUNDLED[process.argv[2]] : undefined;
if (name && !process.env.VIRTOPS_NO_BUNDLE) {
  const { launcherBundle, reconcilerBundle, touch } = await import('../scripts/build-bundles.mjs');
  const bundle = await (name === 'launcher' ? launcherBundle() : reconcilerBundle());
  if (bundle) {
    // Keeps this bundle's directory from being pruned while this process may still load
    // lazy chunks from it (the monitor loads its cleanup code only after a crash).
    setInterval(() => touch(bundle.dir), 6 * 3600 * 1000).unref();
    await import(bundle.entry);
  } else {
    await runFullCli();
  }
} else {
  await runFullCli();
}

async function runFullCli() {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
