/**
 * Cloud-init: a typed `#cloud-config` builder, a network-config (v2) builder, and the
 * user-data / network-data sources a cloud-init volume can take (one each, by type).
 */
import { parse, stringify } from 'yaml';
import type * as api from '../api/kubevirt.js';
import { unambiguous } from '../api/yaml-compat.js';

/** Rendering options shared by both documents: no line folding, so output is stable. */
// cloud-init reads YAML 1.1 (PyYAML): a hostname `on` or a string `1:20` is quoted, not a boolean or 80.
const YAML_OPTIONS = unambiguous({ lineWidth: 0, minContentWidth: 0 });

/**
 * The YAML of a cloud-init document, remembered by its JSON. Rendering builds a yaml Document
 * and schema per call (~30 µs each, ~30 ms per 1,000 VMs); `synth --watch` renders every VM's
 * documents again on each edit, and nearly all of them are the same text as before. Only pure
 * JSON values are remembered: anything else (a Date, undefined, a class instance) could share
 * its JSON with a value the yaml package writes differently. Two generations of entries are
 * kept, so the cache holds what the last synthesis or two used, whatever the app's size.
 */
const rendered = { current: new Map<string, string>(), previous: new Map<string, string>() };
const RENDER_CACHE_GENERATION = 4096;

function renderYaml(doc: Record<string, unknown>): string {
  if (!isJsonValue(doc)) return stringify(doc, YAML_OPTIONS);
  const key = JSON.stringify(doc);
  let text = rendered.current.get(key) ?? rendered.previous.get(key);
  text ??= stringify(doc, YAML_OPTIONS);
  if (!rendered.current.has(key)) {
    if (rendered.current.size >= RENDER_CACHE_GENERATION) {
      rendered.previous = rendered.current;
      rendered.current = new Map();
    }
    rendered.current.set(key, text);
  }
  return text;
}

/** True for null, booleans, strings, finite numbers, and arrays and plain objects of them. */
function isJsonValue(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  // -0 has the JSON of 0 but YAML of its own.
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0);
  if (Array.isArray(value)) return value.every(isJsonValue);
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value as Record<string, unknown>).every(isJsonValue);
}

/** A user in `#cloud-config` `users:`. */
export interface CloudConfigUser {
  readonly name: string;
  /** @default - none */
  readonly sshAuthorizedKeys?: readonly string[];
  /** sudo rule, e.g. `ALL=(ALL) NOPASSWD:ALL`. @default - no sudo rule */
  readonly sudo?: string;
  /** @default - cloud-init's default groups */
  readonly groups?: readonly string[];
  /** @default - the distribution's default shell */
  readonly shell?: string;
  /** Lock the password (key-only login). @default - cloud-init's default (locked) */
  readonly lockPasswd?: boolean;
  /** @default - none */
  readonly gecos?: string;
  /** Further cloud-init user keys, written as given (snake_case). @default - none */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A file in `#cloud-config` `write_files:`. */
export interface CloudConfigFile {
  readonly path: string;
  readonly content: string;
  /** Octal permissions such as `0644`. @default - cloud-init's default (0644) */
  readonly permissions?: string;
  /** `user:group`. @default - root:root */
  readonly owner?: string;
  /** Encoding of `content` (`b64`, `gzip`, `gz+b64`). @default - plain text */
  readonly encoding?: 'b64' | 'base64' | 'gzip' | 'gz' | 'gz+b64' | 'gzip+base64';
  /** @default false */
  readonly append?: boolean;
  /** Write after users/packages are set up. @default false */
  readonly defer?: boolean;
}

/** A command for `runcmd`/`bootcmd`: a shell string, or an argv array (no shell). */
export type CloudConfigCommand = string | readonly string[];

export interface CloudConfigProps {
  /** @default - cloud-init derives it from the VM name */
  readonly hostname?: string;
  /** @default - none */
  readonly fqdn?: string;
  /** Users to create. @default - none (only the distribution's default user) */
  readonly users?: readonly CloudConfigUser[];
  /**
   * Keep the distribution's default user next to `users` (cloud-init's `default` entry).
   * @default true
   */
  readonly keepDefaultUser?: boolean;
  /** Keys for the default user (`ssh_authorized_keys`). @default - none */
  readonly sshAuthorizedKeys?: readonly string[];
  /** @default - none */
  readonly packages?: readonly string[];
  /** @default - not set (cloud-init's default) */
  readonly packageUpdate?: boolean;
  /** @default - not set (cloud-init's default) */
  readonly packageUpgrade?: boolean;
  /** @default - none */
  readonly writeFiles?: readonly CloudConfigFile[];
  /** Commands run early on every boot. @default - none */
  readonly bootcmd?: readonly CloudConfigCommand[];
  /** Commands run once, late in the first boot. @default - none */
  readonly runcmd?: readonly CloudConfigCommand[];
  /**
   * Any other top-level cloud-config keys (e.g. `timezone`, `ntp`), written as given after
   * the typed ones, sorted by key. Keys the builder types (e.g. `packages`) are rejected.
   * @default - none
   */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** Keys the builder owns; `extra` may not set them (two sources for one key would drift). */
const TYPED_KEYS = new Set([
  'hostname', 'fqdn', 'users', 'ssh_authorized_keys', 'packages', 'package_update', 'package_upgrade',
  'write_files', 'bootcmd', 'runcmd',
]);

/** A typed `#cloud-config` document. Renders deterministically (fixed key order). */
export class CloudConfig {
  private readonly users: CloudConfigUser[];
  private readonly sshKeys: string[];
  private readonly packages: string[];
  private readonly files: CloudConfigFile[];
  private readonly bootcmd: CloudConfigCommand[];
  private readonly runcmd: CloudConfigCommand[];
  private readonly extra: Record<string, unknown> = {};

