#!/usr/bin/env node
// Benchmarks only: `up` with the pool runtime, and the pool's host process (bench/pool-entry.ts).
// Runs the `bench-pool` bundle (scripts/build-bundles.mjs; rebuilt when its sources change,
// as cli/bin.js does for the product's bundles); VIRTOPS_NO_BUNDLE=1 runs the sources through tsx.
import { setFlagsFromString } from 'node:v8';

// As cli/bin.js for the product's long-lived commands, so `up` and `agent` here measure as theirs.
if (['up', 'agent'].includes(process.argv[2] ?? '')) {
  const flags = process.env.VIRTOPS_V8_FLAGS ?? '--optimize-for-size';
  if (flags) setFlagsFromString(flags);
}

if (!process.env.VIRTOPS_NO_BUNDLE) {
  const { benchPoolBundle } = await import('../scripts/build-bundles.mjs');
  const bundle = await benchPoolBundle();
  if (bundle) await import(bundle.entry);
  else await viaTsx();
} else {
  await viaTsx();
}

async function viaTsx() {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./pool-entry.ts');
}
