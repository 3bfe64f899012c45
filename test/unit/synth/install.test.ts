import { App, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { AGENT_NAME, CONTROLLER_NAME, InstallChart, INSTALL_NAMESPACE } from '../../../synth/install.js';
import { validateManifest } from '../../../api/validate.js';

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
      `Role/${CONTROLLER_NAME}-leases`, `RoleBinding/${CONTROLLER_NAME}-leases`,
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

  const can = (role: string, group: string, resource: string, verb: string): boolean =>
    (find('ClusterRole', role).rules as Obj[]).some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));

  it.each([
    [CONTROLLER_NAME, 'kubevirt.io', 'virtualmachineinstances', 'create', true],
    [CONTROLLER_NAME, 'kubevirt.io', 'virtualmachines/status', 'patch', true],
    [CONTROLLER_NAME, '', 'pods', 'create', true],
    [CONTROLLER_NAME, '', 'pods', 'delete', true],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'get', true],
    [CONTROLLER_NAME, 'apiextensions.k8s.io', 'customresourcedefinitions', 'create', false],
    [CONTROLLER_NAME, '', 'secrets', 'get', false],
    [CONTROLLER_NAME, '', 'nodes', 'patch', false],
    [AGENT_NAME, 'kubevirt.io', 'virtualmachineinstances/status', 'patch', true],
    [AGENT_NAME, 'kubevirt.io', 'virtualmachineinstances', 'create', false],
    [AGENT_NAME, 'kubevirt.io', 'virtualmachineinstances', 'delete', false],
    [AGENT_NAME, '', 'pods', 'watch', true],
    [AGENT_NAME, '', 'pods', 'create', false],
    [AGENT_NAME, '', 'nodes', 'patch', true],
    [AGENT_NAME, '', 'events', 'create', true],
  ])('%s may %s.%s %s: %s', (role, group, resource, verb, allowed) => {
    expect(can(role, group, resource, verb)).toBe(allowed);
  });

  it('bind each role to its own service account', () => {
    for (const name of [CONTROLLER_NAME, AGENT_NAME]) {
      expect(find('ClusterRoleBinding', name).subjects).toEqual([{ kind: 'ServiceAccount', name, namespace: INSTALL_NAMESPACE }]);
      expect(find('ClusterRoleBinding', name).roleRef.name).toBe(name);
    }
  });

  it('run the controller and the node agent (node name via the downward API, privileged, libvirt host paths)', () => {
    const controller = find('Deployment', CONTROLLER_NAME).spec.template.spec;
    expect(controller.serviceAccountName).toBe(CONTROLLER_NAME);
    expect(controller.containers[0].command).toEqual(['virtops', 'controller']);

    const agent = find('DaemonSet', AGENT_NAME).spec.template.spec;
    const c = agent.containers[0];
    expect(agent.serviceAccountName).toBe(AGENT_NAME);
    expect([...c.command, ...c.args]).toEqual(['virtops', 'agent', '--node', '$(NODE_NAME)']);
    expect(c.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    expect(c.securityContext.privileged).toBe(true);
    expect(agent.volumes).toContainEqual({ name: 'libvirt-run', hostPath: { path: '/var/run/libvirt', type: 'DirectoryOrCreate' } });
  });
});