  public constructor(private readonly props: CloudConfigProps = {}) {
    this.users = [...(props.users ?? [])];
    this.sshKeys = [...(props.sshAuthorizedKeys ?? [])];
    this.packages = [...(props.packages ?? [])];
    this.files = [...(props.writeFiles ?? [])];
    this.bootcmd = [...(props.bootcmd ?? [])];
    this.runcmd = [...(props.runcmd ?? [])];
    for (const [key, value] of Object.entries(props.extra ?? {})) this.set(key, value);
  }

  public addUser(user: CloudConfigUser): this {
    this.users.push(user);
    return this;
  }

  public addSshAuthorizedKey(key: string): this {
    this.sshKeys.push(key);
    return this;
  }

  public addPackage(...names: string[]): this {
    this.packages.push(...names);
    return this;
  }

  public addFile(file: CloudConfigFile): this {
    this.files.push(file);
    return this;
  }

  public addBootCommand(command: CloudConfigCommand): this {
    this.bootcmd.push(command);
    return this;
  }

  public addRunCommand(command: CloudConfigCommand): this {
    this.runcmd.push(command);
    return this;
  }

  /** Sets any other top-level key. @throws for keys the builder types (use its method). */
  public set(key: string, value: unknown): this {
    if (TYPED_KEYS.has(key)) {
      throw new Error(`CloudConfig: '${key}' is a typed key. Fix: use the CloudConfig prop or add method for '${key}' instead of extra/set()`);
    }
    this.extra[key] = value;
    return this;
  }

  /** The document as a plain object with cloud-init's snake_case keys. */
  public toObject(): Record<string, unknown> {
    const doc: Record<string, unknown> = {};
    const put = (key: string, value: unknown, present: boolean): void => {
      if (present) doc[key] = value;
    };
    put('hostname', this.props.hostname, this.props.hostname !== undefined);
    put('fqdn', this.props.fqdn, this.props.fqdn !== undefined);
    const users: unknown[] = this.users.map(renderUser);
    if (this.props.keepDefaultUser ?? true) users.unshift('default');
    put('users', users, this.users.length > 0);
    put('ssh_authorized_keys', [...this.sshKeys], this.sshKeys.length > 0);
    put('package_update', this.props.packageUpdate, this.props.packageUpdate !== undefined);
    put('package_upgrade', this.props.packageUpgrade, this.props.packageUpgrade !== undefined);
    put('packages', [...this.packages], this.packages.length > 0);
    put('write_files', this.files.map(renderFile), this.files.length > 0);
    put('bootcmd', this.bootcmd.map(renderCommand), this.bootcmd.length > 0);
    put('runcmd', this.runcmd.map(renderCommand), this.runcmd.length > 0);
    for (const key of Object.keys(this.extra).sort()) doc[key] = this.extra[key];
    return doc;
  }

