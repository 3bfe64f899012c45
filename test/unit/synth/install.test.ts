import { App, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import {
  AGENT_NAME, AGENT_STATE_DIR, CONTROLLER_LEASE_NAME, PROCESS_RUNTIME_AGENT_RULES, CONTROLLER_NAME, InstallChart, INSTALL_NAMESPACE, INVENTORY_CONFIGMAP_NAME, NODE_LEASE_NAMESPACE, VIRTOPS_CRD_NAMES,
} from '../../../synth/install.js';
import { ALL_CRDS, renderCrd } from '../../../synth/crds.js';
import { validateManifest } from '../../../api/validate.js';
import { DEFAULT_NODE_SOCKET_DIR } from '../../../synth/launcher-pod.js';
import { DEFAULT_STATE_DIR } from '../../../reconciler/agent/host-config.js';

type Obj = Record<string, any>;
const objects: Obj[] = Testing.synth(new InstallChart(new App(), 'install'));
const find = (kind: string, name: string): Obj => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind} ${name} not rendered`);
  return o;
};

describe('install manifests', () => {
  it('render namespace, service accounts, RBAC, controller and agent', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(expect.arrayContaining([
      `Namespace/${INSTALL_NAMESPACE}`,
      `ServiceAccount/${CONTROLLER_NAME}`, `ServiceAccount/${AGENT_NAME}`,
      `ClusterRole/${CONTROLLER_NAME}`, `ClusterRoleBinding/${CONTROLLER_NAME}`,
      `ClusterRole/${AGENT_NAME}`, `ClusterRoleBinding/${AGENT_NAME}`,
      `Role/${CONTROLLER_NAME}`, `RoleBinding/${CONTROLLER_NAME}`,
      `Deployment/${CONTROLLER_NAME}`, `DaemonSet/${AGENT_NAME}`,
    ]));
  });

  it('pass the shared validator (names, namespaces, containers)', () => {
    for (const o of objects) expect(validateManifest(o), `${o.kind}/${o.metadata.name}`).toEqual([]);
  });

  it('grant no wildcards anywhere', () => {
    const rules = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((o) => o.rules as Obj[]);
    expect(rules.length).toBeGreaterThan(5);
    for (const r of rules) {
      for (const field of ['apiGroups', 'resources', 'verbs']) expect(r[field], JSON.stringify(r)).not.toContain('*');
      expect(r.nonResourceURLs).toBeUndefined();
    }
  });

  /** What RBAC would allow: rules of the named (Cluster)Role, `name` checked against resourceNames. */
  const allows = (rules: Obj[], group: string, resource: string, verb: string, name?: string): boolean =>
    rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb)
      && (!r.resourceNames || (name !== undefined && r.resourceNames.includes(name))));
  const can = (role: string, group: string, resource: string, verb: string, name?: string): boolean =>
    allows(find('ClusterRole', role).rules, group, resource, verb, name);

  it.each([
    [CONTROLLER_NAME, 'kubevirt.io', 'virtualmachineinstances', 'create', undefined, true],
    [CONTROLLER_NAME, 'kubevirt.io', 'virtualmachines/status', 'patch', undefined, true],
    [CONTROLLER_NAME, '', 'pods', 'create', undefined, true],
    [CONTROLLER_NAME, '', 'pods', 'delete', undefined, true],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'get', 'virtualmachines.kubevirt.io', true],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'patch', 'virtualmachineinstances.kubevirt.io', true],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'patch', 'widgets.example.com', false],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'delete', 'virtualmachines.kubevirt.io', false],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'list', undefined, false],
    [CONTROLLER_NAME, '', 'secrets', 'get', undefined, false],
    [CONTROLLER_NAME, '', 'configmaps', 'get', INVENTORY_CONFIGMAP_NAME, false], // only in its namespace (Role)
    [CONTROLLER_NAME, '', 'nodes', 'patch', undefined, false],
    [AGENT_NAME, 'kubevirt.io', 'virtualmachineinstances/status', 'patch', undefined, true],
    [AGENT_NAME, 'kubevirt.io', 'virtualmachineinstances', 'create', undefined, false],
    [AGENT_NAME, 'kubevirt.io', 'virtualmachineinstances', 'delete', undefined, false],
    [AGENT_NAME, '', 'pods', 'watch', undefined, true],
    [AGENT_NAME, '', 'pods', 'create', undefined, false],
    [AGENT_NAME, '', 'pods', 'delete', undefined, false], // process-runtime agents only
    [AGENT_NAME, '', 'nodes', 'create', undefined, false], // process-runtime agents only
    [AGENT_NAME, '', 'nodes', 'patch', undefined, true],
    [AGENT_NAME, '', 'events', 'create', undefined, true],
  ])('%s may %s.%s %s (%s): %s', (role, group, resource, verb, name, allowed) => {
    expect(can(role, group, resource, verb, name)).toBe(allowed);
  });

  it('give the controller its lease and inventory by name, in its namespace only', () => {
    const role = find('Role', CONTROLLER_NAME);
    expect(role.metadata.namespace).toBe(INSTALL_NAMESPACE);
    expect(allows(role.rules, 'coordination.k8s.io', 'leases', 'update', CONTROLLER_LEASE_NAME)).toBe(true);
    expect(allows(role.rules, 'coordination.k8s.io', 'leases', 'update', 'kube-scheduler')).toBe(false);
    expect(allows(role.rules, '', 'configmaps', 'patch', INVENTORY_CONFIGMAP_NAME)).toBe(true);
    expect(allows(role.rules, '', 'configmaps', 'get', 'other')).toBe(false);
    // RBAC cannot restrict create by name: an unnamed create rule, and nothing else unnamed.
    expect(allows(role.rules, '', 'configmaps', 'create')).toBe(true);
    expect(role.rules.filter((r: Obj) => !r.resourceNames).flatMap((r: Obj) => r.verbs)).toEqual(['create', 'create', 'create']);
    // The dashboard's login token: its own Secret by name, no other.
    expect(allows(role.rules, '', 'secrets', 'get', 'virtops-dashboard')).toBe(true);
    expect(allows(role.rules, '', 'secrets', 'get', 'other')).toBe(false);
  });

  it('names the objects the cluster code uses (reconciler/cluster keeps its own copies: no cdk8s import at runtime)', async () => {
    const { INVENTORY_CONFIGMAP } = await import('../../../reconciler/cluster/apply.js');
    const { NODE_LEASE_NAMESPACE: agentLeaseNs } = await import('../../../reconciler/cluster/agent.js');
    const { CONTROLLER_LEASE } = await import('../../../reconciler/cluster/leader.js');
    expect(INVENTORY_CONFIGMAP).toBe(INVENTORY_CONFIGMAP_NAME);
    expect(agentLeaseNs).toBe(NODE_LEASE_NAMESPACE);
    expect(CONTROLLER_LEASE).toBe(CONTROLLER_LEASE_NAME);
    expect(VIRTOPS_CRD_NAMES).toEqual(ALL_CRDS.map((c) => (renderCrd(c) as Obj).metadata.name));
  });

  it('grant process-runtime agents their Node, Pod status, Pod removal and node Lease only when asked', () => {
    const withPr: Obj[] = Testing.synth(new InstallChart(new App(), 'install', { processRuntimeAgents: true }));
    const pr = withPr.find((o) => o.kind === 'ClusterRole' && o.metadata.name === `${AGENT_NAME}-process-runtime`)!;
    expect(allows(pr.rules, '', 'nodes', 'create')).toBe(true);
    expect(allows(pr.rules, '', 'pods/status', 'patch')).toBe(true);
    expect(allows(pr.rules, '', 'pods', 'delete')).toBe(true);
    const leaseRole = withPr.find((o) => o.kind === 'Role' && o.metadata.namespace === NODE_LEASE_NAMESPACE)!;
    expect(allows(leaseRole.rules, 'coordination.k8s.io', 'leases', 'update')).toBe(true);
    const binding = withPr.find((o) => o.kind === 'RoleBinding' && o.metadata.namespace === NODE_LEASE_NAMESPACE)!;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: AGENT_NAME, namespace: INSTALL_NAMESPACE }]);
    expect(objects.some((o) => o.metadata.name === `${AGENT_NAME}-process-runtime` || o.metadata.namespace === NODE_LEASE_NAMESPACE)).toBe(false);
  });

  it('bind each role to its own service account', () => {
    for (const name of [CONTROLLER_NAME, AGENT_NAME]) {
      expect(find('ClusterRoleBinding', name).subjects).toEqual([{ kind: 'ServiceAccount', name, namespace: INSTALL_NAMESPACE }]);
      expect(find('ClusterRoleBinding', name).roleRef.name).toBe(name);
    }
  });

  it('run the controller (git URL from ConfigMap virtops-config) and the node agent beside the kubelet (node name via the downward API, privileged, hostPID, the launcher socket dir)', () => {
    const controller = find('Deployment', CONTROLLER_NAME).spec.template.spec;
    expect(controller.serviceAccountName).toBe(CONTROLLER_NAME);
    expect(controller.containers[0].command).toEqual(['virtops', 'controller']);
    // Read-only root filesystem: the git clone needs a writable, restart-surviving dir.
    expect(controller.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
    // Real kubelet nodes: launcher Pods run their own libvirt daemon (test/unit/cluster/libvirt-daemon.test.ts).
    expect(controller.containers[0].args).toEqual(['--repo', '$(VIRTOPS_REPO)', '--cache-dir', '/var/cache/virtops/source', '--launcher-libvirt-daemon', 'pod', '--launcher-socket-dir', '/var/lib/virtops/launchers']);
    // Not shipped (a re-apply must not overwrite it): until it exists the Pod waits, naming it.
    expect(controller.containers[0].env).toContainEqual({ name: 'VIRTOPS_REPO', valueFrom: { configMapKeyRef: { name: 'virtops-config', key: 'repo' } } });
    // glibc (the image is Debian's) returns the start-up heap and keeps one malloc arena, in both daemons.
    expect(controller.containers[0].env).toContainEqual({ name: 'GLIBC_TUNABLES', value: 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072' });
    // V8's young generation capped, so a burst of watch events does not grow the controller by ~30 MiB.
    expect(controller.containers[0].env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' });
    expect(objects.some((o) => o.kind === 'ConfigMap')).toBe(false);
    expect(controller.containers[0].volumeMounts).toEqual([{ name: 'cache', mountPath: '/var/cache/virtops' }]);
    expect(controller.volumes).toEqual([{ name: 'cache', emptyDir: {} }]);

    const agent = find('DaemonSet', AGENT_NAME).spec.template.spec;
    const c = agent.containers[0];
    expect(agent.serviceAccountName).toBe(AGENT_NAME);
    expect([...c.command, ...c.args]).toEqual(['virtops', 'agent', '--node', '$(NODE_NAME)']);
    expect(c.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    // glibc (the image is Debian's) returns the start-up heap and keeps one malloc arena.
    expect(c.env).toContainEqual({ name: 'GLIBC_TUNABLES', value: 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072' });
    expect(c.env.map((e: { name: string }) => e.name)).not.toContain('NODE_OPTIONS');
    expect(c.securityContext.privileged).toBe(true);
    expect(agent.hostPID).toBe(true);
    // Synth's default nodeSocketDir = the agent's default --launcher-socket-dir; the claims, snapshot
    // copies and image cache under its default --state-dir, at the same paths (a claim's local PV
    // names the host path); nothing of the host's libvirt.
    expect(AGENT_STATE_DIR).toBe(DEFAULT_STATE_DIR);
    const dirs = [['launcher-sockets', DEFAULT_NODE_SOCKET_DIR], ['claims', `${DEFAULT_STATE_DIR}/pvcs`], ['snapshots', `${DEFAULT_STATE_DIR}/snapshots`], ['images', `${DEFAULT_STATE_DIR}/images`]];
    expect(agent.volumes).toEqual(dirs.map(([name, path]) => ({ name, hostPath: { path, type: 'DirectoryOrCreate' } })));
    expect(c.volumeMounts).toEqual(dirs.map(([name, mountPath]) => ({ name, mountPath })));
  });

  it('give every agent the DataVolume and snapshot rights (it imports and copies beside a kubelet too), process-runtime agents only Node, Pod status and removal on top', () => {
    const agent = find('ClusterRole', AGENT_NAME).rules;
    for (const [g, r, v] of [
      ['cdi.kubevirt.io', 'datavolumes', 'patch'], ['cdi.kubevirt.io', 'datavolumes/status', 'patch'], ['', 'persistentvolumes', 'create'], ['', 'persistentvolumeclaims', 'create'],
      ['snapshot.kubevirt.io', 'virtualmachinesnapshots/status', 'patch'], ['kubevirt.io', 'virtualmachines', 'patch'],
    ] as const) expect(allows(agent, g, r, v), `${g}/${r} ${v}`).toBe(true);
    expect(PROCESS_RUNTIME_AGENT_RULES.map((r) => `${r.resources!.join()}:${r.verbs.join()}`)).toEqual(['nodes:create', 'pods/status:patch', 'pods:delete']);
  });
});
