// Worker bootstrap when the launcher runs from TypeScript source (tsx): a worker thread does
// not inherit the main thread's loader hooks, nor take `--import tsx` in its execArgv, so
// it registers tsx itself before loading the TypeScript worker. The bundle needs none of
// this (launcher/bundled.ts picks prepare-worker.mjs there).
import { register } from 'tsx/esm/api';

register();
await import('./prepare-worker.ts');
