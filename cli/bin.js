#!/usr/bin/env node
// Entry point for the `virtops` command. Two layouts:
//
// - This checkout (cli/main.ts next to this file): the TypeScript CLI runs through tsx, so
//   the repository needs no build step. Long-lived processes run from esbuild bundles
//   (scripts/build-bundles.mjs; rebuilt on demand whenever their sources change) instead of
//   tsx + the full CLI, for less memory and a faster start:
//   - `launcher-monitor` (and `launcher`) runs once per VM: ~4x less memory per VM;
//   - `up`, `controller` and `agent` are long-lived: tsx's loader and the other commands'
//     modules would stay resident for their whole life.
//   VIRTOPS_NO_BUNDLE=1 forces the tsx path (debugging with source maps).
// - The installed package (`npm pack`: no .ts sources): the same bundles prebuilt at pack
//   time in build/bundles/ (scripts/build-package.mjs), plus a `cli` bundle for every other
//   command (its modules split into chunks loaded when the command runs: a few files
//   instead of ~200 compiled modules). `--version`, `-V` and `version [-o json]` print from
//   build-info.json without loading commander or any command (versionFastPath in
//   cli/commands/version.ts). VIRTOPS_NO_FAST_PATH=1 sends them through the full CLI too
//   (the package test compares both).
import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// The long-lived processes (up, controller, agent) ask V8 to favour memory over speed, before
// any module loads: its old generation then grows by a small factor over the live objects
// instead of up to 4x while they start many VMs (BENCHMARKS.md, "PERF: ... lean controller":
// the controller at 1,000 VMs held ~220 MiB of heap for ~52 MiB of live objects). The cost
// is GC time while VMs change, measured there. Launchers (one per VM) are not affected.
// VIRTOPS_V8_FLAGS replaces the flags ('' keeps V8's defaults).
if (['up', 'controller', 'agent'].includes(process.argv[2] ?? '')) {
  const flags = process.env.VIRTOPS_V8_FLAGS ?? '--optimize-for-size';
  if (flags) setFlagsFromString(flags);
}

const BUNDLED = {
  launcher: 'launcher',
  'launcher-monitor': 'launcher',
  up: 'reconciler',
  controller: 'reconciler',
  agent: 'reconciler',
};

const name = Object.hasOwn(BUNDLED, process.argv[2] ?? '') ? BUNDLED[process.argv[2]] : undefined;
if (!existsSync(new URL('./main.ts', import.meta.url))) {
  // The installed package: this file is cli/bin.js (package.json `bin`), or its copy
  // build/cli/bin.js, which compiled modules locate next to themselves (CLI_BIN).
  const build = new URL(existsSync(new URL('./main.js', import.meta.url)) ? '../' : '../build/', import.meta.url);
  const arg = process.argv[2];
  const versionText = (arg === '--version' || arg === '-V' || arg === 'version') && !process.env.VIRTOPS_NO_FAST_PATH
    ? (await import(new URL('cli/commands/version.js', build).href)).versionFastPath(process.argv.slice(2))
    : undefined;
  if (versionText !== undefined) process.stdout.write(versionText);
  else await import(new URL(`bundles/${name ?? 'cli'}/entry.mjs`, build).href);
} else if (name && !process.env.VIRTOPS_NO_BUNDLE) {
  const { launcherBundle, reconcilerBundle, touch } = await import('../scripts/build-bundles.mjs');
  const bundle = await (name === 'launcher' ? launcherBundle() : reconcilerBundle());
  if (bundle) {
    // Keeps this bundle's directory from being pruned while this process may still load
    // lazy chunks from it (the reconciler's), or write its code cache there (the launcher's).
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
