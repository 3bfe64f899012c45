/**
 * Semantic validation of a VirtualMachine manifest: the rules KubeVirt's admission webhook
 * enforces that a schema cannot express (names, references, uniqueness, cross-field
 * conflicts), plus virtops' own (no plain-text passwords in git).
 *
 * A pure function over the manifest, so it sees what is really emitted, escape hatches
 * (JSON patches) included. Each issue names the field, the problem and the fix. The
 * VirtualMachine construct runs it together with the shared schema validator
 * (api/validate.ts), whose findings are merged in through `schemaIssues`.
 */
import * as api from '../api/kubevirt.js';
import { findPlaintextSecrets } from './cloud-init.js';
import { dns1123LabelProblem } from './names.js';
import { isQuantity, quantityValue } from './size.js';

export interface ValidationIssue {
  /** Path of the offending field in the manifest, e.g. `spec.template.spec.volumes[1].name`. */
  readonly field: string;
  readonly problem: string;
  readonly fix: string;
}

export interface ValidationContext {
  /**
   * Cloud-init volumes (by name) allowed to carry plain-text passwords, or `true` for all.
   * @default false
   */
  readonly allowPlaintextSecrets?: boolean | ReadonlySet<string>;
}

/**
 * Turns the shared manifest validator's issues (api/validate.ts: KubeVirt's OpenAPI schema,
 * closed, plus webhook rules) into DSL issues, skipping fields already reported here.
 */
export function schemaIssues(
  issues: ReadonlyArray<{ path: string; message: string; fix?: string }>,
  alreadyReported: readonly ValidationIssue[],
): ValidationIssue[] {
  const seen = new Set(alreadyReported.map((i) => i.field));
  return issues
    .map((i) => ({ field: pointerToField(i.path), problem: i.message, fix: i.fix ?? 'see the KubeVirt API reference for this field' }))
    .filter((i) => !seen.has(i.field));
}

/** `/spec/template/spec/volumes/0/name` → `spec.template.spec.volumes[0].name` */
export function pointerToField(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc === '' ? part : `${acc}.${part}`), '');
}

/** `<constructPath>: <field>: <problem>. Fix: <fix>` */
export function formatIssue(constructPath: string, issue: ValidationIssue): string {
  return `${constructPath}: ${issue.field}: ${issue.problem}. Fix: ${issue.fix}`;
}

const T = 'spec.template.spec';
const DEVICES = `${T}.domain.devices`;
const ONE_MI = 2 ** 20;
const MAC = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const VOLUME_SOURCES = [
  'containerDisk', 'emptyDisk', 'ephemeral', 'cloudInitNoCloud', 'cloudInitConfigDrive', 'persistentVolumeClaim',
  'dataVolume', 'hostDisk', 'secret', 'configMap', 'serviceAccount',
] as const;
const EVICTION_STRATEGIES: readonly string[] = ['None', 'LiveMigrate', 'LiveMigrateIfPossible', 'External'];

export function validateVirtualMachineManifest(vm: api.VirtualMachine, ctx: ValidationContext = {}): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const add = (field: string, problem: string, fix: string): void => {
    issues.push({ field, problem, fix });
  };

  checkMetadata(vm, add);
  checkRunStrategy(vm.spec, add);
  const tspec = vm.spec?.template?.spec;
  if (!tspec?.domain) {
    add(`${T}.domain`, 'is missing', 'give the VM a template with a domain');
    return issues;
  }
  checkCpuAndMemory(vm.spec, add);
  checkFirmwareAndClock(tspec.domain, add);
  const disks = asArray(tspec.domain.devices?.disks);
  const volumes = asArray(tspec.volumes);
  checkDisks(disks, add);
  checkVolumes(volumes, ctx, add);
  checkPairs('disk', disks, `${DEVICES}.disks`, 'volume', volumes, `${T}.volumes`, add);
  const ifaces = asArray(tspec.domain.devices?.interfaces);
  const networks = asArray(tspec.networks);
  checkInterfaces(ifaces, networks, add);
  checkNetworks(networks, add);
  checkPairs('interface', ifaces, `${DEVICES}.interfaces`, 'network', networks, `${T}.networks`, add);
  checkBootOrder(disks, ifaces, add);
  checkScheduling(tspec, add);
  checkAccessCredentials(tspec, volumes, add);
  return issues;
}

