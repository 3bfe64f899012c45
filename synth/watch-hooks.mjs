/**
 * Module resolution hooks of the `synth --watch` worker (synth/watch-worker.ts registers them
 * with module.register, after tsx's): every module under the watched directories (the app's
 * own code, e.g. vms/) resolves to a URL carrying the current generation, so each synthesis
 * evaluates the app's modules afresh from disk, exactly as a new process would, while
 * everything else (cdk8s, constructs, the virtops DSL, the validator with its compiled
 * schema) stays loaded. Plain JS: hooks run in Node's loader thread, before tsx could help.
 *
 * The generation comes from the entry module's URL (`?virtops-generation=N`, set by the
 * worker); generations run one at a time.
 */
import { fileURLToPath } from 'node:url';

const PARAM = 'virtops-generation';
/** Absolute directory paths, each ending in '/'. */
let roots = [];
let generation = '0';

export async function initialize(data) {
  roots = data.roots.map((r) => (r.endsWith('/') ? r : `${r}/`));
}

function watched(url) {
  if (!url.startsWith('file:')) return false;
  const file = fileURLToPath(url);
  return !file.includes('/node_modules/') && roots.some((r) => file.startsWith(r));
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  if (!watched(result.url)) return result;
  const url = new URL(result.url);
  const asked = url.searchParams.get(PARAM);
  if (asked !== null) generation = asked;
  else url.searchParams.set(PARAM, generation);
  return { ...result, url: url.href };
}
