/**
 * The on-disk YAML cache of `virtops synth` (synth/yaml-cache.ts, VirtopsApp.synth): the
 * output is byte for byte plain cdk8s' with an empty, a full and a partly stale cache; the
 * cache is really read (a planted entry is served), and a cache from another serializer or a
 * corrupt file is ignored.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chart } from 'cdk8s';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtopsApp } from '../../../synth/app.js';
import { YAML_CACHE_FILE_ENV } from '../../../synth/validated-report.js';
import { yamlCacheFile, yamlCacheKey } from '../../../synth/yaml-cache.js';
import { Size, VirtualMachine, Volume } from '../../../dsl/index.js';

let tmp: string;
let cacheFile: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-yaml-disk-cache-'));
  cacheFile = path.join(tmp, 'cache', 'synth-yaml-test.json');
});
afterEach(() => {
  delete process.env[YAML_CACHE_FILE_ENV];
  fs.rmSync(tmp, { recursive: true, force: true });
});

let runs = 0;
function synth(memory: number, withCache: boolean): Map<string, string> {
  const dir = path.join(tmp, `out-${runs++}`);
  if (withCache) process.env[YAML_CACHE_FILE_ENV] = cacheFile;
  else delete process.env[YAML_CACHE_FILE_ENV];
  const app = new VirtopsApp({ outdir: dir });
  const chart = new Chart(app, 'web', { namespace: 'lab' });
  for (let i = 0; i < 3; i++) {
    const vm = new VirtualMachine(chart, `vm-${i}`, { name: `vm-${i}`, memory: { guest: Size.mebibytes(i === 0 ? memory : 256) } });
    vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
  }
  app.synth();
  return new Map(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
}

describe('virtops synth\'s YAML cache on disk', () => {
  it('writes what plain cdk8s writes with an empty, a full and a partly stale cache', () => {
    const plain512 = synth(512, false);
    const plain768 = synth(768, false);
    expect(fs.existsSync(cacheFile)).toBe(false);
    expect(synth(512, true)).toEqual(plain512);
    expect(fs.existsSync(cacheFile)).toBe(true);
    expect(synth(512, true)).toEqual(plain512);
    expect(synth(768, true)).toEqual(plain768);
    expect(synth(512, true)).toEqual(plain512);
  });

  it('serves cached entries (a planted one shows), and ignores a file from another serializer or a corrupt one', () => {
    const plain = synth(512, false);
    synth(512, true);
    const body = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { serializer: string; entries: Record<string, string> };
    const crds = plain.get('crds.k8s.yaml')!;
    const [key] = Object.entries(body.entries).find(([, v]) => crds.startsWith(v))!;
    body.entries[key] = 'planted: true\n';
    fs.writeFileSync(cacheFile, JSON.stringify(body));
    expect(synth(512, true).get('crds.k8s.yaml')!.startsWith('planted: true\n')).toBe(true);

    fs.writeFileSync(cacheFile, JSON.stringify({ ...body, serializer: 'cdk8s@0.0.0\nother' }));
    expect(synth(512, true)).toEqual(plain);
    fs.writeFileSync(cacheFile, '{ not json');
    expect(synth(512, true)).toEqual(plain);
  });

  it('keys documents by their JSON, and lives under the project\'s own node_modules/.cache unless turned off', () => {
    expect(yamlCacheKey({ a: 1 })).toBe(yamlCacheKey({ a: 1 }));
    expect(yamlCacheKey({ a: 1 })).not.toBe(yamlCacheKey({ a: '1' }));
    fs.mkdirSync(path.join(tmp, 'node_modules'));
    expect(yamlCacheFile(tmp, {})).toMatch(new RegExp(`^${tmp}/node_modules/\\.cache/virtops/synth-yaml-[0-9a-f]{16}\\.json$`));
    expect(yamlCacheFile(tmp, { VIRTOPS_SYNTH_CACHE: 'off' })).toBeUndefined();
    expect(yamlCacheFile(path.join(tmp, 'cache'), {})).toBeUndefined();
    // A project whose node_modules links to another tree's (test and bench projects) gets none.
    const linked = path.join(tmp, 'linked');
    fs.mkdirSync(linked);
    fs.symlinkSync(path.join(tmp, 'node_modules'), path.join(linked, 'node_modules'));
    expect(yamlCacheFile(linked, {})).toBeUndefined();
    expect(yamlCacheFile(linked, { [YAML_CACHE_FILE_ENV]: 'rel/cache.json' })).toBe(path.resolve('rel/cache.json'));
    expect(yamlCacheFile(linked, { [YAML_CACHE_FILE_ENV]: '/x.json', VIRTOPS_SYNTH_CACHE: 'off' })).toBeUndefined();
  });
});
