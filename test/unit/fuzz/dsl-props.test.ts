/**
 * Fuzz: DSL props (dsl/: VirtualMachine and its props, Size/Cpu in dsl/size.ts, the
 * cloud-init builder dsl/cloud-init.ts, networks, volumes, disks). Arbitrary props within
 * their TypeScript types → either an eager factory error (`Size.parse('x'): ... Fix: ...`)
 * or synth-time validation messages that each name the construct and the manifest field
 * (`test/vm: spec.template.spec.domain.cpu.cores: ... Fix: ...`), or no messages and a
 * manifest that the one validator (api/validate.ts) accepts; never a TypeError or the like.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateManifest } from '../../../api/validate.js';
import {
  CloudConfig, Cpu, DiskBus, EvictionStrategy, InterfaceBinding, InterfaceModel, Network, NetworkConfig, NetworkData, RunStrategy, Size, UserData,
  VirtualMachine, Volume, findPlaintextSecrets, isQuantity, quantityValue, type CloudConfigProps, type VirtualMachineProps,
} from '../../../dsl/index.js';
import { testChart } from '../dsl/helpers.js';
import { FUZZ, isCrashKind, params } from './config.js';

const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined, freq: 2 });
const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
const str = fc.oneof(label, fc.string({ maxLength: 30 }), fc.constantFrom('', ' ', 'a'.repeat(64), 'a'.repeat(300), 'My_VM', 'web.lab', '-x', '\u0000', 'é', '../x', 'a/b', 'x:y'));
const num = fc.oneof(fc.integer({ min: -5, max: 300 }), fc.double(), fc.constantFrom(0, -1, 0.5, 1.5, 2 ** 31, 2 ** 53 + 1, Number.NaN, Infinity, -Infinity, -0));
const dict = fc.dictionary(str, str, { maxKeys: 3 });

/** A factory call: the value, or the error it threw (the DSL validates literals eagerly). */
type Made<T> = { ok: T } | { err: unknown };
function make<T>(f: () => T): Made<T> {
  try {
    return { ok: f() };
  } catch (err) {
    return { err };
  }
}
const size = fc.oneof(
  fc.tuple(fc.constantFrom('bytes', 'kibibytes', 'mebibytes', 'gibibytes', 'tebibytes') as fc.Arbitrary<'bytes' | 'kibibytes' | 'mebibytes' | 'gibibytes' | 'tebibytes'>, num).map(([u, n]) => () => Size[u](n)),
  fc.oneof(str, fc.constantFrom('1Gi', '512Mi', '1.5Gi', '1e3', '1E', '0', '-1Gi', '1k', '100m', '0.5', '1e400', '9999999999999999999Ei')).map((s) => () => Size.parse(s)),
);
const cpu = fc.oneof(
  num.map((n) => () => Cpu.units(n)),
  num.map((n) => () => Cpu.millis(n)),
  fc.oneof(str, fc.constantFrom('1', '500m', '0.001', '1.0001', '-1', '1e3', '0m')).map((s) => () => Cpu.parse(s)),
);

const cloudConfigProps: fc.Arbitrary<CloudConfigProps> = fc.record({
  hostname: opt(str), fqdn: opt(str),
  users: opt(fc.array(fc.record({ name: str, sudo: opt(str), groups: opt(fc.array(str, { maxLength: 2 })), shell: opt(str), lockPasswd: opt(fc.boolean()), sshAuthorizedKeys: opt(fc.array(str, { maxLength: 2 })), extra: opt(fc.dictionary(fc.oneof(str, fc.constantFrom('passwd', 'plain_text_passwd', 'hashed_passwd')), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 })) }, { requiredKeys: ['name'] }), { maxLength: 3 })),
  keepDefaultUser: opt(fc.boolean()),
  sshAuthorizedKeys: opt(fc.array(str, { maxLength: 3 })),
  packages: opt(fc.array(str, { maxLength: 3 })),
  writeFiles: opt(fc.array(fc.record({ path: str, content: fc.string({ unit: 'binary', maxLength: 50 }), permissions: opt(str), owner: opt(str), encoding: opt(fc.constantFrom('b64', 'base64', 'gzip', 'gz', 'gz+b64', 'gzip+base64')), append: opt(fc.boolean()), defer: opt(fc.boolean()) }, { requiredKeys: ['path', 'content'] }), { maxLength: 2 })),
  bootcmd: opt(fc.array(fc.oneof(str, fc.array(str, { maxLength: 3 })), { maxLength: 3 })),
  runcmd: opt(fc.array(fc.oneof(str, fc.constantFrom('echo root:x | chpasswd', 'passwd --stdin root'), fc.array(str, { maxLength: 3 })), { maxLength: 3 })),
  extra: opt(fc.dictionary(fc.oneof(str, fc.constantFrom('users', 'runcmd', 'chpasswd', 'password', 'ssh_pwauth')), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 3 })),
}, { requiredKeys: [] });

