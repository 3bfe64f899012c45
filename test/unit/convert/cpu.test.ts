import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import type { Emulation } from '../../../launcher/convert/context.js';
import { convertCpu } from '../../../launcher/convert/cpu.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { conversionError } from './helpers.js';

const dom = (d: Partial<api.DomainSpec>): api.DomainSpec => ({ devices: {}, ...d });

describe('cpu topology', () => {
  it.each([
    ['nothing → 1', {}, 1, [1, 1, 1]],
    ['cores', { cpu: { cores: 4 } }, 4, [1, 4, 1]],
    ['sockets × cores × threads', { cpu: { sockets: 2, cores: 3, threads: 2 } }, 12, [2, 3, 2]],
    ['limits.cpu → sockets', { resources: { limits: { cpu: '3' } } }, 3, [3, 1, 1]],
    ['requests.cpu rounded up', { resources: { requests: { cpu: '1500m' } } }, 2, [2, 1, 1]],
    ['explicit topology wins over resources', { cpu: { threads: 2 }, resources: { limits: { cpu: '8' } } }, 2, [1, 1, 2]],
  ] as const)('%s', (_, d, vcpus, [sockets, cores, threads]) => {
    const r = convertCpu(dom(d as Partial<api.DomainSpec>), 'kvm', new Diagnostics());
    expect(r.vcpus).toBe(vcpus);
    expect(r.xml.vcpu).toEqual({ '@placement': 'static', '#': String(vcpus) });
    expect((r.xml.cpu as Record<string, unknown>).topology).toEqual({ '@sockets': sockets, '@dies': 1, '@cores': cores, '@threads': threads });
  });

  it.each([
    [{ cpu: { cores: 0 } }, 'spec.domain.cpu.cores'],
    [{ cpu: { sockets: 1.5 } }, 'spec.domain.cpu.sockets'],
    [{ resources: { limits: { cpu: 'two' } } }, 'spec.domain.resources.limits.cpu'],
    [{ resources: { requests: { cpu: '0' } } }, 'spec.domain.resources.requests.cpu'],
    [{ cpu: { model: 'Sky lake' } }, 'spec.domain.cpu.model'],
    [{ cpu: { features: [{ name: 'vmx', policy: 'maybe' }] } }, 'spec.domain.cpu.features[0].policy'],
  ])('rejects %j at %s', (d, path) => {
    expect(conversionError(() => convertCpu(dom(d as Partial<api.DomainSpec>), 'kvm', new Diagnostics())).path).toBe(path);
  });
});

describe('cpu model', () => {
  const maximum = { '@mode': 'maximum', '@check': 'none' };
  it.each([
    ['default under kvm', undefined, 'kvm', { '@mode': 'host-model' }, 0],
    ['host-passthrough under kvm', 'host-passthrough', 'kvm', { '@mode': 'host-passthrough' }, 0],
    ['default under tcg', undefined, 'tcg', maximum, 0],
    ['host-model under tcg', 'host-model', 'tcg', maximum, 1],
    ['host-passthrough under tcg', 'host-passthrough', 'tcg', maximum, 1],
    ['named model under tcg', 'qemu64', 'tcg', { '@mode': 'custom', '@match': 'exact', model: { '@fallback': 'allow', '#': 'qemu64' } }, 0],
    ['named model under kvm', 'Skylake-Client', 'kvm', { '@mode': 'custom', '@match': 'exact', model: { '@fallback': 'allow', '#': 'Skylake-Client' } }, 0],
  ] as const)('%s', (_, model, emulation, want, warnings) => {
    const diag = new Diagnostics();
    const r = convertCpu(dom({ cpu: model ? { model } : {} }), emulation as Emulation, diag);
    expect(r.xml.cpu).toMatchObject(want);
    expect(diag.warnings).toHaveLength(warnings);
  });

  it('maps features with require as the default policy', () => {
    const r = convertCpu(dom({ cpu: { features: [{ name: 'pcid' }, { name: 'vmx', policy: 'disable' }] } }), 'kvm', new Diagnostics());
    expect((r.xml.cpu as Record<string, unknown>).feature).toEqual([
      { '@policy': 'require', '@name': 'pcid' },
      { '@policy': 'disable', '@name': 'vmx' },
    ]);
  });

  it('warns about placement fields it cannot honour and unknown fields', () => {
    const diag = new Diagnostics();
    const cpu = { dedicatedCpuPlacement: true, numa: {}, bogus: 1 } as unknown as api.CPU;
    convertCpu(dom({ cpu }), 'kvm', diag);
    expect(diag.warnings).toEqual([
      'spec.domain.cpu.bogus: not supported by virtops; ignored',
      expect.stringMatching(/^spec\.domain\.cpu\.dedicatedCpuPlacement: CPU pinning/),
      expect.stringMatching(/^spec\.domain\.cpu\.numa: /),
    ]);
  });
});
