import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { convertMemory } from '../../../launcher/convert/memory.js';
import { conversionError } from './helpers.js';

const dom = (d: Partial<api.DomainSpec>): api.DomainSpec => ({ devices: {}, ...d });

describe('memory', () => {
  it.each([
    ['memory.guest first', dom({ memory: { guest: '1Gi' }, resources: { requests: { memory: '512Mi' }, limits: { memory: '2Gi' } } }), 1073741824n],
    ['then requests', dom({ resources: { requests: { memory: '512Mi' }, limits: { memory: '2Gi' } } }), 536870912n],
    ['then limits', dom({ resources: { limits: { memory: '1.5Gi' } } }), 1610612736n],
    ['decimal suffixes', dom({ memory: { guest: '2G' } }), 2000000000n],
  ])('%s', (_, domain, bytes) => {
    const r = convertMemory(domain, new Diagnostics());
    expect(r.bytes).toBe(bytes);
    expect(r.xml).toEqual({ memory: { '@unit': 'b', '#': String(bytes) }, currentMemory: { '@unit': 'b', '#': String(bytes) } });
  });

  it.each([
    [dom({}), 'spec.domain.memory.guest', /no memory size/],
    [dom({ memory: { guest: '1GB' } }), 'spec.domain.memory.guest', /not a Kubernetes quantity/],
    [dom({ memory: { guest: '512Ki' } }), 'spec.domain.memory.guest', /below the 1Mi minimum/],
    [dom({ memory: { guest: '-1Gi' } }), 'spec.domain.memory.guest', /negative/],
    [dom({ memory: { guest: '4Gi' }, resources: { limits: { memory: '2Gi' } } }), 'spec.domain.memory.guest', /exceeds resources.limits.memory/],
    [dom({ resources: { requests: { memory: '3Gi' }, limits: { memory: '2Gi' } } }), 'spec.domain.resources.requests.memory', /exceeds/],
    [dom({ memory: { guest: '1Gi' }, resources: { limits: { memory: 'lots' } } }), 'spec.domain.resources.limits.memory', /not a Kubernetes quantity/],
    [dom({ memory: { guest: '3Mi', hugepages: { pageSize: '2Mi' } } }), 'spec.domain.memory.guest', /not a multiple of the 2Mi/],
    [dom({ memory: { guest: '4Mi', hugepages: { pageSize: '4Mi' } } }), 'spec.domain.memory.hugepages.pageSize', /not a supported page size/],
  ])('rejects %j at %s', (domain, path, problem) => {
    const e = conversionError(() => convertMemory(domain, new Diagnostics()));
    expect(e.path).toBe(path);
    expect(e.problem).toMatch(problem);
    expect(e.fix).not.toBe('');
  });

  it('backs memory with hugepages and warns about maxGuest', () => {
    const diag = new Diagnostics();
    const r = convertMemory(dom({ memory: { guest: '2Gi', maxGuest: '4Gi', hugepages: { pageSize: '1Gi' } } }), diag);
    expect(r.xml.memoryBacking).toEqual({ hugepages: { page: { '@size': '1048576', '@unit': 'KiB' } } });
    expect(diag.warnings).toEqual([expect.stringMatching(/^spec\.domain\.memory\.maxGuest: memory hotplug/)]);
  });
});