const volume = fc.oneof(
  fc.record({ image: str, path: opt(str) }).map((o) => () => Volume.fromContainerDisk(o.image, o.path === undefined ? {} : { path: o.path })),
  size.map((s) => () => Volume.fromEmptyDisk(s())),
  str.map((c) => () => Volume.fromPersistentVolumeClaim(c)),
  str.map((c) => () => Volume.fromDataVolume(c)),
  str.map((c) => () => Volume.fromEphemeral(c)),
  str.map((c) => () => Volume.fromHostDisk(c)),
  str.map((c) => () => Volume.fromSecret(c)),
  str.map((c) => () => Volume.fromConfigMap(c)),
  fc.tuple(opt(cloudConfigProps), opt(fc.oneof(fc.string({ maxLength: 60 }), fc.constant('#cloud-config\npassword: hunter2\n'))), opt(fc.dictionary(str, fc.record({ dhcp4: opt(fc.boolean()), addresses: opt(fc.array(str, { maxLength: 2 })), mtu: opt(num) }, { requiredKeys: [] }), { maxKeys: 2 })), fc.boolean(), fc.boolean())
    .map(([cc, text, eth, drive, allow]) => () => {
      const userData = cc ? UserData.fromCloudConfig(new CloudConfig(cc)) : text !== undefined ? UserData.fromString(text) : undefined;
      const networkData = eth ? NetworkData.fromConfig(new NetworkConfig({ ethernets: eth })) : undefined;
      const props = { ...(userData ? { userData } : {}), ...(networkData ? { networkData } : {}), allowPlaintextSecrets: allow };
      return drive ? Volume.fromCloudInitConfigDrive(props) : Volume.fromCloudInitNoCloud(props);
    }),
);
const disk = fc.record({ name: str, volume, bus: opt(fc.constantFrom(...Object.values(DiskBus))), bootOrder: opt(num) });
const nic = fc.record({
  name: str, multus: opt(str), binding: opt(fc.constantFrom(...Object.values(InterfaceBinding))), model: opt(fc.constantFrom(...Object.values(InterfaceModel))),
  macAddress: opt(fc.oneof(str, fc.constantFrom('02:00:00:00:00:01', '02-00-00-00-00-01', 'zz:zz:zz:zz:zz:zz'))), bootOrder: opt(num),
  ports: opt(fc.array(fc.record({ port: num, name: opt(str) }, { requiredKeys: ['port'] }), { maxLength: 2 })),
});

