import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, RbacAuthorizationV1Api, VersionApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMPONENTS,
  loadKubeConfig,
  readControlPlane,
  readVersions,
  serviceAccountKubeconfig,
} from '../../../reconciler/cluster/testenv/index.js';
import { clusterTestenv } from './testenv-fixture.js';

const run = promisify(execFile);
const testenv = await clusterTestenv();
const cli = join(import.meta.dirname, '../../../cli/main.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

const statusOf = (err: unknown): number | undefined => (err as { code?: number }).code;

/** A process is gone when /proc has no entry for it, or only a zombie awaiting its reaper. */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe.skipIf(!testenv)('virtops testenv: a real control plane', () => {
  // Clients are made in beforeAll: this body also runs (to collect) when the suite is skipped.
  const env = testenv!;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const namespace = `testenv-${process.pid}`;
  const nodeName = `testenv-node-${process.pid}`;

  beforeAll(async () => {
    kc = loadKubeConfig(env.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await core.deleteNode({ name: nodeName }).catch(() => {});
    await core.deleteNamespace({ name: namespace }).catch(() => {});
  });

  it('answers /version with the Kubernetes release it was built from', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    const expected = readVersions().kubernetes;
    expect(version.gitVersion).toBe(expected);
    const [major, minor] = expected.slice(1).split('.');
    expect(version.major).toBe(major);
    expect(version.minor).toBe(minor);
  });

  it('schedules a Pod onto a Node we register (the real kube-scheduler binds it)', async () => {
    await core.createNode({
      body: {
        metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } },
        status: {
          capacity: { cpu: '4', memory: '8Gi', pods: '110' },
          allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
          conditions: [{ type: 'Ready', status: 'True', reason: 'TestenvTest', message: 'registered by the test', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() }],
        },
      },
    });
    const pod: V1Pod = {
      metadata: { name: 'sched-me', namespace },
      spec: {
        containers: [{ name: 'compute', image: 'example.invalid/none:1', resources: { requests: { cpu: '500m', memory: '256Mi' } } }],
        // Pin to our Node: other test files may register Nodes of their own.
        nodeSelector: { 'kubernetes.io/hostname': nodeName },
      },
    };
    await core.createNamespacedPod({ namespace, body: pod });
    const bound = await eventually('the scheduler to bind the Pod', async () => {
      const p = await core.readNamespacedPod({ namespace, name: 'sched-me' });
      return p.spec?.nodeName ? p : undefined;
    });
    expect(bound.spec?.nodeName).toBe(nodeName);
    const scheduled = bound.status?.conditions?.find((c) => c.type === 'PodScheduled');
    expect(scheduled?.status).toBe('True');
  });

  it('cascades deletes through ownerReferences (the real garbage collector)', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' }, data: { a: '1' } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace, name: 'owner', propagationPolicy: 'Background' });
    await eventually('the dependent ConfigMap to be collected', async () => {
      try {
        await core.readNamespacedConfigMap({ namespace, name: 'dependent' });
        return undefined;
      } catch (err) {
        if (statusOf(err) === 404) return true;
        throw err;
      }
    });
  });

  it('mints service-account kubeconfigs that RBAC applies to', async () => {
    const sa = await serviceAccountKubeconfig(env, { namespace, name: 'agent' });
    expect(sa.user).toBe(`system:serviceaccount:${namespace}:agent`);
    const asAgent = loadKubeConfig(sa.kubeconfigPath).makeApiClient(CoreV1Api);
    const denied = await asAgent.listNode().then(() => 200, (err: unknown) => statusOf(err));
    expect(denied).toBe(403);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const name = `testenv-read-nodes-${process.pid}`;
    await rbac.createClusterRole({ body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }] } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace }],
      },
    });
    try {
      const nodes = await eventually('RBAC to allow listing nodes', () => asAgent.listNode().catch(() => undefined), 30_000);
      expect(nodes.items.map((n) => n.metadata?.name)).toContain(nodeName);
      // Still nothing beyond the grant.
      expect(await asAgent.listNamespacedSecret({ namespace }).then(() => 200, (err: unknown) => statusOf(err))).toBe(403);
    } finally {
      await rbac.deleteClusterRoleBinding({ name }).catch(() => {});
      await rbac.deleteClusterRole({ name }).catch(() => {});
    }
  });

  it('restarts a crashed API server in place: etcd state survives, scheduler and controller-manager carry on', async () => {
    const before = env.pids();
    expect(before['kube-apiserver']).toBeGreaterThan(0);
    await env.stopComponent('kube-apiserver', { signal: 'SIGKILL' });
    expect(processGone(before['kube-apiserver']!)).toBe(true);
    await expect(core.readNamespace({ name: namespace })).rejects.toThrow();
    await env.startComponent('kube-apiserver');
    const after = env.pids();
    expect(after['kube-apiserver']).toBeGreaterThan(0);
    expect(after['kube-apiserver']).not.toBe(before['kube-apiserver']);
    expect((await core.readNamespace({ name: namespace })).metadata?.name).toBe(namespace);
    // The other components rode out the outage (same processes) and still do their jobs.
    expect(after['kube-scheduler']).toBe(before['kube-scheduler']);
    expect(after['kube-controller-manager']).toBe(before['kube-controller-manager']);
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'after-restart' },
        spec: { containers: [{ name: 'compute', image: 'example.invalid/none:1' }], nodeSelector: { 'kubernetes.io/hostname': nodeName } },
      },
    });
    const bound = await eventually('the scheduler to bind a Pod after the restart', async () => {
      const p = await core.readNamespacedPod({ namespace, name: 'after-restart' });
      return p.spec?.nodeName;
    });
    expect(bound).toBe(nodeName);
  });
});

describe.skipIf(!testenv)('virtops testenv up/down (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'virtops-testenv-cli-'));
  });
  afterAll(async () => {
    // Never leave processes behind even when an assertion failed mid-way.
    await run('npx', ['tsx', cli, 'testenv', 'down', '--dir', dir]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('up starts four background processes that outlive the CLI; down leaves none', async () => {
    const up = await run('npx', ['tsx', cli, 'testenv', 'up', '--dir', dir, '--user', 'alice=devs'], { timeout: 300_000 });
    const kubeconfigPath = up.stdout.trim();
    expect(kubeconfigPath).toBe(join(dir, 'kubeconfig'));
    const info = readControlPlane(dir)!;
    const pids = COMPONENTS.map((c) => Number(readFileSync(join(dir, `${c}.pid`), 'utf8')));
    // The CLI has exited; the control plane is still serving.
    for (const pid of pids) expect(processGone(pid)).toBe(false);
    const version = await loadKubeConfig(kubeconfigPath).makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(info.kubernetesVersion);
    // The extra static user authenticates (and, without grants, is forbidden).
    const alice = info.users.find((u) => u.name === 'alice')!;
    expect(alice.groups).toEqual(['devs']);
    const asAlice = loadKubeConfig(alice.kubeconfigPath).makeApiClient(CoreV1Api);
    expect(await asAlice.listNamespace().then(() => 200, (err: unknown) => statusOf(err))).toBe(403);

    await run('npx', ['tsx', cli, 'testenv', 'down', '--dir', dir]);
    for (const pid of pids) expect(processGone(pid)).toBe(true);
    for (const c of COMPONENTS) expect(existsSync(join(dir, `${c}.pid`))).toBe(false);
  });
});
