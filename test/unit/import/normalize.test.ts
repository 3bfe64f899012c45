import { describe, expect, it } from 'vitest';
import { normalizeVirtualMachine, prepareVirtualMachine, wrapInstance } from '../../../dsl/import/normalize.js';

const vm = (spec: Record<string, unknown>, domain: Record<string, unknown> = {}, tspec: Record<string, unknown> = {}) => ({
  apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a', namespace: 'ns' },
  spec: { runStrategy: 'Always', ...spec, template: { spec: { domain: { machine: { type: 'q35' }, devices: {}, ...domain }, ...tspec } } },
});
const domainOf = (doc: Record<string, unknown>) => (doc.spec as { template: { spec: { domain: Record<string, unknown> } } }).template.spec.domain;

describe('normalizeVirtualMachine: the documented rules', () => {
  it('N1 nulls are absent', () => {
    const n = normalizeVirtualMachine({ ...vm({}), metadata: { name: 'a', namespace: 'ns', creationTimestamp: null } });
    expect(n.metadata).toEqual({ name: 'a', namespace: 'ns' });
  });
  it('N2 neither running nor runStrategy is Halted; either one is kept', () => {
    expect((normalizeVirtualMachine(vm({ runStrategy: undefined })).spec as Record<string, unknown>).runStrategy).toBe('Halted');
    const running = normalizeVirtualMachine({ ...vm({}), spec: { running: true, template: { spec: { domain: { devices: {} } } } } });
    expect(running.spec).toMatchObject({ running: true });
    expect((running.spec as Record<string, unknown>).runStrategy).toBeUndefined();
  });
  it('N3 no namespace is default', () => {
    expect(normalizeVirtualMachine({ ...vm({}), metadata: { name: 'a' } }).metadata).toEqual({ name: 'a', namespace: 'default' });
  });
  it('N4 no or empty machine type is q35', () => {
    expect(domainOf(normalizeVirtualMachine(vm({}, { machine: undefined }))).machine).toEqual({ type: 'q35' });
    expect(domainOf(normalizeVirtualMachine(vm({}, { machine: { type: '' } }))).machine).toEqual({ type: 'q35' });
    expect(domainOf(normalizeVirtualMachine(vm({}, { machine: { type: 'pc' } }))).machine).toEqual({ type: 'pc' });
  });
  it('N5 disk type and bus defaults (lun keeps no bus: its default differs)', () => {
    const d = domainOf(normalizeVirtualMachine(vm({}, { devices: { disks: [{ name: 'a' }, { name: 'b', cdrom: {} }, { name: 'c', lun: {} }, { name: 'd', disk: { bus: 'sata' } }] } })));
    expect((d.devices as { disks: unknown[] }).disks).toEqual([
      { name: 'a', disk: { bus: 'virtio' } }, { name: 'b', cdrom: { bus: 'sata' } }, { name: 'c', lun: {} }, { name: 'd', disk: { bus: 'sata' } },
    ]);
  });
  it('N6 feature states are enabled unless they say otherwise; kvm is not a feature state', () => {
    const d = domainOf(normalizeVirtualMachine(vm({}, { features: { acpi: {}, apic: { enabled: false }, kvm: { hidden: true }, hyperv: { relaxed: {}, spinlocks: { spinlocks: 8191 } } } })));
    expect(d.features).toEqual({
      acpi: { enabled: true }, apic: { enabled: false }, kvm: { hidden: true },
      hyperv: { relaxed: { enabled: true }, spinlocks: { enabled: true, spinlocks: 8191 } },
    });
  });
  it('N7 EFI has Secure Boot unless it says otherwise', () => {
    const on = domainOf(normalizeVirtualMachine(vm({}, { firmware: { bootloader: { efi: {} } } })));
    expect(on.firmware).toEqual({ bootloader: { efi: { secureBoot: true } } });
    const off = domainOf(normalizeVirtualMachine(vm({}, { firmware: { bootloader: { efi: { secureBoot: false } } } })));
    expect(off.firmware).toEqual({ bootloader: { efi: { secureBoot: false } } });
  });
  it('N8 empty labels/annotations and an empty template metadata are absent', () => {
    const n = normalizeVirtualMachine({ ...vm({}), metadata: { name: 'a', namespace: 'ns', labels: {} } });
    expect(n.metadata).toEqual({ name: 'a', namespace: 'ns' });
    const t = normalizeVirtualMachine({ ...vm({}), spec: { runStrategy: 'Always', template: { metadata: { creationTimestamp: null }, spec: { domain: { devices: {} } } } } });
    expect((t.spec as { template: Record<string, unknown> }).template.metadata).toBeUndefined();
  });
  it('N9 volumes follow disk order, networks follow interface order', () => {
    const n = normalizeVirtualMachine(vm({}, { devices: { disks: [{ name: 'b' }, { name: 'a' }], interfaces: [{ name: 'y', bridge: {} }, { name: 'x', masquerade: {} }] } }, {
      volumes: [{ name: 'a', emptyDisk: { capacity: '1Gi' } }, { name: 'orphan', emptyDisk: { capacity: '1Gi' } }, { name: 'b', emptyDisk: { capacity: '1Gi' } }],
      networks: [{ name: 'x', pod: {} }, { name: 'y', multus: { networkName: 'n' } }],
    }));
    const tspec = (n.spec as { template: { spec: { volumes: { name: string }[]; networks: { name: string }[] } } }).template.spec;
    expect(tspec.volumes.map((v) => v.name)).toEqual(['b', 'a', 'orphan']);
    expect(tspec.networks.map((v) => v.name)).toEqual(['y', 'x']);
  });
  it('does not modify its input', () => {
    const input = vm({ runStrategy: undefined }, { machine: undefined });
    const copy = structuredClone(input);
    normalizeVirtualMachine(input);
    expect(input).toEqual(copy);
  });
});

describe('prepareVirtualMachine', () => {
  it('drops what a cluster writes and says so', () => {
    const { vm: out, notes } = prepareVirtualMachine({
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine',
      metadata: {
        name: 'a', uid: 'u', resourceVersion: '1', generation: 3, managedFields: [], finalizers: ['kubevirt.io/virtualMachineControllerFinalize', 'example.com/keep'],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', mine: 'yes' },
      },
      spec: {}, status: { ready: true },
    });
    expect(out).toEqual({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a', finalizers: ['example.com/keep'], annotations: { mine: 'yes' } }, spec: {} });
    expect(notes.join('\n')).toMatch(/status: dropped/);
    expect(notes.join('\n')).toMatch(/metadata\.managedFields: dropped/);
    expect(notes.join('\n')).toMatch(/last-applied-configuration/);
    expect(notes.join('\n')).toMatch(/finalizers/);
  });

  it('wraps a VMI as a VM with runStrategy Once; its labels and annotations go to the template', () => {
    const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'i', namespace: 'n', labels: { a: 'b' }, annotations: { c: 'd' } }, spec: { domain: { devices: {} } } };
    expect(wrapInstance(vmi)).toEqual({
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'i', namespace: 'n' },
      spec: { runStrategy: 'Once', template: { metadata: { labels: { a: 'b' }, annotations: { c: 'd' } }, spec: { domain: { devices: {} } } } },
    });
    expect(prepareVirtualMachine(vmi).notes[0]).toMatch(/runStrategy Once/);
  });
});
