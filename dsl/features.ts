/** Hypervisor features exposed to the guest. `true`/`false` render as `{ enabled: … }`. */
import type * as api from '../api/kubevirt.js';

export interface HypervProps {
  /** @default - not set */ readonly relaxed?: boolean;
  /** @default - not set */ readonly vapic?: boolean;
  /** Spinlock retries; setting it enables the enlightenment. @default - not set */
  readonly spinlocks?: number;
  /** @default - not set */ readonly vpindex?: boolean;
  /** @default - not set */ readonly runtime?: boolean;
  /** @default - not set */ readonly synic?: boolean;
  /** @default - not set */ readonly reset?: boolean;
  /** @default - not set */ readonly frequencies?: boolean;
  /** @default - not set */ readonly reenlightenment?: boolean;
  /** @default - not set */ readonly tlbflush?: boolean;
  /** @default - not set */ readonly ipi?: boolean;
}

export interface FeaturesProps {
  /** @default - not set (KubeVirt enables ACPI) */
  readonly acpi?: boolean;
  /** @default - not set */
  readonly apic?: boolean;
  /** System Management Mode. @default - not set; enabled when EFI Secure Boot needs it */
  readonly smm?: boolean;
  /** @default - not set */
  readonly pvspinlock?: boolean;
  /** Hide the KVM signature from the guest. @default - not set */
  readonly kvmHidden?: boolean;
  /** Hyper-V enlightenments (Windows guests). @default - none */
  readonly hyperv?: HypervProps;
}

const state = (enabled: boolean | undefined): api.FeatureState | undefined =>
  enabled === undefined ? undefined : { enabled };

export function renderFeatures(props: FeaturesProps): api.Features {
  const h = props.hyperv;
  return {
    acpi: state(props.acpi),
    apic: state(props.apic),
    smm: state(props.smm),
    pvspinlock: state(props.pvspinlock),
    kvm: props.kvmHidden === undefined ? undefined : { hidden: props.kvmHidden },
    hyperv: h && {
      relaxed: state(h.relaxed),
      vapic: state(h.vapic),
      spinlocks: h.spinlocks === undefined ? undefined : { enabled: true, spinlocks: h.spinlocks },
      vpindex: state(h.vpindex),
      runtime: state(h.runtime),
      synic: state(h.synic),
      reset: state(h.reset),
      frequencies: state(h.frequencies),
      reenlightenment: state(h.reenlightenment),
      tlbflush: state(h.tlbflush),
      ipi: state(h.ipi),
    },
  };
}