/** accessCredentials: a Secret name, one propagation method, and the cloud-init disk or the users it needs. */
function checkAccessCredentials(tspec: api.VirtualMachineInstanceSpec, volumes: api.Volume[], add: Add): void {
  asArray(tspec.accessCredentials).forEach((c, i) => {
    const at = `${T}.accessCredentials[${i}]`;
    if (c.userPassword !== undefined) add(`${at}.userPassword`, 'userPassword credentials are not supported by virtops', 'set the password with cloud-init user-data from a Secret (UserData.fromSecret)');
    const k = c.sshPublicKey;
    if (!k) {
      if (c.userPassword === undefined) add(at, 'has no sshPublicKey', 'use AccessCredential.sshPublicKey(secret, propagation)');
      return;
    }
    const name = k.source?.secret?.secretName;
    const nameProblem = typeof name === 'string' ? dns1123LabelProblem(name) : 'is missing';
    if (nameProblem) add(`${at}.sshPublicKey.source.secret.secretName`, nameProblem, 'name the Secret that holds the public keys');
    const pm = k.propagationMethod ?? {};
    const methods = (['noCloud', 'configDrive', 'qemuGuestAgent'] as const).filter((m) => pm[m] !== undefined);
    if (methods.length !== 1) {
      add(`${at}.sshPublicKey.propagationMethod`, methods.length ? `sets ${methods.join(' and ')}` : 'sets no method', 'set exactly one: SshKeyPropagation.noCloud(), .configDrive() or .qemuGuestAgent(users)');
      return;
    }
    const m = methods[0]!;
    if (m === 'qemuGuestAgent' && !(asArray(pm.qemuGuestAgent?.users).length > 0)) {
      add(`${at}.sshPublicKey.propagationMethod.qemuGuestAgent.users`, 'is empty', 'list the guest users whose authorized_keys get the keys, e.g. qemuGuestAgent([\'debian\'])');
    }
    const needs = m === 'noCloud' ? 'cloudInitNoCloud' : m === 'configDrive' ? 'cloudInitConfigDrive' : undefined;
    if (needs && !volumes.some((v) => (v as unknown as Record<string, unknown>)[needs] !== undefined)) {
      add(`${at}.sshPublicKey.propagationMethod.${m}`, `needs a ${needs} volume to carry the keys`, `add a disk with Volume.${needs === 'cloudInitNoCloud' ? 'fromCloudInitNoCloud' : 'fromCloudInitConfigDrive'}(...), or use SshKeyPropagation.qemuGuestAgent(users)`);
    }
  });
}

type Add = (field: string, problem: string, fix: string) => void;

function asArray<T>(value: T[] | undefined): T[] {
  return Array.isArray(value) ? value : [];
}

function checkMetadata(vm: api.VirtualMachine, add: Add): void {
  // A DNS label, not just a subdomain: the name becomes the launcher Pod's label value.
  const name = vm.metadata?.name ?? '';
  const nameProblem = dns1123LabelProblem(name);
  if (nameProblem) add('metadata.name', `"${name}" ${nameProblem}`, 'use a DNS-1123 label such as "my-vm"');
  const ns = vm.metadata?.namespace;
  const nsProblem = ns === undefined ? undefined : dns1123LabelProblem(ns);
  if (nsProblem) add('metadata.namespace', `"${ns}" ${nsProblem}`, 'use a DNS-1123 label such as "default"');
}

function checkRunStrategy(spec: api.VirtualMachineSpec, add: Add): void {
  if (spec.running !== undefined && spec.runStrategy !== undefined) {
    add('spec.running', `is set together with spec.runStrategy (${spec.runStrategy})`,
      'set only runStrategy (running: true is Always, running: false is Halted)');
  }
  if (spec.runStrategy !== undefined && !api.RUN_STRATEGIES.includes(spec.runStrategy)) {
    add('spec.runStrategy', `"${spec.runStrategy}" is not a run strategy`, `use one of ${api.RUN_STRATEGIES.join(', ')}`);
  }
}

