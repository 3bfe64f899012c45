/** Worker side of WorkerValidator: validateManifest on request. */
import { parentPort } from 'node:worker_threads';
import { validateManifest } from '../api/validate.js';

parentPort!.on('message', (m: { id: number; obj: unknown }) => {
  try {
    parentPort!.postMessage({ id: m.id, issues: validateManifest(m.obj) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
