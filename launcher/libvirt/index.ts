export * from './driver.js';
export * from './errors.js';
export { NativeLibvirtDriver, type NativeDriverOptions } from './native.js';
export { parseVirshEventLine, diffDomainStates } from './events.js';
export { backoffDelay, sleep } from './backoff.js';

import { NativeLibvirtDriver, type NativeDriverOptions } from './native.js';
import type { LibvirtDriver } from './driver.js';

/** The N-API binding driver; lifecycle events from `virsh event` (default) or polling (`eventSource: 'poll'`). */
export function createLibvirtDriver(opts: NativeDriverOptions): LibvirtDriver {
  return new NativeLibvirtDriver(opts);
}
