/**
 * Cluster mode with one real guest: the test guest's kernel-boot image in a real local
 * registry, launched by the agent's process runtime on qemu:///system under TCG. Push →
 * Running with the guest's markers on its serial log; Halted in git → domain gone, VM
 * Stopped; removed from git → VM, VMI, Pod and domain gone.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import type { AgentHandle, ControllerHandle } from '../../../reconciler/cluster/run.js';
import { type LocalRegistry, pushTestGuestImages, startRegistry } from '../../helpers/registry.js';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { bareVm, testGuestVm } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';
import { podDir } from '../../../reconciler/agent/host-config.js';
import { teardownGuestTest, commitVms, getVm, gitFixture, identities, listJson, startAgent, startController, tempDir, until, type Env, type Identities } from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-b-${suffix}`;
const NODE = `vo-node-${suffix}`;
const NAME = 'g';
const DOMAIN = `${NS}_${NAME}`;
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

describe.skipIf(!env)('cluster mode boots a real guest (qemu:///system, TCG)', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let registry: LocalRegistry;
  let image: string;
  let controller: ControllerHandle;
  let agent: AgentHandle;

  const guest = (runStrategy?: VirtualMachine['spec']['runStrategy']): VirtualMachine => {
    const v = testGuestVm({ image, name: NAME });
    v.metadata.namespace = NS;
    if (runStrategy) {
      delete v.spec.running;
      v.spec.runStrategy = runStrategy;
    }
    return v;
  };
  const placeholder = () => ({ ...bareVm('placeholder', { runStrategy: 'Halted' }), metadata: { name: 'placeholder', namespace: NS } }) as VirtualMachine;

  beforeAll(async () => {
    registry = await startRegistry();
    image = (await pushTestGuestImages(registry)).kernelBootImage;
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-b-');
    agent = await startAgent(ids, NODE, state.dir, 'qemu:///system', { insecureRegistries: [registry.host], emulation: 'tcg' });
    controller = await startController(ids, git, NS);
  }, 300_000);

  afterAll(() => teardownGuestTest({ ids, controller, agent, state, git, registry, ns: NS, node: NODE, domain: DOMAIN }), 180_000);

  it('push → VM Running and the guest prints its markers on the serial log', async () => {
    await commitVms(git, [guest()], 'the test guest');
    await until('VM Running', async () => (await getVm(ids.admin, NS, NAME))?.status?.printableStatus === 'Running', 240_000, 500);
    expect((await virsh('domstate', DOMAIN)).stdout.trim()).toBe('running');
    const [pod] = await listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, `vm.kubevirt.io/name=${NAME}`);
    const dirName = pod!.metadata!.labels!['kubevirt.io/created-by']!.replace(/[^a-z0-9]/g, '').slice(0, 12);
    const serial = join(podDir(state.dir, NS, dirName), 'public', 'logs', `${DOMAIN}-serial0.log`);
    const text = await until('guest ready marker', async () => {
      const t = await readFile(serial, 'utf8').catch(() => '');
      return t.includes(GUEST_MARKERS.ready) ? t : undefined;
    }, 180_000, 500);
    expect(text).toContain(GUEST_MARKERS.booted);
    const [vmi] = await listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS);
    expect(vmi?.status).toMatchObject({ phase: 'Running', nodeName: NODE });
  }, 500_000);

  it('runStrategy Halted in git → domain gone, VM Stopped', async () => {
    await commitVms(git, [guest('Halted')], 'halt it');
    await until('VM Stopped', async () => (await getVm(ids.admin, NS, NAME))?.status?.printableStatus === 'Stopped', 180_000, 500);
    await until('domain gone', async () => (await virsh('domstate', DOMAIN)).exitCode !== 0, 60_000);
    expect(await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS)).toEqual([]);
  }, 240_000);

  it('removed from git → VM, VMI, Pod and domain gone', async () => {
    await commitVms(git, [guest()], 'run again');
    await until('Running again', async () => (await getVm(ids.admin, NS, NAME))?.status?.printableStatus === 'Running', 240_000, 500);
    await commitVms(git, [placeholder()], 'remove it');
    await until('VM gone', async () => (await getVm(ids.admin, NS, NAME)) === undefined, 60_000);
    await until('VMI and Pod gone', async () => (await listJson(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS)).length === 0 && (await listJson(ids.admin, 'v1', 'Pod', NS, `vm.kubevirt.io/name=${NAME}`)).length === 0, 120_000);
    expect((await virsh('domstate', DOMAIN)).exitCode).not.toBe(0);
    expect((await getVm(ids.admin, NS, 'placeholder'))?.status?.printableStatus).toBe('Stopped');
  }, 400_000);
});
