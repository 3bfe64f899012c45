import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chart } from 'cdk8s';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtopsApp } from '../../../synth/app.js';
import { appEntry, isRelevantChange, planWrites } from '../../../synth/watch-plan.js';
import { YAML_CACHE_KEY, type YamlCache } from '../../../synth/watch-protocol.js';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '../../../dsl/index.js';

describe('appEntry (which apps the synth --watch worker can load)', () => {
  const esm = () => 'module';
  it('takes the module of `[npx] tsx|node <file>`, resolved against the project', () => {
    expect(appEntry('npx tsx vms/main.ts', '/p', esm)).toBe('/p/vms/main.ts');
    expect(appEntry('npx --yes tsx vms/main.ts', '/p', esm)).toBe('/p/vms/main.ts');
    expect(appEntry('  tsx   /abs/app.mts ', '/p', () => undefined)).toBe('/abs/app.mts');
    expect(appEntry('node_modules/.bin/tsx main.ts', '/p', esm)).toBe('/p/main.ts');
    expect(appEntry('node dist-app/main.mjs', '/p', () => undefined)).toBe('/p/dist-app/main.mjs');
  });
  it('refuses what a worker could not reproduce exactly (the watch then runs the command per change)', () => {
    expect(appEntry('npx tsx vms/main.ts && echo done', '/p', esm)).toBeUndefined();
    expect(appEntry('npx tsx --tsconfig x.json vms/main.ts', '/p', esm)).toBeUndefined();
    expect(appEntry('npx tsx vms/main.ts extra-arg', '/p', esm)).toBeUndefined();
    expect(appEntry('FOO=1 tsx vms/main.ts', '/p', esm)).toBeUndefined();
    expect(appEntry('python3 app.py', '/p', esm)).toBeUndefined();
    expect(appEntry('npx ts-node main.cts', '/p', esm)).toBeUndefined();
    // .ts in a CommonJS package: tsx would require() its imports, which no module hook can reload.
    expect(appEntry('npx tsx vms/main.ts', '/p', () => 'commonjs')).toBeUndefined();
  });
});

describe('planWrites', () => {
  it('writes new and changed files, removes files no longer emitted, leaves the rest', () => {
    const current = new Map([['a.k8s.yaml', '1'], ['b.k8s.yaml', '2'], ['gone.k8s.yaml', '3']]);
    const emitted = new Map([['a.k8s.yaml', '1'], ['b.k8s.yaml', '2x'], ['new.k8s.yaml', '4']]);
    expect(planWrites(emitted, current)).toEqual({ write: ['b.k8s.yaml', 'new.k8s.yaml'], remove: ['gone.k8s.yaml'], unchanged: 1 });
  });
  it('an empty output directory gets everything; the same content gets nothing', () => {
    const emitted = new Map([['a', 'h']]);
    expect(planWrites(emitted, new Map())).toEqual({ write: ['a'], remove: [], unchanged: 0 });
    expect(planWrites(emitted, new Map(emitted))).toEqual({ write: [], remove: [], unchanged: 1 });
  });
});

describe('isRelevantChange', () => {
  it('ignores the output directory, staging dirs beside it, node_modules and dot paths', () => {
    expect(isRelevantChange('/p/vms/web.ts', '/p', '/p/dist')).toBe(true);
    expect(isRelevantChange('/p/dist/web.k8s.yaml', '/p', '/p/dist')).toBe(false);
    expect(isRelevantChange('/p/.dist.watch-abc/web.k8s.yaml', '/p', '/p/dist')).toBe(false);
    expect(isRelevantChange('/p/.dist.watch-abc', '/p', '/p/dist')).toBe(false);
    expect(isRelevantChange('/p/vms/node_modules/x/index.js', '/p', '/p/dist')).toBe(false);
    expect(isRelevantChange('/p/vms/.web.ts.swp', '/p', '/p/dist')).toBe(false);
    // A dot-directory above the project does not hide it.
    expect(isRelevantChange('/home/u/.work/p/vms/web.ts', '/home/u/.work/p', '/home/u/.work/p/dist')).toBe(true);
  });
});

describe('VirtopsApp with the watch worker\'s YAML cache', () => {
  const dirs: string[] = [];
  afterEach(() => {
    delete (globalThis as Record<symbol, unknown>)[YAML_CACHE_KEY];
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const synth = (memory: number): Map<string, string> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-yaml-cache-'));
    dirs.push(dir);
    const app = new VirtopsApp({ outdir: dir });
    for (const c of ['a', 'b']) {
      const chart = new Chart(app, c, { namespace: 'lab' });
      for (let i = 0; i < 3; i++) {
        const name = `${c}-vm-${i}`;
        const vm = new VirtualMachine(chart, name, { name, memory: { guest: Size.mebibytes(c === 'a' && i === 1 ? memory : 256) } });
        vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
        vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromCloudConfig(new CloudConfig({ hostname: name })) }));
      }
    }
    app.synth();
    return new Map(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
  };

  it('writes byte for byte what plain cdk8s writes, on a miss and on a hit, and keeps only the last run', () => {
    const plain512 = synth(512);
    const plain768 = synth(768);
    const cache: YamlCache = new Map();
    (globalThis as Record<symbol, unknown>)[YAML_CACHE_KEY] = cache;
    expect(synth(512)).toEqual(plain512); // all misses
    const entries = cache.size;
    expect(entries).toBeGreaterThan(12);
    expect(synth(512)).toEqual(plain512); // all hits
    expect(synth(768)).toEqual(plain768); // one VM and its Pod changed
    expect(cache.size).toBe(entries);
    expect(plain768.get('b.k8s.yaml')).toBe(plain512.get('b.k8s.yaml'));
    expect(plain768.get('a.k8s.yaml')).not.toBe(plain512.get('a.k8s.yaml'));
  });
});
