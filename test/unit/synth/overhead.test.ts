import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { computeOverhead, guestMemoryBytes, OVERHEAD_CONSTANTS as C, vcpuCount } from '../../../synth/overhead.js';
import { formatBytes, MiB, parseQuantity } from '../../../synth/quantity.js';

const spec = (domain: Partial<api.DomainSpec>): api.VirtualMachineInstanceSpec => ({ domain: { devices: {}, ...domain } });
const fixed = C.nodeRuntimeShared + C.launcherMonitor + C.launcher + C.qemuBase;

describe('parseQuantity / formatBytes', () => {
  it.each([
    ['1Gi', 2 ** 30], ['512Mi', 512 * MiB], ['1G', 1e9], ['500m', 0.5], ['2', 2], ['1.5Gi', 1.5 * 2 ** 30], ['1e3', 1000], [4, 4],
  ] as const)('%s → %d', (q, n) => expect(parseQuantity(q)).toBe(n));

  it('names the expected form in the error', () => {
    expect(() => parseQuantity('1 GB')).toThrow(/invalid quantity '1 GB'.*512Mi/);
  });

  it.each([[2 ** 30, '1Gi'], [1244 * MiB, '1244Mi'], [1000, '1000'], [3 * 2 ** 40, '3Ti']] as const)('%d → %s', (b, s) => expect(formatBytes(b)).toBe(s));
});

describe('guest memory and vCPUs', () => {
  it.each([
    ['memory.guest wins', spec({ memory: { guest: '2Gi' }, resources: { requests: { memory: '1Gi' } } }), 2 ** 31],
    ['else requests', spec({ resources: { requests: { memory: '1Gi' }, limits: { memory: '4Gi' } } }), 2 ** 30],
    ['else limits', spec({ resources: { limits: { memory: '4Gi' } } }), 2 ** 32],
    ['else 0', spec({}), 0],
  ])('%s', (_, s, bytes) => expect(guestMemoryBytes(s)).toBe(bytes));

  it.each([
    ['topology product', spec({ cpu: { sockets: 2, cores: 3, threads: 2 } }), 12],
    ['cores only', spec({ cpu: { cores: 4 } }), 4],
    ['from CPU request, rounded up', spec({ resources: { requests: { cpu: '1500m' } } }), 2],
    ['default 1', spec({}), 1],
  ])('%s', (_, s, n) => expect(vcpuCount(s)).toBe(n));
});

describe('computeOverhead', () => {
  it.each([
    ['1Gi, 1 vCPU, VGA, TCG budget', spec({ memory: { guest: '1Gi' } }), {}, 2 * MiB + fixed + C.perVcpu + C.vga + C.tcgCodeCache],
    ['4 vCPUs', spec({ memory: { guest: '1Gi' }, cpu: { cores: 4 } }), {}, 2 * MiB + fixed + 4 * C.perVcpu + C.vga + C.tcgCodeCache],
    ['no graphics device', spec({ memory: { guest: '1Gi' }, devices: { autoattachGraphicsDevice: false } }), {}, 2 * MiB + fixed + C.perVcpu + C.tcgCodeCache],
    ['KVM: no TCG cache', spec({ memory: { guest: '1Gi' } }), { emulation: 'kvm' as const }, 2 * MiB + fixed + C.perVcpu + C.vga],
    ['dedicated IOThread', spec({ memory: { guest: '512Mi' }, devices: { disks: [{ name: 'd', dedicatedIOThread: true }] } }), {}, 1 * MiB + fixed + C.perVcpu + C.ioThread + C.vga + C.tcgCodeCache],
    ['page tables = guest/512', spec({ memory: { guest: '8Gi' } }), { emulation: 'kvm' as const }, 16 * MiB + fixed + C.perVcpu + C.vga],
  ])('%s', (_, s, opts, total) => {
    const o = computeOverhead(s, opts);
    expect(o.total).toBe(total);
    const { total: t, ...parts } = o;
    expect(Object.values(parts).reduce((a, b) => a + b, 0)).toBe(t);
  });

  it('budgets ~72 MiB for the two Node processes (monitor + launcher)', () => {
    const o = computeOverhead(spec({}));
    expect((o.nodeRuntime + o.launcherMonitor + o.launcher) / MiB).toBe(72);
  });
});