function checkCpuAndMemory(spec: api.VirtualMachineSpec, add: Add): void {
  const domain = spec.template.spec.domain;
  const cpu = domain.cpu ?? {};
  for (const key of ['cores', 'sockets', 'threads'] as const) {
    const v = cpu[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      add(`${T}.domain.cpu.${key}`, `is ${v}; it must be a whole number >= 1`, `set ${key} to 1 or more, or leave it out (default 1)`);
    }
  }

  const memory: Array<[string, string | undefined]> = [
    [`${T}.domain.memory.guest`, domain.memory?.guest],
    [`${T}.domain.resources.requests.memory`, domain.resources?.requests?.memory],
    [`${T}.domain.resources.limits.memory`, domain.resources?.limits?.memory],
  ];
  for (const [field, q] of memory) {
    if (q === undefined) continue;
    const bytes = isQuantity(String(q)) ? quantityValue(String(q)) : undefined;
    if (bytes === undefined) add(field, `"${q}" is not a Kubernetes quantity`, `write a size such as "512Mi" or "4Gi" (Size.parse / Size.gibibytes)`);
    else if (bytes < ONE_MI) add(field, `"${q}" is less than 1Mi`, 'give the guest at least 1Mi of memory (realistically 64Mi or more)');
  }
  const req = quantityOrUndefined(domain.resources?.requests?.memory);
  const lim = quantityOrUndefined(domain.resources?.limits?.memory);
  if (req !== undefined && lim !== undefined && req > lim) {
    add(`${T}.domain.resources.requests.memory`, 'is greater than limits.memory', 'lower the request or raise the limit');
  }
  // The launcher Pod's limit is this limit plus the overhead: a guest above it would be
  // OOM-killed once it touches its memory (KubeVirt refuses it too).
  const guest = quantityOrUndefined(domain.memory?.guest);
  if (guest !== undefined && lim !== undefined && guest > lim) {
    add(`${T}.domain.memory.guest`, `(${domain.memory?.guest}) is greater than resources.limits.memory (${domain.resources?.limits?.memory}), which bounds the launcher Pod`, 'lower memory.guest or raise the limit');
  }
  for (const kind of ['requests', 'limits'] as const) {
    for (const [res, q] of Object.entries(domain.resources?.[kind] ?? {})) {
      if (res !== 'memory' && !isQuantity(String(q))) {
        add(`${T}.domain.resources.${kind}.${res}`, `"${q}" is not a Kubernetes quantity`, 'write a quantity such as "2", "500m" (Cpu.units / Cpu.millis)');
      }
    }
  }

  const hasMemory = domain.memory?.guest !== undefined || domain.resources?.requests?.memory !== undefined
    || domain.resources?.limits?.memory !== undefined;
  // A CPU/memory field beside spec.instancetype is the expansion's to report (api/expand.ts,
  // run at synth by CommonInstancetypes and at every start): it names both fields, once.
  if (!spec.instancetype && !hasMemory) {
    add(`${T}.domain.memory`, 'no guest memory is set', 'give memory: { guest: Size.mebibytes(512) } (or a request), or reference an instancetype');
  }
}

function quantityOrUndefined(q: string | undefined): number | undefined {
  return q === undefined ? undefined : quantityValue(String(q));
}