const wild = fc.record({
  name: opt(str), namespace: opt(str), labels: opt(dict), annotations: opt(dict), templateLabels: opt(dict), templateAnnotations: opt(dict),
  runStrategy: opt(fc.constantFrom(...Object.values(RunStrategy))), running: opt(fc.boolean()),
  cores: opt(num), sockets: opt(num), threads: opt(num), model: opt(str), cpuRequest: opt(cpu), cpuLimit: opt(cpu),
  guest: opt(size), memRequest: opt(size), memLimit: opt(size),
  machineType: opt(str), hostname: opt(str), subdomain: opt(str), architecture: opt(str), terminationGracePeriodSeconds: opt(num),
  evictionStrategy: opt(fc.constantFrom(...Object.values(EvictionStrategy))), nodeSelector: opt(dict),
  tolerations: opt(fc.array(fc.record({ key: opt(str), operator: opt(fc.constantFrom('Exists' as const, 'Equal' as const)), value: opt(str), effect: opt(fc.constantFrom('NoSchedule' as const, 'NoExecute' as const)), tolerationSeconds: opt(num) }, { requiredKeys: [] }), { maxLength: 2 })),
  instancetype: opt(fc.record({ name: str })), defaultPodNetwork: opt(fc.boolean()), rng: opt(fc.boolean()), autoattachSerialConsole: opt(fc.boolean()),
  disks: fc.array(disk, { maxLength: 3 }), nics: fc.array(nic, { maxLength: 3 }),
}, { requiredKeys: ['disks', 'nics'] });
type Gen = typeof wild extends fc.Arbitrary<infer T> ? T : never;
/** A VM that validates: the starting point of mutated props. */
const sane: fc.Arbitrary<Gen> = fc.record({
  name: label, guest: fc.integer({ min: 64, max: 8192 }).map((n) => () => Size.mebibytes(n)), cores: opt(fc.integer({ min: 1, max: 8 })),
  runStrategy: opt(fc.constantFrom(...Object.values(RunStrategy))), labels: opt(fc.dictionary(label, label, { maxKeys: 2 })),
  disks: fc.uniqueArray(fc.record({ name: label, volume: fc.constant(() => Volume.fromContainerDisk('quay.io/kubevirt/cirros-container-disk-demo')), bus: opt(fc.constantFrom(DiskBus.VIRTIO, DiskBus.SATA)), bootOrder: fc.constant(undefined) }), { maxLength: 2, selector: (d) => d.name }),
  nics: fc.constant([]),
}, { requiredKeys: ['name', 'guest', 'disks', 'nics'] }) as fc.Arbitrary<Gen>;
const WILD_KEYS: Array<keyof Gen> = [
  'name', 'namespace', 'labels', 'annotations', 'templateLabels', 'templateAnnotations', 'runStrategy', 'running', 'cores', 'sockets', 'threads', 'model',
  'cpuRequest', 'cpuLimit', 'guest', 'memRequest', 'memLimit', 'machineType', 'hostname', 'subdomain', 'architecture', 'terminationGracePeriodSeconds',
  'evictionStrategy', 'nodeSelector', 'tolerations', 'instancetype', 'defaultPodNetwork', 'rng', 'autoattachSerialConsole', 'disks', 'nics',
];
/** Mutated props: a valid VM with 0-3 of its props replaced by arbitrary ones (of the right types). */
const props: fc.Arbitrary<Gen> = fc.tuple(sane, wild, fc.array(fc.constantFrom<keyof Gen>(...WILD_KEYS), { maxLength: 3 }))
  .map(([base, w, keys]) => {
    const out: Record<string, unknown> = { ...base };
    for (const k of keys) out[k] = (w as Record<string, unknown>)[k];
    return out as Gen;
  });

/** An eager factory error: an Error (not a TypeError/RangeError) that says how to fix the call. */
function expectFactoryError(err: unknown): void {
  expect(isCrashKind(err), `factory crashed: ${String((err as Error)?.stack ?? err)}`).toBe(false);
  expect((err as Error).message).toMatch(/Fix/);
}

/** Builds the VM from generated props; returns undefined when a factory refused (checked). */
function build(g: Gen): VirtualMachine | undefined {
  const unwrap = <T>(f: (() => T) | undefined): T | undefined | typeof REFUSED => {
    if (f === undefined) return undefined;
    const m = make(f);
    if ('err' in m) {
      expectFactoryError(m.err);
      return REFUSED;
    }
    return m.ok;
  };
  const REFUSED = Symbol('refused');
  const parts = { cpuRequest: unwrap(g.cpuRequest), cpuLimit: unwrap(g.cpuLimit), guest: unwrap(g.guest), memRequest: unwrap(g.memRequest), memLimit: unwrap(g.memLimit) };
  if (Object.values(parts).includes(REFUSED as never)) return undefined;
  const volumes = g.disks.map((d) => unwrap(d.volume));
  if (volumes.includes(REFUSED as never)) return undefined;
  const vmProps: VirtualMachineProps = {
    ...(g.name !== undefined ? { name: g.name } : {}), namespace: g.namespace, labels: g.labels, annotations: g.annotations,
    templateLabels: g.templateLabels, templateAnnotations: g.templateAnnotations, runStrategy: g.runStrategy, running: g.running,
    cpu: { cores: g.cores, sockets: g.sockets, threads: g.threads, model: g.model, request: parts.cpuRequest as Cpu | undefined, limit: parts.cpuLimit as Cpu | undefined },
    memory: { guest: parts.guest as Size | undefined, request: parts.memRequest as Size | undefined, limit: parts.memLimit as Size | undefined },
    machineType: g.machineType, hostname: g.hostname, subdomain: g.subdomain, architecture: g.architecture,
    terminationGracePeriodSeconds: g.terminationGracePeriodSeconds, evictionStrategy: g.evictionStrategy, nodeSelector: g.nodeSelector,
    tolerations: g.tolerations, instancetype: g.instancetype, defaultPodNetwork: g.defaultPodNetwork, rng: g.rng, autoattachSerialConsole: g.autoattachSerialConsole,
  };
  const vm = new VirtualMachine(testChart(), 'vm', vmProps);
  g.disks.forEach((d, i) => vm.addDisk(d.name, volumes[i] as Volume, { bus: d.bus, bootOrder: d.bootOrder }));
  for (const n of g.nics) vm.addInterface(n.name, n.multus === undefined ? Network.pod() : Network.multus(n.multus), { binding: n.binding, model: n.model, macAddress: n.macAddress, bootOrder: n.bootOrder, ports: n.ports });
  return vm;
}

