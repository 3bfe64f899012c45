/**
 * RBAC the cluster code needs beyond synth/install.ts's CONTROLLER_RULES / AGENT_RULES,
 * listed verb by verb from the calls in kube.ts. Not silently merged into install.ts (that is
 * synth's file): the integration tests bind exactly install.ts's rules plus these, so a call
 * that needs anything else fails there.
 *
 * - Controller, applying dist/: CRDs are server-side applied (`patch`, which creates when
 *   missing; `get` to wait for Established), the inventory ConfigMap in its own namespace is
 *   applied and read. Objects of other kinds a repository puts in dist/ need their own
 *   rules (as Flux's kustomize-controller needs rights for what it applies).
 * - Agent in process-runtime mode (a virtual kubelet): registers its Node (`create`),
 *   writes launcher Pod status (`pods/status patch`), removes a terminated Pod for good
 *   (`pods delete`, grace 0, as kubelet does), renews its Lease in kube-node-lease.
 */
import type { k8s } from 'cdk8s-plus-33';

export const CONTROLLER_APPLY_RULES: k8s.PolicyRule[] = [
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['create', 'patch'] },
];

/** Namespaced to the controller's namespace (a Role). */
export const CONTROLLER_INVENTORY_RULES: k8s.PolicyRule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch'] },
];

export const PROCESS_RUNTIME_AGENT_RULES: k8s.PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['create'] },
  { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['delete'] },
];

/** Namespaced to kube-node-lease (a Role). */
export const AGENT_NODE_LEASE_RULES: k8s.PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];
