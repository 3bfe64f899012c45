/**
 * The long-lived worker of `virtops synth --watch` (synth/watch.ts forks it with tsx): the
 * only process that runs the app's code. Each request imports the app's entry module again
 * (synth/watch-hooks.mjs gives every module under the watched directories a new URL per
 * generation, so the app's own code is evaluated afresh), which synthesizes into the request's
 * staging directory; then validates what it wrote, reusing the verdicts of files whose text
 * did not change, and answers with a hash per file. Warm, it skips what dominates a cold
 * `virtops synth`: process and tsx start-up, loading cdk8s and the DSL, compiling the
 * schema, and serializing unchanged documents to YAML (VirtopsApp reads the YAML cache).
 *
 *   node --import tsx synth/watch-worker.ts <entry> <roots as JSON> <app command>
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { validateOutput, type ValidationCache } from './run.js';
import { VALIDATED_REPORT_ENV } from './validated-report.js';
import { YAML_CACHE_KEY, type WatchReply, type WatchRequest, type YamlCache } from './watch-protocol.js';

const [entry, rootsJson, app] = process.argv.slice(2);
if (!entry || !rootsJson || !app || !process.send) {
  process.stderr.write('usage: (forked with IPC) watch-worker <entry> <roots JSON> <app command>\n');
  process.exit(2);
}
register(new URL('./watch-hooks.mjs', import.meta.url), { data: { roots: JSON.parse(rootsJson) as string[] } });
(globalThis as Record<symbol, YamlCache>)[YAML_CACHE_KEY] = new Map();
const verdicts: ValidationCache = new Map();
/** Output file → [text, sha256] of the last run, so unchanged files are not hashed again. */
const hashes = new Map<string, [string, string]>();

const send = (reply: WatchReply): void => {
  process.send!(reply);
};

async function synthesize(req: WatchRequest): Promise<WatchReply> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const cpuMs = (): number => {
    const c = process.cpuUsage(cpu0);
    return (c.user + c.system) / 1000;
  };
  const report = `${req.staging}.validated.json`;
  process.env.CDK8S_OUTDIR = req.staging;
  process.env[VALIDATED_REPORT_ENV] = report;
  const url = pathToFileURL(entry!);
  url.searchParams.set('virtops-generation', String(req.generation));
  const base = { type: 'result' as const, generation: req.generation };
  try {
    try {
      await import(url.href);
    } catch (err) {
      return { ...base, error: `the app '${app}' failed:\n${describeFailure(err)}`, rss: process.memoryUsage().rss, appMs: performance.now() - t0, validateMs: 0, cpuMs: cpuMs() };
    }
    const t1 = performance.now();
    try {
      const { files, objects, texts } = await validateOutput(req.staging, app!, report, verdicts);
      const out: Record<string, string> = {};
      for (const file of files) {
        const text = texts.get(file);
        const known = hashes.get(file);
        if (text !== undefined && known?.[0] === text) {
          out[file] = known[1];
          continue;
        }
        const content = text ?? (await fs.readFile(path.join(req.staging, file)));
        const hash = createHash('sha256').update(content).digest('hex');
        if (text !== undefined) hashes.set(file, [text, hash]);
        out[file] = hash;
      }
      for (const file of hashes.keys()) if (!(file in out)) hashes.delete(file);
      return { ...base, files: out, objects, rss: process.memoryUsage().rss, appMs: t1 - t0, validateMs: performance.now() - t1, cpuMs: cpuMs() };
    } catch (err) {
      return { ...base, error: (err as Error).message, rss: process.memoryUsage().rss, appMs: t1 - t0, validateMs: performance.now() - t1, cpuMs: cpuMs() };
    }
  } finally {
    await fs.rm(report, { force: true });
  }
}

/**
 * An app failure as `virtops synth` shows it: cdk8s' validation errors (each naming the
 * construct path and the field) alone; anything else with the stack frames outside
 * node_modules and Node's internals, which point into the app.
 */
function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message.startsWith('Validation failed') || !err.stack) return err.message;
  const frames = err.stack.split('\n').slice(1).filter((l) => !/node_modules|node:internal|watch-worker/.test(l)).slice(0, 8);
  return [`${err.name}: ${err.message}`, ...frames].join('\n');
}

// One request at a time (the parent never sends two at once; chain them anyway).
let queue: Promise<void> = Promise.resolve();
process.on('message', (req: WatchRequest) => {
  if (req?.type !== 'synth') return;
  queue = queue.then(async () => send(await synthesize(req)));
});
// The parent is gone: nothing left to do.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
