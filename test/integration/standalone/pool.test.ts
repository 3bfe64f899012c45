/**
 * A VirtualMachinePool under a real `virtops up`: real libvirtd (qemu:///system, TCG), the
 * test guest's kernel-boot image in a real local registry, real git. dist/ holds only the
 * pool (no VMs, no launcher Pods): a push of 3 replicas gives 3 running guests named
 * `<pool>-0..2`; 5 adds `-3` and `-4` without touching the first three; 2 removes the
 * highest indices (KubeVirt's Random, drawn as virtops documents it), their domains and
 * launchers gone. GET /api/v1/pools shows the pool's status throughout. Each VM reads its own
 * user-data: the template's cloud-init secretRef `pool-ud` becomes `pool-ud-<n>` per VM
 * (nameGeneration.appendIndexToSecretRefs), Secrets from up's secrets dir.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { VirtualMachinePool } from '../../../api/pool.js';
import { testGuestVm } from './fixture.js';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { apiGet, cli, guestUpFixture, launcherPids, startUp, vm, waitFor } from './harness.js';
import type { PoolView } from '../../../reconciler/standalone/pools.js';

const POOL = 'vo-pool';
const domain = (i: number) => `default_${POOL}-${i}`;
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

function pool(image: string, replicas: number): VirtualMachinePool {
  const template = testGuestVm({ image, name: POOL, memory: '96Mi' });
  template.spec.template.metadata = { labels: { 'virtops.io/pool': POOL } };
  template.spec.template.spec.terminationGracePeriodSeconds = 0;
  const ci = template.spec.template.spec.volumes?.find((v) => v.cloudInitNoCloud);
  if (!ci) throw new Error('vms/test-guest.ts has no cloudInitNoCloud volume any more; update this test');
  ci.cloudInitNoCloud = { secretRef: { name: 'pool-ud' } };
  return {
    apiVersion: 'pool.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePool',
    metadata: { name: POOL, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { 'virtops.io/pool': POOL } },
      virtualMachineTemplate: { metadata: { labels: { 'virtops.io/pool': POOL } }, spec: template.spec },
      nameGeneration: { appendIndexToSecretRefs: true },
    },
  };
}

describe('virtops up runs a VirtualMachinePool from git (qemu:///system, TCG)', () => {
  // Registered before the fixture's hooks, so it runs after them (up stopped, launchers gone):
  // any pool domain still defined is removed.
  afterAll(async () => {
    for (let i = 0; i < 6; i++) {
      if ((await virsh('domstate', domain(i))).exitCode === 0) {
        await virsh('destroy', domain(i));
        await virsh('undefine', domain(i));
      }
    }
  });
  const upArgs = ({ git, registry }: { git: { bare: string }; registry: { host: string } }) => ['--repo', git.bare, '--emulation', 'tcg', '--interval', '3s', '--insecure-registry', registry.host, '--no-freshness-check'];
  const f = guestUpFixture(domain(0), upArgs);

  const commitPool = (replicas: number) => f.git.commitDist({ 'pool.k8s.yaml': YAML.stringify(pool(f.image, replicas)) }, `pool: ${replicas} replicas`);
  const running = async (names: string[]) => {
    const views = await Promise.all(names.map((n) => vm(f.up!.server, n)));
    return views.every((v) => v?.status?.printableStatus === 'Running') ? views.map((v) => v!) : undefined;
  };
  const poolView = async () => (await apiGet<{ pools: PoolView[] }>(f.up!.server, '/api/v1/pools')).pools.find((p) => p.name === POOL);
  const names = (n: number) => Array.from({ length: n }, (_, i) => `${POOL}-${i}`);

  it('3 replicas: 3 guests Running, named <pool>-0..2, owned by the pool, each with its own user-data; status readyReplicas 3', async () => {
    // up's secrets dir (--secrets-dir <state-dir>/secrets: secrets/<ns>/<name>/<key>): one user-data Secret per index.
    for (let i = 0; i < 6; i++) {
      const dir = join(f.stateDir, 'secrets', 'secrets', 'default', `pool-ud-${i}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'userdata'), `#cloud-config\nvirtops-marker: pool-vm-${i}\n`);
    }
    await commitPool(3);
    const vms = await waitFor('3 pool VMs Running', () => running(names(3)), 300_000, 500);
    for (let i = 0; i < 3; i++) expect((await virsh('domstate', domain(i))).stdout.trim()).toBe('running');
    const status = await waitFor('pool status readyReplicas 3', async () => {
      const p = await poolView();
      return p?.status.readyReplicas === 3 ? p : undefined;
    }, 60_000);
    expect(status).toMatchObject({ desired: 3, status: { replicas: 3, readyReplicas: 3, labelSelector: `virtops.io/pool=${POOL}` }, vms: names(3) });
    expect(vms.map((v) => v.inGit)).toEqual([true, true, true]);
    for (const [i, v] of vms.entries()) {
      const serial = await waitFor(`${v.name} prints its user-data`, async () => {
        const text = await readFile(v.instance!.serialLog, 'utf8').catch(() => '');
        return text.includes(GUEST_MARKERS.userData) ? text : undefined;
      }, 240_000, 1000);
      expect(serial).toContain(`${GUEST_MARKERS.userData} pool-vm-${i}`);
    }
  }, 720_000);

  it('5 replicas: -3 and -4 added, the first three keep their instances', async () => {
    const before = (await running(names(3)))!;
    await commitPool(5);
    const after = await waitFor('5 pool VMs Running', () => running(names(5)), 300_000, 500);
    expect(after.slice(0, 3).map((v) => v.instance?.uid)).toEqual(before.map((v) => v.instance?.uid));
    for (let i = 0; i < 5; i++) expect((await virsh('domstate', domain(i))).stdout.trim()).toBe('running');
    await waitFor('pool status 5/5', async () => (await poolView())?.status.readyReplicas === 5, 60_000);
  }, 420_000);

  it('2 replicas: the highest indices removed, their domains and launchers gone; -0 and -1 untouched', async () => {
    const before = (await running(names(2)))!;
    const removed = ['2', '3', '4'].map((i) => `${POOL}-${i}`);
    const uids = await Promise.all(removed.map(async (n) => (await vm(f.up!.server, n))!.instance!.uid));
    await commitPool(2);
    await waitFor('3 pool VMs pruned', async () => (await Promise.all(removed.map((n) => vm(f.up!.server, n)))).every((v) => v === undefined), 180_000);
    for (const i of [2, 3, 4]) expect((await virsh('domstate', domain(i))).exitCode).not.toBe(0);
    const launchers = await launcherPids(f.stateDir);
    for (const uid of uids) expect(launchers.some((p) => p.uid === uid)).toBe(false);
    const kept = (await running(names(2)))!;
    expect(kept.map((v) => v.instance?.uid)).toEqual(before.map((v) => v.instance?.uid));
    expect(await poolView()).toMatchObject({ desired: 2, status: { replicas: 2, readyReplicas: 2 }, vms: names(2) });
    // The same through the CLI.
    const r = await cli(['get', 'pools'], f.up!.server);
    expect(r.stdout).toMatch(new RegExp(`^default\\s+${POOL}\\s+2\\s+2\\s+2\\s+${POOL}-0,${POOL}-1$`, 'm'));
  }, 300_000);

  it('after a restart of up: the pool and its two VMs are adopted, not restarted', async () => {
    const before = (await running(names(2)))!;
    await f.up!.stop();
    f.up = await startUp(upArgs(f), f.stateDir);
    const after = await waitFor('2 pool VMs Running again', () => running(names(2)), 120_000, 500);
    expect(after.map((v) => v.instance?.uid)).toEqual(before.map((v) => v.instance?.uid));
    expect(await poolView()).toMatchObject({ desired: 2, status: { replicas: 2 }, vms: names(2) });
  }, 200_000);
});
