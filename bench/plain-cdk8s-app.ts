/**
 * The baseline of the synth benchmarks (bench/synth.ts, bench/synth-watch.ts): a plain cdk8s
 * app that emits the same objects, file per chart, with no DSL and no validation. One owner,
 * so both benchmarks compare against the same thing.
 */
export const plainApp = `
import fs from 'node:fs';
import { ApiObject, App, Chart, YamlOutputType } from 'cdk8s';
const files: Record<string, Record<string, unknown>[]> = JSON.parse(fs.readFileSync('objects.json', 'utf8'));
const app = new App({ yamlOutputType: YamlOutputType.FILE_PER_CHART });
for (const [file, objects] of Object.entries(files)) {
  const chart = new Chart(app, file.replace('.k8s.yaml', ''));
  objects.forEach((o, i) => new ApiObject(chart, String(i), o as any));
}
app.synth();
`;
