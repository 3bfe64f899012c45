/**
 * Who removes a restore's new claim in cluster mode (reconciler/cluster/snapshots.ts): the
 * SnapshotAgent of the node labelled on its PVC and PV, once the PVC is gone and no VMI there
 * uses the claim; at start, labelled PVs bound to a PVC deleted while the agent was down. The
 * API server is the in-memory fake (the real one: test/integration/cluster/snapshot.test.ts);
 * the claim files are real files in a temp dir.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESTORE_CRD_NAME, RESTORE_NODE_LABEL, SNAPSHOT_CRD_NAME, SnapshotAgent, restoredClaimObjects } from '../../../reconciler/cluster/snapshots.js';
import { FakeKubeClient } from '../../helpers/fake-kube.js';
import { sleep, waitFor } from '../../helpers/wait.js';

const log = pino({ level: 'silent' });
const NODE = 'n1';

describe('restored claims: removed by the agent holding them once their PVC is gone', () => {
  let dir: string;
  let kube: FakeKubeClient;
  let agent: SnapshotAgent | undefined;
  let inUse: Set<string>;
  const pvcDir = () => join(dir, 'pvcs');

  /** A restored claim `ns/name` on `node`: its file, PV and (unless `pvc: false`) PVC, bound as the PV controller leaves them. */
  const claim = async (name: string, o: { node?: string; pvc?: boolean; bound?: boolean } = {}) => {
    const path = join(pvcDir(), 'lab', name);
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'disk.img'), 'x');
    const objs = restoredClaimObjects({ namespace: 'lab', restore: 'r', restoreUid: `uid-${name}`, volume: 'data', claim: name, node: o.node ?? NODE, path, bytes: 1n });
    const pvc = o.pvc === false ? undefined : kube.seed<{ metadata: { uid: string } }>(objs.pvc);
    if (o.bound !== false) (objs.pv.spec as { claimRef: { uid?: string } }).claimRef.uid = pvc?.metadata.uid ?? 'a-deleted-pvc';
    kube.seed(objs.pv);
    return { path, pv: objs.pv.metadata!.name! };
  };
  const pvExists = (name: string) => kube.get('v1', 'PersistentVolume', name) !== undefined;
  const start = async () => {
    agent = new SnapshotAgent(kube, { nodeName: NODE, stateDir: dir, pvcDir: pvcDir(), libvirtUri: 'test:///default', log, vmis: () => [], probeMs: 20, claimsInUse: () => inUse });
    agent.start();
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vo-restored-'));
    kube = new FakeKubeClient();
    inUse = new Set();
    for (const name of [SNAPSHOT_CRD_NAME, RESTORE_CRD_NAME]) kube.seed({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } });
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('at start: a PV bound to a PVC deleted while the agent was down goes with its file; others (PVC there, never bound, another node\'s) stay', async () => {
    const gone = await claim('gone', { pvc: false });
    const kept = await claim('kept');
    const unbound = await claim('unbound', { pvc: false, bound: false });
    const other = await claim('other', { pvc: false, node: 'n2' });
    await start();
    await waitFor('the orphan removed', async () => !existsSync(gone.path) && !pvExists(gone.pv), 5000, 20);
    await agent!.idle();
    for (const c of [kept, unbound, other]) {
      expect(existsSync(c.path)).toBe(true);
      expect(pvExists(c.pv)).toBe(true);
    }
  });

  it('its PVC deleted: file and PV go, but only once no VMI on the node uses the claim', async () => {
    const c = await claim('web-data');
    inUse.add('lab/web-data');
    await start();
    await sleep(200); // the agent found the CRDs and its informers listed
    kube.remove('v1', 'PersistentVolumeClaim', 'web-data', 'lab');
    await sleep(300);
    expect(existsSync(c.path)).toBe(true);
    expect(pvExists(c.pv)).toBe(true);
    inUse.clear();
    await waitFor('the claim removed once unused', async () => !existsSync(c.path) && !pvExists(c.pv), 5000, 50);
  });
});