/** The synth-time contract: messages naming construct and field, or a manifest the validator accepts. */
function expectValidatedOrValid(vm: VirtualMachine): { messages: string[] } {
  let messages: string[] = [];
  let err: unknown;
  try {
    messages = vm.node.validate();
  } catch (e) {
    err = e;
  }
  expect(err, `validate() threw: ${String((err as Error | undefined)?.stack ?? err)}`).toBeUndefined();
  for (const m of messages) {
    // `<construct path>: <field path>: <problem>. Fix: <fix>`
    expect(m.startsWith('test/vm: '), m).toBe(true);
    const field = m.slice('test/vm: '.length).split(': ')[0]!;
    expect(field, m).toMatch(/^(metadata|spec)\b/);
    expect(m, m).toMatch(/\. Fix: /);
  }
  if (messages.length === 0) {
    const manifest = vm.toManifest();
    expect(validateManifest(manifest), JSON.stringify(manifest).slice(0, 2000)).toEqual([]);
  }
  return { messages };
}

describe('fuzz: DSL props', () => {
  it(`Size and Cpu factories on arbitrary numbers and strings → a value, or an Error saying how to fix the call; never a crash (${FUZZ.dslSizes.numRuns} runs, seed ${FUZZ.dslSizes.seed})`, () => {
    fc.assert(
      fc.property(fc.oneof(size, cpu), (f) => {
        const m = make(f as () => Size | Cpu);
        if ('err' in m) return expectFactoryError(m.err);
        expect(typeof m.ok.toQuantity()).toBe('string');
      }),
      params(FUZZ.dslSizes),
    );
  });

  // Found by fuzzing (fixed): the factories accepted amounts past 2^53 that render in
  // exponent form, e.g. Cpu.millis(1e21).toQuantity() was '1e+21m' (not a quantity); they now
  // refuse amounts that are not exact, naming the call and the fix.
  it(`a Size or Cpu the factories accept always renders a valid Kubernetes quantity (${FUZZ.dslSizes.numRuns} runs, seed ${FUZZ.dslSizes.seed})`, () => {
    fc.assert(
      fc.property(fc.oneof(size, cpu, fc.constantFrom(1e21, 2 ** 53, 2 ** 53 - 1, 1e300).chain((n) => fc.constantFrom(() => Cpu.millis(n), () => Cpu.units(n), () => Size.bytes(n), () => Size.gibibytes(n)))), (f) => {
        const m = make(f as () => Size | Cpu);
        if ('err' in m) return expectFactoryError(m.err);
        const q = m.ok.toQuantity();
        expect(isQuantity(q), q).toBe(true);
        expect(Number.isFinite(quantityValue(q)), q).toBe(true);
      }),
      params(FUZZ.dslSizes),
    );
  });

  it(`cloud-init builder on arbitrary users, files, commands and extra keys → cloud-config text (or an Error with a fix for typed keys in extra), never a crash (${FUZZ.dslCloudInit.numRuns} runs, seed ${FUZZ.dslCloudInit.seed})`, () => {
    fc.assert(
      fc.property(cloudConfigProps, (p) => {
        const m = make(() => new CloudConfig(p).render());
        if ('err' in m) return expectFactoryError(m.err);
        expect(m.ok.startsWith('#cloud-config\n')).toBe(true);
        const found = make(() => findPlaintextSecrets(m.ok));
        expect('ok' in found, String((found as { err?: Error }).err)).toBe(true);
      }),
      params(FUZZ.dslCloudInit),
    );
  });

  it(`VirtualMachine with arbitrary typed props, disks, volumes and NICs → messages naming the field, or a manifest validateManifest accepts (${FUZZ.dslProps.numRuns} runs, seed ${FUZZ.dslProps.seed})`, () => {
    let valid = 0;
    fc.assert(
      fc.property(props, (g) => {
        const vm = build(g);
        if (!vm) return;
        if (expectValidatedOrValid(vm).messages.length === 0) valid++;
      }),
      params(FUZZ.dslProps),
    );
    // Not only refusals: some generated VMs must be valid, or the property proves little.
    expect(valid).toBeGreaterThan(0);
  });
});