function checkFirmwareAndClock(domain: api.DomainSpec, add: Add): void {
  const fw = domain.firmware;
  const F = `${T}.domain.firmware`;
  if (fw?.uuid !== undefined && !UUID.test(fw.uuid)) add(`${F}.uuid`, `"${fw.uuid}" is not a UUID`, 'use the form 8-4-4-4-12 hex digits, or leave it out');
  if (fw?.bootloader?.bios && fw.bootloader.efi) add(`${F}.bootloader`, 'sets both bios and efi', 'choose one: Bootloader.bios() or Bootloader.efi()');
  if (fw?.bootloader?.efi?.secureBoot !== false && fw?.bootloader?.efi && domain.features?.smm?.enabled !== true) {
    add(`${T}.domain.features.smm`, 'EFI Secure Boot needs SMM, which is not enabled', 'enable features.smm, or use Bootloader.efi({ secureBoot: false })');
  }
  const kb = fw?.kernelBoot;
  if (kb) {
    if (!kb.container?.image) add(`${F}.kernelBoot.container.image`, 'is missing', 'give the OCI image that holds the kernel/initrd');
    else if (!kb.container.kernelPath && !kb.container.initrdPath) {
      add(`${F}.kernelBoot.container`, 'names neither kernelPath nor initrdPath', 'give kernelPath (e.g. /boot/vmlinuz) and/or initrdPath');
    }
    if (kb.kernelArgs && !kb.container?.kernelPath) add(`${F}.kernelBoot.kernelArgs`, 'is set without container.kernelPath', 'give kernelPath, or drop kernelArgs');
  }
  if (domain.clock?.utc && domain.clock.timezone !== undefined) {
    add(`${T}.domain.clock`, 'sets both utc and timezone', 'choose one: ClockOffset.utc() or ClockOffset.timezone()');
  }
  if (domain.machine?.type !== undefined && domain.machine.type.trim() === '') {
    add(`${T}.domain.machine.type`, 'is empty', 'use a machine type such as "q35", or leave it out');
  }
}

function checkNames<T extends { name?: string }>(items: T[], base: string, what: string, add: Add): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const name = item?.name ?? '';
    const problem = dns1123LabelProblem(name);
    if (problem) add(`${base}[${i}].name`, `${what} name "${name}" ${problem}`, `rename the ${what} to a DNS-1123 label such as "rootdisk"`);
    const first = seen.get(name);
    if (first !== undefined) add(`${base}[${i}].name`, `${what} name "${name}" is already used by ${base}[${first}]`, `give each ${what} a unique name`);
    else seen.set(name, i);
  });
}

function checkBootOrderValue(value: number | undefined, field: string, add: Add): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1)) add(field, `is ${value}; it must be a whole number >= 1`, 'use 1 for the first boot device, 2 for the next, ...');
}

function checkDisks(disks: api.Disk[], add: Add): void {
  const base = `${DEVICES}.disks`;
  checkNames(disks, base, 'disk', add);
  disks.forEach((disk, i) => {
    const kinds = (['disk', 'cdrom', 'lun'] as const).filter((k) => disk[k] !== undefined);
    if (kinds.length > 1) add(`${base}[${i}]`, `sets ${kinds.join(' and ')}`, 'choose one disk type (DiskType.DISK, CDROM or LUN)');
    const bus = disk.cdrom?.bus;
    if (bus === 'virtio') add(`${base}[${i}].cdrom.bus`, 'is virtio, which KubeVirt does not support for a CD-ROM', 'use DiskBus.SATA or DiskBus.SCSI');
    for (const k of kinds) {
      const b = disk[k]?.bus;
      if (b !== undefined && !['virtio', 'sata', 'scsi', 'usb'].includes(b)) add(`${base}[${i}].${k}.bus`, `"${b}" is not a disk bus`, 'use virtio, sata, scsi or usb');
    }
    checkBootOrderValue(disk.bootOrder, `${base}[${i}].bootOrder`, add);
  });
}

