/**
 * Issue 9 part 1 in cluster mode: a VM whose name and namespace are both 63 characters (the
 * Kubernetes maximum) goes from a git push to Running, with a launcher Pod on the agent's
 * node and a libvirt domain, under an agent state dir of 64 bytes (the longest allowed);
 * removing it from git leaves no VMI, Pod, launcher process, host dir, socket or domain.
 * Real control plane, real controller and agent (in-process), real launchers on libvirt's
 * test:///default driver (each launcher's connection holds its own domains, so the domain is
 * asked of the launcher itself over its command socket).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { callLauncher } from '../../../launcher/server/client.js';
import type { AgentHandle, ControllerHandle } from '../../../reconciler/cluster/run.js';
import { bareVm } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';
import {
  commitVms, deleteNode, deleteVmsAndWait, getVm, gitFixture, identities, listJson, processesWith, startAgent, startController, stopLaunchersUnder, until, type Env, type Identities,
} from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NAME = `n${'a'.repeat(55)}${suffix}z`; // 63
const NS = `s${'b'.repeat(55)}${suffix}y`; // 63
const NODE = `vo-node-${suffix}`;

function vmIn(name: string): VirtualMachine {
  const v = bareVm(name);
  v.metadata.namespace = NS;
  return v;
}

/** Unix sockets under `dir` (launcher command sockets, consoles), as absolute paths. */
async function socketsUnder(dir: string): Promise<string[]> {
  const r = await execa('find', [dir, '-type', 's'], { reject: false });
  return r.stdout.split('\n').filter(Boolean);
}

describe.skipIf(!env)('cluster mode: any valid name runs', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let stateDir: string;
  let controller: ControllerHandle;
  let agent: AgentHandle;

  const vmis = () => listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
  const pods = () => listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher');

  beforeAll(async () => {
    expect(NAME.length).toBe(63);
    expect(NS.length).toBe(63);
    const prefix = `/tmp/vo-cl-long-${suffix}-`;
    stateDir = prefix + 'x'.repeat(64 - prefix.length);
    expect(Buffer.byteLength(stateDir)).toBe(64);
    await mkdir(stateDir, { recursive: true });
    // The 63-character namespace is also the install namespace: the controller's inventory,
    // the service accounts and their RBAC live there.
    ids = await identities(e, NS);
    git = await gitFixture();
    agent = await startAgent(ids, NODE, stateDir, 'test:///default');
    controller = await startController(ids, git, NS);
  }, 120_000);

  afterAll(async () => {
    if (ids) await deleteVmsAndWait(ids.admin, NS);
    await controller?.stop();
    await agent?.stop();
    if (stateDir) {
      await stopLaunchersUnder(stateDir);
      await rm(stateDir, { recursive: true, force: true });
    }
    if (ids) {
      await deleteNode(ids.admin, NODE);
      await ids.admin.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }).catch(() => undefined);
    }
    await git?.cleanup();
  }, 120_000);

  it('a 63-character VM in a 63-character namespace under a 64-byte state dir reaches Running and is pruned cleanly', async () => {
    await commitVms(git, [vmIn(NAME)], 'long names');
    await until('long-named VM Running', async () => (await getVm(ids.admin, NS, NAME))?.status?.printableStatus === 'Running', 90_000).catch(async (err: unknown) => {
      console.error(JSON.stringify({ vm: (await getVm(ids.admin, NS, NAME))?.status, vmis: (await vmis()).map((v) => v.status), pods: (await pods()).map((p) => ({ name: p.metadata?.name, status: p.status })) }, null, 1));
      throw err;
    });

    const [vmi] = await vmis();
    expect(vmi?.metadata?.name).toBe(NAME);
    expect(vmi?.status).toMatchObject({ phase: 'Running', nodeName: NODE });
    const uid = vmi!.metadata!.uid!;
    const [pod, ...more] = await pods();
    expect(more).toEqual([]);
    expect(pod?.spec?.nodeName).toBe(NODE);
    expect(pod?.status?.phase).toBe('Running');
    // A Pod name is a DNS label in most of its uses (hostname, the kubelet's): at most 63 characters, as KubeVirt keeps it.
    expect(pod!.metadata!.name!.length).toBeLessThanOrEqual(63);
    expect(pod!.metadata!.name!).toMatch(/^virt-launcher-n[a-z0-9]*-[a-z0-9]{5}$/);
    for (const v of Object.values(pod!.metadata!.labels ?? {})) expect(v.length).toBeLessThanOrEqual(63);
    expect(pod?.metadata?.labels?.['kubevirt.io/created-by']).toBe(uid);
    expect(await processesWith(uid)).toBeGreaterThan(0);

    // Every socket under the state dir fits sun_path; the launcher's reports the domain.
    const sockets = await socketsUnder(stateDir);
    for (const s of sockets) expect(Buffer.byteLength(s), s).toBeLessThanOrEqual(107);
    const launcherSock = sockets.find((s) => s.endsWith('/launcher-sock'));
    expect(launcherSock).toBeDefined();
    const info = await callLauncher<{ domain: string; state: string; vmi: { uid: string } }>(launcherSock!, 'GET', '/v1/info', undefined, 10_000);
    expect(info.body).toMatchObject({ domain: `${NS}_${NAME}`, state: 'Running', vmi: { uid } });
    const podDirs = await readdir(join(stateDir, 'pods'));
    expect(podDirs).toHaveLength(1);

    // Out of git: the VM is pruned, and nothing of it is left on the node or in the cluster.
    await commitVms(git, [], 'the long-named VM leaves git');
    await until('VM pruned', async () => (await getVm(ids.admin, NS, NAME)) === undefined, 60_000);
    await until('VMI and launcher Pod gone', async () => (await vmis()).length === 0 && (await pods()).length === 0, 60_000);
    await until('its launcher processes gone', async () => (await processesWith(uid)) === 0, 30_000);
    await until('its host dir gone', async () => (await readdir(join(stateDir, 'pods'))).length === 0, 30_000);
    expect(existsSync(launcherSock!)).toBe(false);
    expect(await socketsUnder(stateDir)).toEqual([]);
  }, 240_000);
});
