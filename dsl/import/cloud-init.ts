/**
 * User-data and network-data as DSL expressions. The typed builders (`CloudConfig`,
 * `NetworkConfig`) are used only when the text is a document they re-render byte for
 * byte; anything else (comments, flow style, scripts, other key orders) stays the string
 * it was, so the VM's cloud-init ISO does not change by importing it.
 */
import { parse } from 'yaml';
import { CloudConfig, NetworkConfig } from '../cloud-init.js';
import { arr, call, evaluate, json, lit, newExpr, obj, type Environment, type Expr } from './code.js';

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const ENV: Environment = { CloudConfig, NetworkConfig };

const CLOUD_CONFIG_HEADER = '#cloud-config\n';

/** `UserData.fromCloudConfig(new CloudConfig({...}))` when it re-renders `text` exactly, else `UserData.fromString(text)`. */
export function userDataExpr(text: string): Expr {
  const builder = cloudConfigExpr(text);
  return builder ? call('UserData', 'fromCloudConfig', builder) : call('UserData', 'fromString', lit(text));
}

/** `NetworkData.fromConfig(...)` when a NetworkConfig re-renders `text` exactly, else `NetworkData.fromString(text)`. */
export function networkDataExpr(text: string): Expr {
  const builder = networkConfigExpr(text);
  return builder ? call('NetworkData', 'fromConfig', builder) : call('NetworkData', 'fromString', lit(text));
}

/** The builder expression for a `#cloud-config` document, or undefined when none renders it exactly. */
export function cloudConfigExpr(text: string): Expr | undefined {
  if (!text.startsWith(CLOUD_CONFIG_HEADER)) return undefined;
  let doc: unknown;
  try {
    doc = parse(text.slice(CLOUD_CONFIG_HEADER.length));
  } catch {
    return undefined;
  }
  if (!isObject(doc)) return undefined;
  const props = cloudConfigProps(doc);
  if (!props) return undefined;
  const expr = newExpr('CloudConfig', props);
  return rendersExactly(expr, text) ? expr : undefined;
}

function cloudConfigProps(doc: JsonObject): Expr | undefined {
  const entries: Array<[string, Expr | undefined]> = [];
  const extra: JsonObject = {};
  for (const [key, value] of Object.entries(doc)) {
    switch (key) {
      case 'hostname':
      case 'fqdn':
        if (typeof value !== 'string') return undefined;
        entries.push([key, lit(value)]);
        break;
      case 'users': {
        if (!Array.isArray(value)) return undefined;
        const keepDefault = value[0] === 'default';
        const users = keepDefault ? value.slice(1) : value;
        if (users.length === 0) return undefined;
        const exprs = users.map(userExpr);
        if (exprs.some((e) => e === undefined)) return undefined;
        entries.push(['users', arr(exprs as Expr[])]);
        if (!keepDefault) entries.push(['keepDefaultUser', lit(false)]);
        break;
      }
      case 'ssh_authorized_keys':
      case 'packages':
        if (!isStringArray(value)) return undefined;
        entries.push([key === 'packages' ? 'packages' : 'sshAuthorizedKeys', json(value)]);
        break;
      case 'package_update':
      case 'package_upgrade':
        if (typeof value !== 'boolean') return undefined;
        entries.push([key === 'package_update' ? 'packageUpdate' : 'packageUpgrade', lit(value)]);
        break;
      case 'write_files': {
        if (!Array.isArray(value)) return undefined;
        const files = value.map(fileExpr);
        if (files.some((f) => f === undefined)) return undefined;
        entries.push(['writeFiles', arr(files as Expr[])]);
        break;
      }
      case 'bootcmd':
      case 'runcmd':
        if (!Array.isArray(value) || !value.every((c) => typeof c === 'string' || isStringArray(c))) return undefined;
        entries.push([key, json(value)]);
        break;
      default:
        extra[key] = value;
    }
  }
  if (Object.keys(extra).length > 0) entries.push(['extra', json(extra)]);
  return obj(entries);
}

const USER_KEYS: Record<string, string> = {
  name: 'name', gecos: 'gecos', shell: 'shell', sudo: 'sudo', lock_passwd: 'lockPasswd', ssh_authorized_keys: 'sshAuthorizedKeys',
};

