/** Worker side of PrepareWorker (prepare.ts): validation and conversion on request. */
import { parentPort } from 'node:worker_threads';
import type { PrepareRequest, PrepareReply } from './prepare.js';
import { serializeError } from './prepare.js';

// Both load as soon as the worker starts (it is warmed before the sync needs them), the
// converter only once the validator is loaded: compiling the schema is the long pole of
// the first sync, so it does not share this thread with parsing the XML library.
const validator = import('../api/validate.js');
const converter = validator.then(
  () => import('./convert/index.js'),
  () => import('./convert/index.js'),
);
converter.catch(() => undefined);

parentPort!.on('message', (m: PrepareRequest) => {
  void handle(m).then(
    (result) => parentPort!.postMessage({ id: m.id, result } satisfies PrepareReply),
    (err: unknown) => parentPort!.postMessage({ id: m.id, error: serializeError(err) } satisfies PrepareReply),
  );
});

async function handle(m: PrepareRequest): Promise<unknown> {
  if (m.op === 'validate') return (await validator).validateManifest(m.obj);
  return (await converter).convertVmi(m.vmi, m.ctx);
}
