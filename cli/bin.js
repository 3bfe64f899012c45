#!/usr/bin/env node
// Entry point for the `virtops` command: runs the TypeScript CLI through tsx so the
// repository needs no separate build step.
//
// Fast path: `launcher` and `launcher-monitor` run once per VM, so they run a prebuilt
// JavaScript bundle of just the launcher (scripts/build-bundles.mjs; rebuilt on demand
// whenever its sources change) instead of tsx + the full CLI: ~4x less memory per VM and
// a faster start. VIRTOPS_NO_BUNDLE=1 forces the tsx path (debugging with source maps).
const command = process.argv[2];
if ((command === 'launcher' || command === 'launcher-monitor') && !process.env.VIRTOPS_NO_BUNDLE) {
  const { launcherBundle, touch } = await import('../scripts/build-bundles.mjs');
  const bundle = await launcherBundle();
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
