/**
 * Fuzz: corrupt state files (reconciler/standalone/state-store.ts, readApplied / readVms).
 * A state file truncated at any byte, with bytes flipped, replaced by garbage or by
 * non-UTF-8 bytes → either the content parses, or the file is moved aside (kept as
 * `<file>.corrupt-<time>`, named in `recovered`) and read as rebuilt; never a throw.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { StateStore, type AppliedState, type VmRecord } from '../../../reconciler/standalone/state-store.js';
import { FUZZ, params } from './config.js';

const root = mkdtempSync(join(tmpdir(), 'virtops-fuzz-state-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const goodVm: VmRecord = {
  namespace: 'default',
  name: 'test-guest',
  firstSeen: 1_700_000_000_000,
  revision: 'a'.repeat(40),
  instance: {
    uid: '6d1f3c1e-0000-4000-8000-000000000001', createdAt: 1_700_000_000_500, spec: { domain: { devices: {} } }, podDir: '/var/lib/virtops/pods/abcdef012345',
    socketPath: '/var/lib/virtops/pods/abcdef012345/sockets/launcher.sock', shareDir: '/x', domainName: 'default_test-guest', logFile: '/x/launcher.log', pid: 4242, synced: true,
  } as VmRecord['instance'],
  status: { printableStatus: 'Running', ready: true } as VmRecord['status'],
  events: [{ time: '2024-01-01T00:00:00.000Z', type: 'Normal', reason: 'Started', message: 'VM started' }],
};
const goodApplied: AppliedState = {
  sha: 'b'.repeat(40), appliedAt: 1, seenAt: 1,
  manifests: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'test-guest', namespace: 'default' } }] as AppliedState['manifests'],
  inventory: { revision: 'b'.repeat(40), entries: { 'kubevirt.io/VirtualMachine/default/test-guest': 'h' } } as AppliedState['inventory'],
};

/** Corruptions of a valid file's bytes: truncation, flipped bytes, spliced garbage, or garbage alone. */
function corrupt(valid: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.nat({ max: valid.length }).map((n) => valid.subarray(0, n)),
    fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }).map((flips) => {
      const b = Buffer.from(valid);
      for (const [i, x] of flips) b[i] = b[i]! ^ x;
      return b;
    }),
    fc.tuple(fc.nat({ max: valid.length }), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([at, junk]) => Buffer.concat([valid.subarray(0, at), Buffer.from(junk), valid.subarray(at)])),
    fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
    fc.constantFrom(Buffer.alloc(0), Buffer.from('\0\0\0\0'), Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00])),
  );
}

let n = 0;
async function freshDir(): Promise<string> {
  const dir = join(root, String(++n));
  await mkdir(join(dir, 'vms'), { recursive: true });
  return dir;
}

