import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { convertFeatures } from '../../../launcher/convert/features.js';
import { conversionError } from './helpers.js';

const run = (f: api.Features | undefined, requiresSmm = false, diag = new Diagnostics()) =>
  convertFeatures(f, { requiresSmm, emulation: 'kvm' }, diag);

describe('features', () => {
  it.each([
    ['ACPI on by default', undefined, { acpi: {} }],
    ['ACPI off', { acpi: { enabled: false } }, {}],
    ['APIC with EOI', { apic: { endOfInterrupt: true } }, { acpi: {}, apic: { '@eoi': 'on' } }],
    ['APIC disabled', { apic: { enabled: false } }, { acpi: {} }],
    ['SMM off', { smm: { enabled: false } }, { acpi: {}, smm: { '@state': 'off' } }],
    ['pvspinlock', { pvspinlock: {} }, { acpi: {}, pvspinlock: { '@state': 'on' } }],
    ['KVM hidden', { kvm: { hidden: true } }, { acpi: {}, kvm: { hidden: { '@state': 'on' } } }],
    [
      'Hyper-V enlightenments',
      { hyperv: { relaxed: {}, vapic: { enabled: false }, spinlocks: { spinlocks: 8191 }, vpindex: {}, synic: {}, synictimer: { direct: {} }, vendorid: { vendorid: 'virtops' }, tlbflush: { extended: {} } } },
      {
        acpi: {},
        hyperv: {
          '@mode': 'custom',
          relaxed: { '@state': 'on' },
          vapic: { '@state': 'off' },
          spinlocks: { '@state': 'on', '@retries': 8191 },
          vpindex: { '@state': 'on' },
          synic: { '@state': 'on' },
          stimer: { '@state': 'on', direct: { '@state': 'on' } },
          vendor_id: { '@state': 'on', '@value': 'virtops' },
          tlbflush: { '@state': 'on' },
        },
      },
    ],
  ] as const)('%s', (_, f, want) => {
    expect(run(f as api.Features | undefined)).toEqual(want);
  });

  it('turns SMM on for Secure Boot, and refuses an explicit SMM off', () => {
    expect(run(undefined, true).smm).toEqual({ '@state': 'on' });
    expect(conversionError(() => run({ smm: { enabled: false } }, true)).path).toBe('spec.domain.features.smm');
  });

  it.each([
    [{ hyperv: { synic: {} } }, 'spec.domain.features.hyperv.synic'],
    [{ hyperv: { ipi: {} } }, 'spec.domain.features.hyperv.ipi'],
    [{ hyperv: { vpindex: {}, synic: {}, synictimer: {}, evmcs: {} } }, 'spec.domain.features.hyperv.evmcs'],
    [{ hyperv: { spinlocks: { spinlocks: 100 } } }, 'spec.domain.features.hyperv.spinlocks.spinlocks'],
    [{ hyperv: { vendorid: { vendorid: 'much-too-long-vendor' } } }, 'spec.domain.features.hyperv.vendorid.vendorid'],
  ])('rejects %j at %s', (f, path) => {
    expect(conversionError(() => run(f as api.Features)).path).toBe(path);
  });

  it('warns that tlbflush direct/extended need a newer libvirt', () => {
    const diag = new Diagnostics();
    run({ hyperv: { vpindex: {}, tlbflush: { direct: {}, extended: {} } } }, false, diag);
    expect(diag.warnings).toEqual([
      'spec.domain.features.hyperv.tlbflush.direct: needs libvirt 9.1 or newer; ignored',
      'spec.domain.features.hyperv.tlbflush.extended: needs libvirt 9.1 or newer; ignored',
    ]);
  });

  it('warns about Hyper-V under TCG and about unknown fields', () => {
    const diag = new Diagnostics();
    convertFeatures({ hyperv: { relaxed: {} }, hypervPassthrough: { enabled: true } } as api.Features, { requiresSmm: false, emulation: 'tcg' }, diag);
    expect(diag.warnings).toEqual([
      'spec.domain.features.hypervPassthrough: not supported by virtops; ignored',
      expect.stringMatching(/^spec\.domain\.features\.hyperv: Hyper-V enlightenments are meant for KVM/),
    ]);
  });
});
