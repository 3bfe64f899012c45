/**
 * Instancetypes under the real `virtops up` (qemu:///system, TCG, real git, the test guest's
 * kernel-boot image in a real local registry): the VM boots expanded from a namespaced
 * instancetype and preference in git; an edit of the instancetype in git leaves the running
 * domain as it is and shows RestartRequired; `virtops restart` applies it.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { testGuestVm, vmDocuments } from '../standalone/fixture.js';
import { CLI, guestUpFixture, readyCondition, vm, waitFor } from '../standalone/harness.js';

const NAME = 'vo-it-guest';
const DOMAIN = `default_${NAME}`;
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

const instancetype = (vcpus: number, memory: string) => ({
  apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineInstancetype',
  metadata: { name: 'tiny', namespace: 'default' }, spec: { cpu: { guest: vcpus }, memory: { guest: memory } },
});
const preference = {
  apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachinePreference',
  metadata: { name: 'virtio', namespace: 'default' }, spec: { devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio' }, cpu: { preferredCPUTopology: 'cores' } },
};

/** The test guest, sized by instancetype `tiny` instead of its own memory. */
function guest(image: string): VirtualMachine {
  const v = testGuestVm({ image, name: NAME });
  delete v.spec.template.spec.domain.memory;
  delete v.spec.template.spec.domain.cpu;
  if (v.spec.template.spec.domain.resources) {
    delete v.spec.template.spec.domain.resources.requests?.memory;
    delete v.spec.template.spec.domain.resources.limits?.memory;
  }
  v.spec.instancetype = { kind: 'VirtualMachineInstancetype', name: 'tiny' };
  v.spec.preference = { kind: 'VirtualMachinePreference', name: 'virtio' };
  return v;
}

async function domain(): Promise<{ vcpus: number; memoryKiB: number; cores: number }> {
  const xml = (await virsh('dumpxml', DOMAIN)).stdout;
  return {
    vcpus: Number(/<vcpu[^>]*>(\d+)<\/vcpu>/.exec(xml)?.[1]),
    memoryKiB: Number(/<memory unit='KiB'>(\d+)<\/memory>/.exec(xml)?.[1]),
    cores: Number(/<topology[^>]* cores='(\d+)'/.exec(xml)?.[1]),
  };
}

describe('virtops up: a VM sized by an instancetype in git', () => {
  const f = guestUpFixture(DOMAIN, ({ git, registry }) => ['--repo', git.bare, '--emulation', 'tcg', '--interval', '3s', '--insecure-registry', registry.host, '--no-freshness-check']);
  const commit = (vcpus: number, memory: string, message: string) =>
    f.git.commitDist({
      [`${NAME}.k8s.yaml`]: vmDocuments(guest(f.image)),
      'instancetypes.k8s.yaml': [instancetype(vcpus, memory), preference].map((d) => YAML.stringify(d)).join('---\n'),
    }, message);

  it('boots with the instancetype\'s vCPUs (as cores, per the preference) and memory; status names the revisions', async () => {
    await commit(1, '256Mi', 'a guest sized by instancetype tiny');
    const v = await waitFor('Running', async () => {
      const x = await vm(f.up!.server, NAME);
      return x?.status?.printableStatus === 'Running' ? x : undefined;
    }, 180_000, 250);
    expect(await domain()).toEqual({ vcpus: 1, memoryKiB: 262144, cores: 1 });
    expect(v.status?.instancetypeRef).toMatchObject({ kind: 'VirtualMachineInstancetype', name: 'tiny', controllerRevisionRef: { name: expect.stringMatching(/^vo-it-guest-tiny-v1beta1-/) } });
    expect(v.status?.preferenceRef).toMatchObject({ name: 'virtio' });
  }, 400_000);

  it('an instancetype edit in git: the running domain is unchanged and RestartRequired shows; virtops restart applies it', async () => {
    const before = (await vm(f.up!.server, NAME))!;
    await commit(2, '384Mi', 'tiny: 2 vCPUs, 384Mi');
    const flagged = await waitFor('RestartRequired', async () => {
      const x = await vm(f.up!.server, NAME);
      return readyCondition(x, 'RestartRequired') === 'True' ? x : undefined;
    }, 60_000, 250);
    expect(flagged.instance?.uid).toBe(before.instance?.uid);
    expect(await domain()).toEqual({ vcpus: 1, memoryKiB: 262144, cores: 1 });
    expect(flagged.events.find((e) => e.reason === 'RestartRequired')?.message).toContain('instancetype VirtualMachineInstancetype tiny (revision');

    const r = await execa(process.execPath, [CLI, 'restart', NAME, '--server', f.up!.server], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await waitFor('a new instance Running', async () => {
      const x = await vm(f.up!.server, NAME);
      return x?.instance && x.instance.uid !== before.instance!.uid && x.status?.printableStatus === 'Running' ? x : undefined;
    }, 180_000, 250);
    expect(await domain()).toEqual({ vcpus: 2, memoryKiB: 393216, cores: 2 });
    expect(readyCondition(after, 'RestartRequired')).toBeUndefined();
    expect(after.status?.instancetypeRef?.controllerRevisionRef?.name).not.toBe(before.status?.instancetypeRef?.controllerRevisionRef?.name);
  }, 400_000);
});