function parses(b: Buffer): boolean {
  try {
    JSON.parse(b.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/** The contract: a file that is not what virtops writes is moved aside, kept, and named. */
function expectMovedAside(store: StateStore, file: string): void {
  const r = store.recovered.find((x) => x.file === file);
  expect(r, `${file} moved aside`).toBeDefined();
  expect(r!.movedTo).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.corrupt-`));
  expect(existsSync(r!.movedTo)).toBe(true);
  expect(existsSync(file)).toBe(false);
}

describe('fuzz: corrupt state files', () => {
  it(`readApplied / readVms on truncated, flipped, spliced and garbage bytes → content, or moved aside and rebuilt (${FUZZ.stateFiles.numRuns} runs, seed ${FUZZ.stateFiles.seed})`, async () => {
    const vmBytes = Buffer.from(JSON.stringify(goodVm, null, 1));
    const appliedBytes = Buffer.from(JSON.stringify(goodApplied, null, 1));
    await fc.assert(
      fc.asyncProperty(corrupt(vmBytes), corrupt(appliedBytes), async (vmFile, appliedFile) => {
        const dir = await freshDir();
        try {
          const store = new StateStore(dir);
          const vmPath = join(dir, 'vms', 'default_test-guest.json');
          const appliedPath = join(dir, 'applied.json');
          writeFileSync(vmPath, vmFile);
          writeFileSync(appliedPath, appliedFile);
          const vms = await store.readVms();
          const applied = await store.readApplied();
          // Bytes that do not parse are moved aside; bytes that parse are content, or moved
          // aside when their shape is not what virtops writes (a flipped key name, say).
          const movedVm = store.recovered.some((r) => r.file === vmPath);
          if (!parses(vmFile) || movedVm) {
            expectMovedAside(store, vmPath);
            expect(vms).toEqual([expect.objectContaining({ namespace: 'default', name: 'test-guest', events: [], rebuilt: true })]);
          }
          if (!parses(appliedFile) || store.recovered.some((r) => r.file === appliedPath)) {
            expectMovedAside(store, appliedPath);
            expect(applied).toEqual({ manifests: [], inventory: { entries: {} } });
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      params(FUZZ.stateFiles),
    );
  });

  // Found by this property (fixed): readJson only JSON.parsed. A state file that
  // parses but has the wrong shape is returned as if it were a record: e.g. applied.json
  // containing `{}`, `[]` or `5` resolves to an AppliedState without `manifests`, and
  // StandaloneBackend.start() then calls splitRevision(undefined) (a TypeError at start-up
  // instead of a refusal naming the file); vms/x.json containing `5` or `"x"` or `{}` comes back
  // as a VmRecord without namespace/name/events (start() then keys it "undefined/undefined").
  // Counterexample at this seed (1 run): vms/default_test-guest.json `{}` and applied.json
  // with `"manifests": null`.
  it(`state files that parse but have the wrong shape → moved aside and rebuilt, or a well-formed record (${FUZZ.stateFiles.numRuns} runs, seed ${FUZZ.stateFiles.seed + 1})`, async () => {
    const mutatedVm = fc.oneof(
      fc.json({ maxDepth: 3 }).map((j) => JSON.parse(j) as unknown),
      fc.constantFrom('namespace', 'name', 'events', 'firstSeen', 'instance').chain((k) =>
        fc.oneof(fc.constant(undefined), fc.integer(), fc.string(), fc.constant(null)).map((v) => ({ ...goodVm, [k]: v }))),
    );
    const mutatedApplied = fc.oneof(
      fc.json({ maxDepth: 3 }).map((j) => JSON.parse(j) as unknown),
      fc.constantFrom('manifests', 'inventory').chain((k) =>
        fc.oneof(fc.constant(undefined), fc.integer(), fc.string(), fc.constant(null), fc.constant({})).map((v) => ({ ...goodApplied, [k]: v }))),
    );
    const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    await fc.assert(
      fc.asyncProperty(mutatedVm, mutatedApplied, async (vm, applied) => {
        const dir = await freshDir();
        try {
          const store = new StateStore(dir);
          const vmPath = join(dir, 'vms', 'default_test-guest.json');
          const appliedPath = join(dir, 'applied.json');
          writeFileSync(vmPath, JSON.stringify(vm) ?? 'null');
          writeFileSync(appliedPath, JSON.stringify(applied) ?? 'null');
          const vms = await store.readVms();
          const app = await store.readApplied();
          if (store.recovered.some((r) => r.file === vmPath)) expectMovedAside(store, vmPath);
          for (const r of vms) {
            expect(isObj(r)).toBe(true);
            expect(typeof r.namespace).toBe('string');
            expect(typeof r.name).toBe('string');
            expect(Array.isArray(r.events)).toBe(true);
          }
          if (store.recovered.some((r) => r.file === appliedPath)) expectMovedAside(store, appliedPath);
          expect(isObj(app)).toBe(true);
          expect(Array.isArray(app.manifests)).toBe(true);
          expect(isObj(app.inventory) && isObj(app.inventory.entries)).toBe(true);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { ...params(FUZZ.stateFiles), seed: params(FUZZ.stateFiles).seed! + 1 },
    );
  });
});