function userExpr(user: unknown): Expr | undefined {
  if (!isObject(user) || typeof user.name !== 'string') return undefined;
  const entries: Array<[string, Expr | undefined]> = [];
  const extra: JsonObject = {};
  for (const [key, value] of Object.entries(user)) {
    if (key === 'groups') {
      if (typeof value !== 'string') return undefined;
      entries.push(['groups', json(value.split(', '))]);
    } else if (key === 'ssh_authorized_keys') {
      if (!isStringArray(value)) return undefined;
      entries.push(['sshAuthorizedKeys', json(value)]);
    } else if (key === 'lock_passwd') {
      if (typeof value !== 'boolean') return undefined;
      entries.push(['lockPasswd', lit(value)]);
    } else if (USER_KEYS[key]) {
      if (typeof value !== 'string') return undefined;
      entries.push([USER_KEYS[key]!, lit(value)]);
    } else {
      extra[key] = value;
    }
  }
  if (Object.keys(extra).length > 0) entries.push(['extra', json(extra)]);
  return obj(entries);
}

const FILE_KEYS: Record<string, (v: unknown) => boolean> = {
  path: (v) => typeof v === 'string',
  content: (v) => typeof v === 'string',
  permissions: (v) => typeof v === 'string',
  owner: (v) => typeof v === 'string',
  encoding: (v) => typeof v === 'string' && ['b64', 'base64', 'gzip', 'gz', 'gz+b64', 'gzip+base64'].includes(v),
  append: (v) => typeof v === 'boolean',
  defer: (v) => typeof v === 'boolean',
};

function fileExpr(file: unknown): Expr | undefined {
  if (!isObject(file) || file.path === undefined || file.content === undefined) return undefined;
  if (!Object.entries(file).every(([k, v]) => FILE_KEYS[k]?.(v) === true)) return undefined;
  return json(file);
}

function optionalString(v: unknown): v is string | undefined {
  return v === undefined || typeof v === 'string';
}

function rendersExactly(expr: Expr, text: string): boolean {
  try {
    return (evaluate(expr, ENV) as CloudConfig).render() === text;
  } catch {
    return false;
  }
}

/** The builder expression for a network-config v2 document, or undefined when none renders it exactly. */
export function networkConfigExpr(text: string): Expr | undefined {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(doc) || doc.version !== 2 || !isObject(doc.ethernets)) return undefined;
  const candidates: Expr[] = [];
  const ids = Object.keys(doc.ethernets);
  if (ids.length === 1) candidates.push(call('NetworkConfig', 'dhcp', lit(ids[0]!)));
  const ethernets: Array<[string, Expr | undefined]> = [];
  for (const [id, e] of Object.entries(doc.ethernets)) {
    const expr = ethernetExpr(e);
    if (!expr) return undefined;
    ethernets.push([id, expr]);
  }
  candidates.push(newExpr('NetworkConfig', obj([['ethernets', obj(ethernets)]])));
  return candidates.find((c) => {
    try {
      return (evaluate(c, ENV) as NetworkConfig).render() === text;
    } catch {
      return false;
    }
  });
}

function ethernetExpr(e: unknown): Expr | undefined {
  if (!isObject(e)) return undefined;
  const entries: Array<[string, Expr | undefined]> = [];
  for (const [key, value] of Object.entries(e)) {
    switch (key) {
      case 'match': {
        if (!isObject(value)) return undefined;
        const { macaddress, name, ...rest } = value;
        if (Object.keys(rest).length > 0 || !optionalString(macaddress) || !optionalString(name)) return undefined;
        entries.push(['match', obj([['macAddress', macaddress === undefined ? undefined : lit(macaddress)], ['name', name === undefined ? undefined : lit(name)]])]);
        break;
      }
      case 'set-name':
        if (typeof value !== 'string') return undefined;
        entries.push(['setName', lit(value)]);
        break;
      case 'dhcp4': case 'dhcp6':
        if (typeof value !== 'boolean') return undefined;
        entries.push([key, lit(value)]);
        break;
      case 'gateway4': case 'gateway6':
        if (typeof value !== 'string') return undefined;
        entries.push([key, lit(value)]);
        break;
      case 'addresses':
        if (!isStringArray(value)) return undefined;
        entries.push([key, json(value)]);
        break;
      case 'mtu':
        if (typeof value !== 'number') return undefined;
        entries.push([key, lit(value)]);
        break;
      case 'nameservers':
        if (!isObject(value) || !Object.entries(value).every(([k, v]) => ['addresses', 'search'].includes(k) && isStringArray(v))) return undefined;
        entries.push([key, json(value)]);
        break;
      default:
        return undefined;
    }
  }
  return obj(entries);
}