function checkVolumes(volumes: api.Volume[], ctx: ValidationContext, add: Add): void {
  const base = `${T}.volumes`;
  checkNames(volumes, base, 'volume', add);
  let cloudInits = 0;
  volumes.forEach((volume, i) => {
    const at = `${base}[${i}]`;
    const sources = VOLUME_SOURCES.filter((s) => volume[s] !== undefined);
    if (sources.length !== 1) {
      add(at, sources.length === 0 ? 'has no source' : `has ${sources.length} sources (${sources.join(', ')})`,
        'give exactly one source, e.g. Volume.fromContainerDisk(...) or Volume.fromEmptyDisk(...)');
    }
    if (volume.containerDisk && !volume.containerDisk.image) add(`${at}.containerDisk.image`, 'is empty', 'give the OCI image reference');
    for (const [field, q] of [['emptyDisk.capacity', volume.emptyDisk?.capacity], ['hostDisk.capacity', volume.hostDisk?.capacity]] as const) {
      if (q === undefined) continue;
      const bytes = quantityValue(String(q));
      if (bytes === undefined || bytes <= 0) add(`${at}.${field}`, `"${q}" is not a positive Kubernetes quantity`, 'write a size such as "2Gi" (Size.gibibytes(2))');
    }
    if (volume.emptyDisk && volume.emptyDisk.capacity === undefined) add(`${at}.emptyDisk.capacity`, 'is missing', 'give a capacity such as Size.gibibytes(2)');
    if (volume.hostDisk?.type === 'DiskOrCreate' && volume.hostDisk.capacity === undefined) {
      add(`${at}.hostDisk.capacity`, 'is required with type DiskOrCreate', 'give the capacity of the image to create');
    }
    for (const kind of ['cloudInitNoCloud', 'cloudInitConfigDrive'] as const) {
      const src = volume[kind];
      if (!src) continue;
      cloudInits++;
      checkCloudInit(src, `${at}.${kind}`, volume.name, ctx, add);
    }
  });
  if (cloudInits > 1) add(base, `has ${cloudInits} cloud-init volumes`, 'keep a single cloudInitNoCloud or cloudInitConfigDrive volume');
}

function checkCloudInit(src: api.CloudInitSource, at: string, volumeName: string, ctx: ValidationContext, add: Add): void {
  const userSources = (['userData', 'userDataBase64', 'secretRef'] as const).filter((k) => src[k] !== undefined);
  const netSources = (['networkData', 'networkDataBase64', 'networkDataSecretRef'] as const).filter((k) => src[k] !== undefined);
  if (userSources.length > 1) add(at, `sets ${userSources.join(' and ')}`, 'give user-data from one source (UserData.fromCloudConfig/fromString/fromBase64/fromSecret)');
  if (netSources.length > 1) add(at, `sets ${netSources.join(' and ')}`, 'give network-data from one source');
  if (userSources.length + netSources.length === 0) add(at, 'has neither user-data nor network-data', 'give userData and/or networkData');

  const allowed = ctx.allowPlaintextSecrets === true
    || (ctx.allowPlaintextSecrets instanceof Set && ctx.allowPlaintextSecrets.has(volumeName));
  if (allowed) return;
  const texts: Array<[string, string]> = [];
  if (typeof src.userData === 'string') texts.push([`${at}.userData`, src.userData]);
  if (typeof src.userDataBase64 === 'string') texts.push([`${at}.userDataBase64`, Buffer.from(src.userDataBase64, 'base64').toString('utf8')]);
  for (const [field, text] of texts) {
    const found = findPlaintextSecrets(text);
    if (found.length > 0) {
      add(field, `contains a plain-text password (${found.join(', ')}); it would be committed to git and readable by anyone who can read the VM`,
        `move the user-data into a Kubernetes Secret created out of band and reference it with UserData.fromSecret({ name: '<secret>' }) (secretRef); use SSH keys where possible; or, for throwaway test VMs only, set allowPlaintextSecrets: true`);
    }
  }
}

