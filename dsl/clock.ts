/** The guest clock: its offset from the host (UTC or a timezone) and its timers. */
import type * as api from '../api/kubevirt.js';

export class ClockOffset {
  /** UTC plus `offsetSeconds` (Linux guests expect UTC). */
  public static utc(offsetSeconds?: number): ClockOffset {
    return new ClockOffset({ utc: { offsetSeconds } });
  }

  /** Local time of an IANA timezone such as `Europe/Berlin` (Windows guests expect local time). */
  public static timezone(name: string): ClockOffset {
    return new ClockOffset({ timezone: name });
  }

  private constructor(private readonly spec: Pick<api.Clock, 'utc' | 'timezone'>) {}

  /** @internal */
  public _toKube(): Pick<api.Clock, 'utc' | 'timezone'> {
    return structuredClone(this.spec);
  }
}

/** Timer settings, as in KubeVirt (`hpet`, `pit`, `rtc`, `kvm`, `hyperv`). */
export type TimerProps = NonNullable<api.Clock['timer']>;

export interface ClockProps {
  /** @default ClockOffset.utc() */
  readonly offset?: ClockOffset;
  /** @default - none (hypervisor defaults) */
  readonly timers?: TimerProps;
}

export function renderClock(props: ClockProps): api.Clock {
  return { ...(props.offset ?? ClockOffset.utc())._toKube(), timer: props.timers && structuredClone(props.timers) };
}
