/**
 * Grace periods, one owner for every part (synth, reconcilers, node agents, launcher):
 *
 *   VMI grace      spec.terminationGracePeriodSeconds, KubeVirt's default 30 s: how long
 *                  the guest gets between the ACPI power-button press and a destroy.
 *   launcher flag  VMI grace + 15 s (--grace-period-seconds): the launcher's own deadline,
 *                  so the node agent, not the launcher's SIGTERM path, normally tears down.
 *   launcher Pod   VMI grace + 30 s (Pod terminationGracePeriodSeconds): kubelet's SIGKILL
 *                  comes only after the launcher had its chance.
 *
 * The paddings are KubeVirt's (virt-controller renders the virt-launcher Pod the same way).
 */
import type { VirtualMachineInstanceSpec } from './kubevirt.js';

export const DEFAULT_VMI_GRACE_SECONDS = 30;
export const LAUNCHER_GRACE_PADDING_SECONDS = 15;
export const LAUNCHER_POD_GRACE_PADDING_SECONDS = 30;

/** The guest's grace period: the VMI's own, else KubeVirt's default. */
export function vmiGraceSeconds(spec: Pick<VirtualMachineInstanceSpec, 'terminationGracePeriodSeconds'> | undefined): number {
  const g = spec?.terminationGracePeriodSeconds;
  return typeof g === 'number' && Number.isFinite(g) && g >= 0 ? g : DEFAULT_VMI_GRACE_SECONDS;
}

/** The launcher's --grace-period-seconds for this VMI. */
export function launcherGraceSeconds(spec: Pick<VirtualMachineInstanceSpec, 'terminationGracePeriodSeconds'> | undefined): number {
  return vmiGraceSeconds(spec) + LAUNCHER_GRACE_PADDING_SECONDS;
}

/** The launcher Pod's terminationGracePeriodSeconds for this VMI. */
export function launcherPodGraceSeconds(spec: Pick<VirtualMachineInstanceSpec, 'terminationGracePeriodSeconds'> | undefined): number {
  return vmiGraceSeconds(spec) + LAUNCHER_POD_GRACE_PADDING_SECONDS;
}
