/**
 * The effective runStrategy of a VM, as KubeVirt derives it: `runStrategy` wins, the legacy
 * `running: true|false` means Always/Halted, and setting both is an error (KubeVirt's
 * admission webhook rejects it; we refuse to guess which one the author meant).
 */
import { RUN_STRATEGIES, type RunStrategy, type VirtualMachine } from '../../api/kubevirt.js';

export type RunStrategyResult = { ok: true; strategy: RunStrategy } | { ok: false; error: string };

export function effectiveRunStrategy(vm: VirtualMachine): RunStrategyResult {
  const { runStrategy, running } = vm.spec;
  if (runStrategy !== undefined && running !== undefined) {
    return {
      ok: false,
      error: 'spec.running and spec.runStrategy are both set: remove spec.running (legacy) and keep spec.runStrategy',
    };
  }
  if (runStrategy !== undefined) {
    if (!RUN_STRATEGIES.includes(runStrategy)) {
      return { ok: false, error: `spec.runStrategy "${String(runStrategy)}" is unknown: use one of ${RUN_STRATEGIES.join(', ')}` };
    }
    return { ok: true, strategy: runStrategy };
  }
  if (running === true) return { ok: true, strategy: 'Always' };
  // KubeVirt treats a VM with neither field as Halted.
  return { ok: true, strategy: 'Halted' };
}
