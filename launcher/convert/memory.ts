/**
 * Guest memory: `<memory unit="b">` and `<currentMemory>` from memory.guest, else
 * resources.requests.memory, else resources.limits.memory (KubeVirt's order), plus
 * hugepage backing.
 */
import type * as api from '../../api/kubevirt.js';
import { check, ConversionError, type Diagnostics } from './errors.js';
import { ceilQuantity, compareQuantities, QuantityError } from './quantity.js';
import type { XmlNode } from './xml.js';

const MIN_BYTES = 1n << 20n;
const PAGE_SIZES: Record<string, bigint> = { '2Mi': 2n << 20n, '1Gi': 1n << 30n };

export interface MemoryResult {
  bytes: bigint;
  /** `<memory>`, `<currentMemory>` and, with hugepages, `<memoryBacking>`. */
  xml: XmlNode;
}

export function convertMemory(domain: api.DomainSpec, diag: Diagnostics): MemoryResult {
  const candidates: [string, string | undefined][] = [
    ['spec.domain.memory.guest', domain.memory?.guest],
    ['spec.domain.resources.requests.memory', domain.resources?.requests?.memory],
    ['spec.domain.resources.limits.memory', domain.resources?.limits?.memory],
  ];
  for (const [path, q] of candidates) if (q !== undefined) bytesOf(q, path); // validate all given
  const chosen = candidates.find(([, q]) => q !== undefined);
  check(
    chosen !== undefined,
    'spec.domain.memory.guest',
    'the VMI has no memory size',
    'set spec.domain.memory.guest (e.g. "1Gi") or spec.domain.resources.requests.memory',
  );
  const [path, quantity] = chosen;
  const bytes = bytesOf(quantity!, path);
  check(bytes >= MIN_BYTES, path, `${quantity} is below the 1Mi minimum`, 'give the guest at least 1Mi (realistically 64Mi or more)');

  const limit = domain.resources?.limits?.memory;
  for (const [p, q] of candidates.slice(0, 2)) {
    if (q !== undefined && limit !== undefined) {
      check(compareQuantities(q, limit) <= 0, p, `${q} exceeds resources.limits.memory ${limit}`, 'raise the limit or lower the request');
    }
  }
  if (domain.memory?.maxGuest !== undefined) {
    diag.warn('spec.domain.memory.maxGuest', 'memory hotplug is not supported by virtops; the guest gets a fixed size');
  }

  const xml: XmlNode = {
    memory: { '@unit': 'b', '#': bytes.toString() },
    currentMemory: { '@unit': 'b', '#': bytes.toString() },
  };
  const hugepages = domain.memory?.hugepages;
  if (hugepages) {
    const hp = 'spec.domain.memory.hugepages.pageSize';
    const size = hugepages.pageSize;
    check(size !== undefined && size in PAGE_SIZES, hp, `"${size ?? ''}" is not a supported page size`, 'use "2Mi" or "1Gi"');
    const page = PAGE_SIZES[size]!;
    check(bytes % page === 0n, path, `${quantity} is not a multiple of the ${size} hugepage size`, `use a multiple of ${size}`);
    xml.memoryBacking = { hugepages: { page: { '@size': (page >> 10n).toString(), '@unit': 'KiB' } } };
  }
  return { bytes, xml };
}

function bytesOf(q: string, path: string): bigint {
  try {
    const b = ceilQuantity(q);
    if (b < 0n) throw new QuantityError(`"${q}" is negative`);
    return b;
  } catch (e) {
    if (e instanceof QuantityError) throw new ConversionError(path, e.message, 'write a memory size such as "512Mi" or "2Gi"');
    throw e;
  }
}
