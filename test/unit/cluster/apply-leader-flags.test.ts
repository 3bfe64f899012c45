import { describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import type { KubeObject } from '../../../reconciler/core/index.js';
import { renderLauncherPod } from '../../../synth/launcher-pod.js';
import { renderCrd, VM_CRD } from '../../../synth/crds.js';
import { isCrdKey, planApply, revisionHealth } from '../../../reconciler/cluster/apply.js';
import { decideLease } from '../../../reconciler/cluster/leader.js';
import { validateAgentFlags, validateControllerFlags } from '../../../reconciler/cluster/run.js';
import { vm as fixtureVm } from '../reconciler/fixtures.js';

const asObj = (x: unknown) => x as KubeObject;

describe('planApply', () => {
  it('orders CRDs, then Namespaces, then the rest, and sets launcher Pod templates aside', () => {
    const v = fixtureVm({ runStrategy: 'Always' });
    const manifests = [asObj(v), asObj(renderLauncherPod(v)), asObj({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vms' } }), asObj(renderCrd(VM_CRD)), asObj({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'vms' } })];
    const p = planApply(manifests);
    expect(p.crds.map((o) => o.kind)).toEqual(['CustomResourceDefinition']);
    expect(p.namespaces.map((o) => o.metadata.name)).toEqual(['vms']);
    expect(p.objects.map((o) => o.kind)).toEqual(['VirtualMachine', 'ConfigMap']);
    expect([...p.templates.keys()]).toEqual(['default/web']);
    expect(p.applied.map((o) => o.kind)).toEqual(['CustomResourceDefinition', 'Namespace', 'VirtualMachine', 'ConfigMap']);
  });

  it('a Pod that is not a launcher template is applied like any object', () => {
    const p = planApply([asObj({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'debug', namespace: 'default' } })]);
    expect(p.objects).toHaveLength(1);
    expect(p.templates.size).toBe(0);
  });

  it('recognises CRD inventory keys (never pruned)', () => {
    expect(isCrdKey('apiextensions.k8s.io/v1/CustomResourceDefinition/default/virtualmachines.kubevirt.io')).toBe(true);
    expect(isCrdKey('kubevirt.io/v1/VirtualMachine/default/web')).toBe(false);
  });
});

function withStatus(v: VirtualMachine, printableStatus: string, desiredGeneration = v.metadata.generation): VirtualMachine {
  return { ...v, status: { printableStatus: printableStatus as never, ...(desiredGeneration !== undefined ? { desiredGeneration } : {}) } };
}

describe('revisionHealth', () => {
  it.each<[string, VirtualMachine[], string]>([
    ['all running', [withStatus(fixtureVm({ runStrategy: 'Always' }), 'Running')], 'Healthy'],
    ['a Halted VM that is Stopped is healthy', [withStatus(fixtureVm({ runStrategy: 'Halted' }), 'Stopped')], 'Healthy'],
    ['a VM still starting', [withStatus(fixtureVm({ runStrategy: 'Always' }), 'Starting')], 'Progressing'],
    ['a VM with no status yet', [fixtureVm({ runStrategy: 'Always' })], 'Progressing'],
    ['a status from an older generation', [withStatus(fixtureVm({ runStrategy: 'Always', generation: 2 }), 'Running', 1)], 'Progressing'],
    ['an unschedulable VM', [withStatus(fixtureVm({ runStrategy: 'Always' }), 'ErrorUnschedulable')], 'Degraded'],
    ['crash loop', [withStatus(fixtureVm({ runStrategy: 'Always' }), 'CrashLoopBackOff')], 'Degraded'],
  ])('%s → %s', (_n, vms, health) => {
    expect(revisionHealth(vms).health).toBe(health);
  });
});

describe('decideLease', () => {
  const o = { namespace: 'ns', name: 'l', identity: 'me', leaseDurationMs: 15_000 };
  const T = Date.parse('2025-01-01T00:00:00Z');
  const lease = (holder: string, renewedAgoMs: number) => ({ metadata: { name: 'l', namespace: 'ns', resourceVersion: '7' }, spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: new Date(T - renewedAgoMs), leaseTransitions: 2 } });

  it('creates a missing lease held by me', () => {
    const d = decideLease(undefined, o, T);
    expect(d.action).toBe('create');
    if (d.action === 'create') expect(d.lease.spec?.holderIdentity).toBe('me');
  });
  it('waits while another holder is within its lease', () => {
    expect(decideLease(lease('other', 5000), o, T)).toEqual({ action: 'wait', holder: 'other', expiresAt: T + 10_000 });
  });
  it('takes an expired lease (at its resourceVersion, counting a transition)', () => {
    const d = decideLease(lease('other', 16_000), o, T);
    expect(d).toMatchObject({ action: 'update', acquiring: true, lease: { metadata: { resourceVersion: '7' }, spec: { holderIdentity: 'me', leaseTransitions: 3 } } });
  });
  it('renews my own lease without a transition', () => {
    expect(decideLease(lease('me', 5000), o, T)).toMatchObject({ action: 'update', acquiring: false, lease: { spec: { holderIdentity: 'me', leaseTransitions: 2 } } });
  });
  it('takes a released lease (empty holder)', () => {
    expect(decideLease(lease('', 0), o, T)).toMatchObject({ action: 'update', acquiring: true });
  });
});

describe('flags', () => {
  it('controller: names the field and the fix', () => {
    const v = validateControllerFlags({ namespace: 'Bad_NS', interval: 'soon', leaseDuration: '1s' });
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.errors.join('\n')).toMatch(/--repo is required/);
      expect(v.errors.join('\n')).toMatch(/--namespace "Bad_NS"/);
      expect(v.errors.join('\n')).toMatch(/--interval "soon" is not a duration: use e.g. 500ms/);
      expect(v.errors.join('\n')).toMatch(/--lease-duration "1s" is too short: use at least 2s/);
    }
    const ok = validateControllerFlags({ repo: '/srv/vms.git', interval: '2s', leaderElect: true });
    expect(ok).toMatchObject({ ok: true, config: { repo: '/srv/vms.git', namespace: 'virtops-system', intervalMs: 2000, leaderElect: true, distPath: 'dist', branch: 'main' } });
    expect(ok.ok && ok.config.cacheDir).toBe(undefined);
    expect(validateControllerFlags({ repo: '/srv/vms.git', cacheDir: '/var/cache/virtops/source' })).toMatchObject({ ok: true, config: { cacheDir: '/var/cache/virtops/source' } });
  });

  it('controller: CrashLoopBackOff first wait and cap (default 10s and 5m, as up)', () => {
    expect(validateControllerFlags({ repo: '/r' })).toMatchObject({ ok: true, config: { backoffPolicy: { initialMs: 10_000, maxMs: 300_000 } } });
    expect(validateControllerFlags({ repo: '/r', crashLoopBackoff: '1s', crashLoopBackoffMax: '4s' })).toMatchObject({ ok: true, config: { backoffPolicy: { initialMs: 1000, maxMs: 4000, stableAfterMs: 300_000 } } });
    const v = validateControllerFlags({ repo: '/r', crashLoopBackoff: '10s', crashLoopBackoffMax: '1s' });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors.join('\n')).toMatch(/--crash-loop-backoff-max "1s" is below --crash-loop-backoff "10s": raise it to at least 10s/);
  });

  it('agent: node name, emulation, libvirt URI, registries', () => {
    const v = validateAgentFlags({ node: 'Node_1', emulation: 'fast', libvirtUri: 'nope', insecureRegistry: ['http://x'] });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors).toHaveLength(4);
    expect(validateAgentFlags({ node: 'n1', processRuntime: true, libvirtUri: 'test:///default' })).toMatchObject({ ok: true, config: { node: 'n1', processRuntime: true, emulation: 'auto' } });
  });

  it.each([
    [{ node: 'n1', interval: '30' }, '--interval "30" is not a duration'],
    [{ node: 'n1', interval: '50ms' }, '--interval "50ms" is too short: use at least 200ms'],
    [{ node: 'n1', stateDir: 'rel' }, '--state-dir "rel" is not an absolute path'],
  ])('agent %j → %s', (raw, message) => {
    const v = validateAgentFlags(raw);
    expect(v.ok ? [] : v.errors.join('\n')).toContain(message);
  });

  it('durations take compound forms (one parser: launcher/flags.ts)', () => {
    expect(validateControllerFlags({ repo: 'r', interval: '1m30s', leaseDuration: '2s' })).toMatchObject({ ok: true, config: { intervalMs: 90_000, leaseDurationMs: 2000 } });
    expect(validateAgentFlags({ node: 'n1', interval: '1m30s' })).toMatchObject({ ok: true, config: { intervalMs: 90_000, stateDir: '/var/lib/virtops' } });
  });
});
