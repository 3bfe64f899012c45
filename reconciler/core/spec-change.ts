/**
 * Template changes on a running VM. KubeVirt applies a changed template at the next start
 * and flags the VM with condition RestartRequired meanwhile; it never restarts a guest on
 * its own. virtops does the same, unless the VM opts in with the annotation
 * `virtops.io/restart-on-change: "true"`, in which case the reconciler restarts the
 * instance (logged with the reason) so the new spec takes effect right away.
 */
import type { VirtualMachine } from '../../api/kubevirt.js';
import { deepEqualCanonical } from './canonical.js';
import type { ObservedInstance } from './types.js';

export const RESTART_ON_CHANGE_ANNOTATION = 'virtops.io/restart-on-change';

/** The VM's template spec differs from the spec the live instance was started with. */
export function templateChanged(vm: VirtualMachine, observed: ObservedInstance | undefined): boolean {
  if (!observed || isFinal(observed)) return false;
  return !deepEqualCanonical(vm.spec.template.spec, observed.spec);
}

export function restartOnChange(vm: VirtualMachine): boolean {
  return vm.metadata.annotations?.[RESTART_ON_CHANGE_ANNOTATION] === 'true';
}

export function isFinal(observed: ObservedInstance): boolean {
  return observed.phase === 'Succeeded' || observed.phase === 'Failed';
}