  /** The `#cloud-config` text. */
  public render(): string {
    return `#cloud-config\n${renderYaml(this.toObject())}`;
  }
}

function renderUser(user: CloudConfigUser): Record<string, unknown> {
  const out: Record<string, unknown> = { name: user.name };
  if (user.gecos !== undefined) out.gecos = user.gecos;
  if (user.groups) out.groups = user.groups.join(', ');
  if (user.shell !== undefined) out.shell = user.shell;
  if (user.sudo !== undefined) out.sudo = user.sudo;
  if (user.lockPasswd !== undefined) out.lock_passwd = user.lockPasswd;
  if (user.sshAuthorizedKeys) out.ssh_authorized_keys = [...user.sshAuthorizedKeys];
  for (const key of Object.keys(user.extra ?? {}).sort()) out[key] = user.extra![key];
  return out;
}

function renderFile(file: CloudConfigFile): Record<string, unknown> {
  const out: Record<string, unknown> = { path: file.path, content: file.content };
  if (file.encoding !== undefined) out.encoding = file.encoding;
  if (file.owner !== undefined) out.owner = file.owner;
  if (file.permissions !== undefined) out.permissions = file.permissions;
  if (file.append !== undefined) out.append = file.append;
  if (file.defer !== undefined) out.defer = file.defer;
  return out;
}

function renderCommand(command: CloudConfigCommand): string | string[] {
  return typeof command === 'string' ? command : [...command];
}

// ---- network-config -------------------------------------------------------------------

/** One ethernet device in network-config version 2 (netplan syntax). */
export interface EthernetConfig {
  /** Match the device by MAC address and/or kernel name. @default - the id is the device name */
  readonly match?: { readonly macAddress?: string; readonly name?: string };
  /** Rename the matched device. @default - keep the name */
  readonly setName?: string;
  /** @default - not set (off) */
  readonly dhcp4?: boolean;
  /** @default - not set (off) */
  readonly dhcp6?: boolean;
  /** Static addresses in CIDR form (`10.0.2.15/24`). @default - none */
  readonly addresses?: readonly string[];
  /** @default - none */
  readonly gateway4?: string;
  /** @default - none */
  readonly gateway6?: string;
  /** @default - none */
  readonly nameservers?: { readonly addresses?: readonly string[]; readonly search?: readonly string[] };
  /** @default - the device default */
  readonly mtu?: number;
}

export interface NetworkConfigProps {
  /** Ethernet devices by id. @default - none */
  readonly ethernets?: Readonly<Record<string, EthernetConfig>>;
}

/** A cloud-init network-config document, version 2. */
export class NetworkConfig {
  /** DHCPv4 on one device: the common case. */
  public static dhcp(device = 'eth0'): NetworkConfig {
    return new NetworkConfig({ ethernets: { [device]: { dhcp4: true } } });
  }

  private readonly ethernets: Record<string, EthernetConfig>;

  public constructor(props: NetworkConfigProps = {}) {
    this.ethernets = { ...(props.ethernets ?? {}) };
  }

  public addEthernet(id: string, config: EthernetConfig): this {
    this.ethernets[id] = config;
    return this;
  }

  public toObject(): Record<string, unknown> {
    const ethernets: Record<string, unknown> = {};
    for (const id of Object.keys(this.ethernets).sort()) ethernets[id] = renderEthernet(this.ethernets[id]!);
    return { version: 2, ethernets };
  }

  public render(): string {
    return renderYaml(this.toObject());
  }
}

function renderEthernet(e: EthernetConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (e.match) {
    const match: Record<string, string> = {};
    if (e.match.macAddress !== undefined) match.macaddress = e.match.macAddress;
    if (e.match.name !== undefined) match.name = e.match.name;
    out.match = match;
  }
  if (e.setName !== undefined) out['set-name'] = e.setName;
  if (e.dhcp4 !== undefined) out.dhcp4 = e.dhcp4;
  if (e.dhcp6 !== undefined) out.dhcp6 = e.dhcp6;
  if (e.addresses) out.addresses = [...e.addresses];
  if (e.gateway4 !== undefined) out.gateway4 = e.gateway4;
  if (e.gateway6 !== undefined) out.gateway6 = e.gateway6;
  if (e.nameservers) {
    const ns: Record<string, string[]> = {};
    if (e.nameservers.addresses) ns.addresses = [...e.nameservers.addresses];
    if (e.nameservers.search) ns.search = [...e.nameservers.search];
    out.nameservers = ns;
  }
  if (e.mtu !== undefined) out.mtu = e.mtu;
  return out;
}

// ---- sources ------------------------------------------------------------------------

/** A reference to a Kubernetes Secret in the VM's namespace (a cdk8s-plus `ISecret` fits). */
export interface SecretReference {
  readonly name: string;
}

type UserDataFields = Pick<api.CloudInitSource, 'userData' | 'userDataBase64' | 'secretRef'>;
type NetworkDataFields = Pick<api.CloudInitSource, 'networkData' | 'networkDataBase64' | 'networkDataSecretRef'>;

/** Where a cloud-init volume's user-data comes from: exactly one source, by construction. */
export class UserData {
  /** A typed `#cloud-config`, rendered when the VM is synthesized (later edits count). */
  public static fromCloudConfig(config: CloudConfig): UserData {
    return new UserData(() => ({ userData: config.render() }));
  }

  /** User-data text as written: `#cloud-config` YAML, a `#!` script, a MIME multipart. */
  public static fromString(text: string): UserData {
    return new UserData(() => ({ userData: text }));
  }

