/**
 * `virtops synth --watch` through the real CLI on a real temp project (three chart modules
 * under vms/, the DSL from this checkout): the first synthesis writes everything; an edit of
 * one VM rewrites only its chart's file (the others keep their mtime); an invalid edit writes
 * nothing and prints the error naming the field, and the watch goes on; the fix is written;
 * output files deleted, edited or added behind its back are put right at the next synthesis.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(REPO, 'cli/bin.js');
const CHARTS = ['alpha', 'beta', 'gamma'];

const chartModule = (id: string, memory = 256, name = `${id}-vm`): string => `
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { Size, VirtualMachine, Volume } from '${REPO}/dsl/index.ts';
export class ${id[0]!.toUpperCase()}${id.slice(1)} extends Chart {
  constructor(scope: Construct) {
    super(scope, '${id}', { namespace: 'lab' });
    const vm = new VirtualMachine(this, 'vm', { name: '${name}', memory: { guest: Size.mebibytes(${memory}) } });
    vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
  }
}
`;

let tmp: string;
let dist: string;
let cli: ResultPromise | undefined;
let output = '';

const mtimes = (): Record<string, number> => Object.fromEntries(fs.readdirSync(dist).sort().map((f) => [f, fs.statSync(path.join(dist, f)).mtimeMs]));

/** Waits until the CLI has printed `synth #n`, and returns what it printed for it. */
async function waitForSynth(n: number, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const marker = `synth #${n} `;
  while (Date.now() < deadline) {
    const at = output.indexOf(marker);
    if (at >= 0) {
      const next = output.indexOf(`synth #${n + 1} `, at);
      // Let the error's lines arrive too.
      await new Promise((r) => setTimeout(r, 200));
      return output.slice(at, next < 0 ? undefined : next);
    }
    if (cli?.exitCode !== undefined && cli.exitCode !== null) throw new Error(`synth --watch exited: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no 'synth #${n}' within ${timeoutMs} ms; output so far:\n${output}`);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-synth-watch-'));
  dist = path.join(tmp, 'dist');
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(tmp, 'node_modules'));
  fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'watch-test', private: true, type: 'module' }));
  fs.writeFileSync(path.join(tmp, 'cdk8s.yaml'), 'app: npx tsx vms/main.ts\noutput: dist\n');
  fs.mkdirSync(path.join(tmp, 'vms'));
  for (const id of CHARTS) fs.writeFileSync(path.join(tmp, 'vms', `${id}.ts`), chartModule(id));
  fs.writeFileSync(path.join(tmp, 'vms', 'main.ts'), [
    `import { VirtopsApp } from '${REPO}/synth/app.ts';`,
    ...CHARTS.map((id) => `import { ${id[0]!.toUpperCase()}${id.slice(1)} } from './${id}.js';`),
    'const app = new VirtopsApp();',
    ...CHARTS.map((id) => `new ${id[0]!.toUpperCase()}${id.slice(1)}(app);`),
    'app.synth();',
  ].join('\n'));
  cli = execa(process.execPath, [BIN, 'synth', '--watch'], { cwd: tmp, all: true, reject: false, buffer: false });
  cli.all!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
}, 60_000);

afterAll(async () => {
  if (cli && cli.exitCode === null) {
    cli.kill('SIGTERM');
    await cli;
  }
  // The worker leaves with its parent (IPC disconnect): nothing of ours may be left running.
  const left = await execa('pgrep', ['-f', `watch-worker.*${tmp}`], { reject: false });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  expect(left.stdout.trim(), 'synth --watch worker still running').toBe('');
}, 30_000);

describe('virtops synth --watch', () => {
  it('synthesizes everything at start, in worker mode', async () => {
    const first = await waitForSynth(1);
    expect(output).toContain('worker mode');
    expect(first).toContain('wrote');
    expect(fs.readdirSync(dist).sort()).toEqual(['alpha.k8s.yaml', 'beta.k8s.yaml', 'crds.k8s.yaml', 'gamma.k8s.yaml', 'install.k8s.yaml']);
  });

  it('an edit of one VM rewrites only its chart\'s file', async () => {
    const before = mtimes();
    await new Promise((r) => setTimeout(r, 20)); // mtimes must be able to differ
    fs.writeFileSync(path.join(tmp, 'vms', 'beta.ts'), chartModule('beta', 384));
    const update = await waitForSynth(2);
    expect(update).toContain('wrote beta.k8s.yaml');
    expect(update).not.toContain('failed');
    const after = mtimes();
    for (const f of Object.keys(before)) {
      if (f === 'beta.k8s.yaml') expect(after[f]).toBeGreaterThan(before[f]!);
      else expect(after[f], f).toBe(before[f]);
    }
    expect(fs.readFileSync(path.join(dist, 'beta.k8s.yaml'), 'utf8')).toContain('guest: 384Mi');
  });

  it('an invalid edit writes nothing, prints the error naming the field, and the watch goes on; the fix is written', async () => {
    const before = mtimes();
    const contentBefore = fs.readFileSync(path.join(dist, 'gamma.k8s.yaml'), 'utf8');
    fs.writeFileSync(path.join(tmp, 'vms', 'gamma.ts'), chartModule('gamma', 256, 'Gamma_VM'));
    const failed = await waitForSynth(3);
    expect(failed).toContain('failed');
    expect(failed).toContain('nothing was written');
    expect(failed).toContain('metadata.name: "Gamma_VM"');
    expect(failed).toContain('Gamma_VM');
    expect(mtimes()).toEqual(before);
    expect(fs.readFileSync(path.join(dist, 'gamma.k8s.yaml'), 'utf8')).toBe(contentBefore);

    fs.writeFileSync(path.join(tmp, 'vms', 'gamma.ts'), chartModule('gamma', 512, 'gamma-vm'));
    const fixed = await waitForSynth(4);
    expect(fixed).toContain('wrote gamma.k8s.yaml');
    expect(fs.readFileSync(path.join(dist, 'gamma.k8s.yaml'), 'utf8')).toContain('guest: 512Mi');
    const after = mtimes();
    expect(after['alpha.k8s.yaml']).toBe(before['alpha.k8s.yaml']);
    expect(after['beta.k8s.yaml']).toBe(before['beta.k8s.yaml']);
  });

  it('restores output files deleted or edited behind its back at the next synthesis', async () => {
    const crds = fs.readFileSync(path.join(dist, 'crds.k8s.yaml'), 'utf8');
    const install = fs.readFileSync(path.join(dist, 'install.k8s.yaml'), 'utf8');
    fs.rmSync(path.join(dist, 'crds.k8s.yaml'));
    fs.appendFileSync(path.join(dist, 'install.k8s.yaml'), '# a local edit\n');
    fs.writeFileSync(path.join(dist, 'stray.k8s.yaml'), 'kind: Stray\n');
    fs.writeFileSync(path.join(tmp, 'vms', 'alpha.ts'), chartModule('alpha', 320));
    const update = await waitForSynth(5);
    expect(update).toContain('wrote alpha.k8s.yaml, crds.k8s.yaml, install.k8s.yaml; removed stray.k8s.yaml');
    expect(fs.readFileSync(path.join(dist, 'crds.k8s.yaml'), 'utf8')).toBe(crds);
    expect(fs.readFileSync(path.join(dist, 'install.k8s.yaml'), 'utf8')).toBe(install);
    expect(fs.existsSync(path.join(dist, 'stray.k8s.yaml'))).toBe(false);
  });
});
