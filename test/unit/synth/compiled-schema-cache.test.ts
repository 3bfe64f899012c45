import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compiledSchemaDir, compiledSchemaKey } from '../../../api/compiled-schema-cache.js';
import type { CompiledSchemaStore } from '../../../api/schema-validators.js';
import { fixtureVm } from './fixtures.js';

type Obj = Record<string, unknown>;
type Validate = typeof import('../../../api/validate.js') & Pick<typeof import('../../../api/schema-validators.js'), 'useCompiledSchemaStore'>;

/** Manifests each kind of issue comes from: ajv's errors (with parentSchema for hints) and validate.ts' own rules. */
function corpus(): unknown[] {
  const vm = (patch: (spec: Obj, domain: Obj) => void): unknown => {
    const m = structuredClone(fixtureVm()) as unknown as Obj;
    const spec = (m.spec as Obj).template as Obj;
    patch(spec.spec as Obj, (spec.spec as Obj).domain as Obj);
    return m;
  };
  return [
    fixtureVm(),
    vm((_s, d) => { (d.cpu as Obj).corse = 2; }),
    vm((_s, d) => { (d.cpu as Obj).cores = 'two'; }),
    vm((_s, d) => { (d.memory as Obj).guest = '1 GB'; }),
    vm((_s, d) => { (d.memory as Obj).guest = true; }),
    vm((s) => { ((s.volumes as Obj[])[0]!.containerDisk as Obj).imagePullPolicy = 'Sometimes'; }),
    vm((s) => { (s.volumes as Obj[])[0]!.containerDisk = {}; }),
    vm((_s, d) => { ((d.devices as Obj).interfaces as Obj[])[0]!.masquerade = { port: 80 }; }),
    { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'x' }, spec: { domain: { devices: {} }, bogus: 1 } },
  ];
}

/** A fresh copy of api/validate.ts and of its validators (they live in api/schema-validators.ts's module state). */
async function freshValidate(): Promise<Validate> {
  vi.resetModules();
  const validate = await import('../../../api/validate.js');
  const { useCompiledSchemaStore } = await import('../../../api/schema-validators.js');
  return { ...validate, useCompiledSchemaStore };
}

/** The disk store on `dir`, counting what it answered. */
async function countingStore(dir: string): Promise<{ store: CompiledSchemaStore; hits: number; saves: number }> {
  const { diskCompiledSchemaStore } = await import('../../../api/compiled-schema-cache.js');
  const disk = diskCompiledSchemaStore(dir);
  const counts = { hits: 0, saves: 0 };
  const store: CompiledSchemaStore = {
    load: (schema, setup) => {
      const fn = disk.load(schema, setup);
      if (fn) counts.hits++;
      return fn;
    },
    save: (...args) => {
      counts.saves++;
      disk.save(...args);
    },
  };
  return Object.assign(counts, { store });
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-validators-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  vi.resetModules();
});

describe('compiled schema cache', () => {
  it('a validator loaded from disk finds exactly what a compiled one finds', async () => {
    const plain = await freshValidate();
    const expected = corpus().map((m) => plain.validateManifest(m));
    expect(expected.filter((i) => i.length > 0)).toHaveLength(corpus().length - 1);

    const first = await freshValidate();
    const writer = await countingStore(dir);
    first.useCompiledSchemaStore(writer.store);
    expect(corpus().map((m) => first.validateManifest(m))).toEqual(expected);
    expect(writer).toMatchObject({ hits: 0, saves: 2 }); // VM and VMI schemas
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.cjs'))).toHaveLength(2);

    const second = await freshValidate();
    const reader = await countingStore(dir);
    second.useCompiledSchemaStore(reader.store);
    expect(corpus().map((m) => second.validateManifest(m))).toEqual(expected);
    expect(reader).toMatchObject({ hits: 2, saves: 0 });
  });

  it('a broken or truncated file is compiled again and replaced', async () => {
    const first = await freshValidate();
    first.useCompiledSchemaStore((await countingStore(dir)).store);
    first.validateManifest(fixtureVm());
    const [file] = fs.readdirSync(dir);
    const good = fs.readFileSync(path.join(dir, file!), 'utf8');
    fs.writeFileSync(path.join(dir, file!), good.slice(0, good.length / 2));

    const second = await freshValidate();
    const store = await countingStore(dir);
    second.useCompiledSchemaStore(store.store);
    expect(second.validateManifest(fixtureVm())).toEqual([]);
    expect(store).toMatchObject({ hits: 0, saves: 1 });
    expect(fs.readFileSync(path.join(dir, file!), 'utf8')).toBe(good);
  });

  it('keys by schema, compile setup and ajv versions', () => {
    const k = compiledSchemaKey({ type: 'object' }, 'setup', 'ajv@1');
    expect(k).toMatch(/^[0-9a-f]{40}$/);
    expect(compiledSchemaKey({ type: 'object' }, 'setup', 'ajv@1')).toBe(k);
    expect(compiledSchemaKey({ type: 'string' }, 'setup', 'ajv@1')).not.toBe(k);
    expect(compiledSchemaKey({ type: 'object' }, 'other', 'ajv@1')).not.toBe(k);
    expect(compiledSchemaKey({ type: 'object' }, 'setup', 'ajv@2')).not.toBe(k);
  });

  it('lives in the node_modules holding ajv, or where VIRTOPS_VALIDATOR_CACHE says; off turns it off', () => {
    expect(compiledSchemaDir({})).toMatch(/node_modules\/\.cache\/virtops\/validators$/);
    expect(compiledSchemaDir({ VIRTOPS_VALIDATOR_CACHE: 'off' })).toBeUndefined();
    expect(compiledSchemaDir({ VIRTOPS_VALIDATOR_CACHE: dir })).toBe(dir);
  });
});