/** Every `a` needs a `b` of the same name and vice versa (disks↔volumes, interfaces↔networks). */
function checkPairs(
  aWhat: string, as: Array<{ name?: string }>, aBase: string,
  bWhat: string, bs: Array<{ name?: string }>, bBase: string, add: Add,
): void {
  const aNames = new Set(as.map((a) => a?.name));
  const bNames = new Set(bs.map((b) => b?.name));
  as.forEach((a, i) => {
    if (!bNames.has(a?.name)) add(`${aBase}[${i}].name`, `${aWhat} "${a?.name}" has no ${bWhat} of the same name in ${bBase}`, `add ${article(bWhat)} ${bWhat} named "${a?.name}" or remove the ${aWhat} (VirtualMachine.add${cap(aWhat)} declares both together)`);
  });
  bs.forEach((b, i) => {
    if (!aNames.has(b?.name)) add(`${bBase}[${i}].name`, `${bWhat} "${b?.name}" has no ${aWhat} of the same name in ${aBase}`, `add ${article(aWhat)} ${aWhat} named "${b?.name}" or remove the ${bWhat} (VirtualMachine.add${cap(aWhat)} declares both together)`);
  });
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

function checkInterfaces(ifaces: api.Interface[], networks: api.Network[], add: Add): void {
  const base = `${DEVICES}.interfaces`;
  checkNames(ifaces, base, 'interface', add);
  const byName = new Map(networks.map((n) => [n?.name, n]));
  ifaces.forEach((iface, i) => {
    const at = `${base}[${i}]`;
    const bindings = (['bridge', 'masquerade'] as const).filter((b) => iface[b] !== undefined);
    if (bindings.length !== 1) {
      add(at, bindings.length === 0 ? 'has no binding' : 'sets both bridge and masquerade', 'choose one: InterfaceBinding.MASQUERADE or InterfaceBinding.BRIDGE');
    }
    if (iface.masquerade && byName.get(iface.name)?.multus) {
      add(`${at}.masquerade`, `is only supported on the pod network, but network "${iface.name}" is Multus`, 'use InterfaceBinding.BRIDGE for Multus networks');
    }
    if (iface.ports !== undefined && !iface.masquerade) add(`${at}.ports`, 'are only supported with the masquerade binding', 'drop ports (bridge exposes every port) or use InterfaceBinding.MASQUERADE');
    asArray(iface.ports).forEach((p, j) => {
      if (!(Number.isInteger(p?.port) && p.port >= 1 && p.port <= 65535)) add(`${at}.ports[${j}].port`, `is ${p?.port}`, 'use a port number from 1 to 65535');
    });
    if (iface.macAddress !== undefined && !MAC.test(iface.macAddress)) add(`${at}.macAddress`, `"${iface.macAddress}" is not a MAC address`, 'write six hex pairs, e.g. 02:00:00:00:00:01');
    checkBootOrderValue(iface.bootOrder, `${at}.bootOrder`, add);
  });
}

function checkNetworks(networks: api.Network[], add: Add): void {
  const base = `${T}.networks`;
  checkNames(networks, base, 'network', add);
  let pods = 0;
  networks.forEach((n, i) => {
    const kinds = (['pod', 'multus'] as const).filter((k) => n?.[k] !== undefined);
    if (kinds.length !== 1) add(`${base}[${i}]`, kinds.length === 0 ? 'has no type' : 'sets both pod and multus', 'choose one: Network.pod() or Network.multus(name)');
    if (n?.pod) pods++;
    if (n?.multus && !n.multus.networkName) add(`${base}[${i}].multus.networkName`, 'is empty', 'name the NetworkAttachmentDefinition ("name" or "namespace/name")');
  });
  if (pods > 1) add(base, `has ${pods} pod networks`, 'keep a single Network.pod(); add further NICs with Network.multus(...)');
}

function checkBootOrder(disks: api.Disk[], ifaces: api.Interface[], add: Add): void {
  const owner = new Map<number, string>();
  const entries: Array<[string, number | undefined]> = [
    ...disks.map((d, i): [string, number | undefined] => [`${DEVICES}.disks[${i}]`, d?.bootOrder]),
    ...ifaces.map((f, i): [string, number | undefined] => [`${DEVICES}.interfaces[${i}]`, f?.bootOrder]),
  ];
  for (const [at, order] of entries) {
    if (order === undefined) continue;
    const first = owner.get(order);
    if (first !== undefined) add(`${at}.bootOrder`, `${order} is already used by ${first}`, 'give every disk and interface a distinct bootOrder (they share one sequence)');
    else owner.set(order, at);
  }
}

function checkScheduling(tspec: api.VirtualMachineInstanceSpec, add: Add): void {
  const grace = tspec.terminationGracePeriodSeconds;
  if (grace !== undefined && !(Number.isInteger(grace) && grace >= 0)) {
    add(`${T}.terminationGracePeriodSeconds`, `is ${grace}`, 'use a whole number of seconds >= 0');
  }
  if (tspec.evictionStrategy !== undefined && !EVICTION_STRATEGIES.includes(tspec.evictionStrategy)) {
    add(`${T}.evictionStrategy`, `"${tspec.evictionStrategy}" is not an eviction strategy`, `use one of ${EVICTION_STRATEGIES.join(', ')}`);
  }
}