  /** Base64-encoded user-data (binary or gzip payloads). */
  public static fromBase64(encoded: string): UserData {
    return new UserData(() => ({ userDataBase64: encoded }));
  }

  /**
   * User-data read from the Secret's `userdata` (or `userData`) key: the place for passwords
   * and keys. The Secret is created out of band; it is not part of the VM manifest.
   */
  public static fromSecret(secret: SecretReference): UserData {
    return new UserData(() => ({ secretRef: { name: secret.name } }));
  }

  private constructor(private readonly produce: () => UserDataFields) {}

  /** @internal */
  public _render(): UserDataFields {
    return this.produce();
  }
}

/** Where a cloud-init volume's network-config comes from: exactly one source. */
export class NetworkData {
  public static fromConfig(config: NetworkConfig): NetworkData {
    return new NetworkData(() => ({ networkData: config.render() }));
  }

  public static fromString(text: string): NetworkData {
    return new NetworkData(() => ({ networkData: text }));
  }

  public static fromBase64(encoded: string): NetworkData {
    return new NetworkData(() => ({ networkDataBase64: encoded }));
  }

  /** Network-config read from the Secret's `networkdata` (or `networkData`) key. */
  public static fromSecret(secret: SecretReference): NetworkData {
    return new NetworkData(() => ({ networkDataSecretRef: { name: secret.name } }));
  }

  private constructor(private readonly produce: () => NetworkDataFields) {}

  /** @internal */
  public _render(): NetworkDataFields {
    return this.produce();
  }
}

// ---- plaintext secret detection -------------------------------------------------------

/** Keys whose value is a credential wherever they appear in a cloud-config. */
const SECRET_KEYS = new Set(['password', 'passwd', 'plain_text_passwd', 'hashed_passwd']);

/** Shell-level patterns, for user-data that is a script rather than YAML. */
const SCRIPT_PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bchpasswd\b/, 'chpasswd command'],
  [/\bpasswd\b[^\n]*--stdin/, 'passwd --stdin command'],
  [/^\s*-?\s*(password|passwd|plain_text_passwd|hashed_passwd)\s*[:=]\s*\S/im, 'password assignment'],
];

/**
 * Where `userData` carries credentials in plain text, as field paths inside the document
 * (`password`, `users[1].passwd`, `chpasswd.list`). Empty when none were found.
 * YAML documents are walked key by key; anything else (scripts) is matched line-wise.
 */
export function findPlaintextSecrets(userData: string): string[] {
  // Parsing is most of the cost (every VM's cloud-config, every synth), and most texts
  // cannot match: see mayHoldPlaintextSecret.
  if (!mayHoldPlaintextSecret(userData)) return [];
  return findPlaintextSecretsParsed(userData);
}

/**
 * False only when findPlaintextSecretsParsed must find nothing in `text`. Every key, command
 * and pattern it looks for contains "passw" (the pattern with /i in any case), and a parsed
 * YAML string holds "passw" only if the text does: comments, tags and folding never join
 * characters, only a double-quoted escape (`p\x61ssw`, a `\` line break) can, hence the
 * backslash test. Unit tests run both paths over the same cases.
 */
export function mayHoldPlaintextSecret(text: string): boolean {
  return /passw/i.test(text) || text.includes('\\');
}

/** @internal findPlaintextSecrets without the pre-check (exported for tests that compare the two). */
export function findPlaintextSecretsParsed(userData: string): string[] {
  let doc: unknown;
  try {
    doc = parse(userData);
  } catch {
    doc = undefined;
  }
  if (doc !== null && typeof doc === 'object') {
    const found: string[] = [];
    walk(doc, '', found);
    return found;
  }
  return SCRIPT_PATTERNS.filter(([pattern]) => pattern.test(userData)).map(([, what]) => what);
}

function walk(node: unknown, path: string, found: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => walk(item, `${path}[${i}]`, found));
    return;
  }
  if (node === null || typeof node !== 'object') {
    // A script embedded in runcmd/bootcmd can set passwords too.
    if (typeof node === 'string' && /\bchpasswd\b|\bpasswd\b[^\n]*--stdin/.test(node)) found.push(path);
    return;
  }
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const here = path === '' ? key : `${path}.${key}`;
    if (SECRET_KEYS.has(key) && value !== null && value !== '' && typeof value !== 'object') {
      found.push(here);
    } else if (key === 'chpasswd' && value !== null && typeof value === 'object') {
      // `chpasswd: { expire: false }` alone sets no password; `list`/`users` do.
      const entries = value as Record<string, unknown>;
      if (entries.list !== undefined) found.push(`${here}.list`);
      if (entries.users !== undefined) walk(entries.users, `${here}.users`, found);
    } else {
      walk(value, here, found);
    }
  }
}
