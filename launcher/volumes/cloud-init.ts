/**
 * What goes on a cloud-init ISO, as pure data (relative path → contents). The two
 * datasources KubeVirt offers:
 *   NoCloud      volume id `cidata`:   meta-data, user-data, network-config
 *   ConfigDrive  volume id `config-2`: openstack/latest/{meta_data.json,user_data,network_data.json}
 * network-config / network_data.json are written only when network data is given, so
 * cloud-init falls back to its default (DHCP on the first NIC) otherwise.
 */

export interface CloudInitData {
  /** Unique per VMI incarnation: cloud-init re-runs per-instance modules when it changes. */
  instanceId: string;
  hostname: string;
  userData?: string;
  networkData?: string;
  /** accessCredentials' ssh keys (KubeVirt puts them in the meta-data: cloud-init gives them to the default user). */
  publicKeys?: string[];
}

export interface IsoLayout {
  volumeId: string;
  files: Record<string, string | Buffer>;
}

export function noCloudLayout(data: CloudInitData): IsoLayout {
  const files: Record<string, string> = {
    'meta-data': `instance-id: ${yamlString(data.instanceId)}\nlocal-hostname: ${yamlString(data.hostname)}\n${publicKeysYaml(data.publicKeys)}`,
    // NoCloud needs both files to exist, even when only network data is given.
    'user-data': data.userData ?? '',
  };
  if (data.networkData !== undefined) files['network-config'] = data.networkData;
  return { volumeId: 'cidata', files };
}

export function configDriveLayout(data: CloudInitData): IsoLayout {
  const dir = 'openstack/latest';
  const meta = { instance_id: data.instanceId, uuid: data.instanceId, hostname: data.hostname, ...(data.publicKeys?.length ? { public_keys: keyMap(data.publicKeys) } : {}) };
  const files: Record<string, string> = { [`${dir}/meta_data.json`]: `${JSON.stringify(meta)}\n` };
  if (data.userData !== undefined) files[`${dir}/user_data`] = data.userData;
  if (data.networkData !== undefined) files[`${dir}/network_data.json`] = data.networkData;
  return { volumeId: 'config-2', files };
}

/**
 * `text` as a YAML scalar that cloud-init (YAML 1.1) and YAML 1.2 readers read as that
 * string: plain when it is a word or words joined by hyphens (a name, a uid) and no
 * boolean, null, date or exponent; otherwise a JSON string (also a YAML scalar). A VM named
 * `yes` or `123` would otherwise get the hostname True or the number 123. (No YAML library
 * here: the launcher loads none, and this is all it writes.)
 */
export function yamlString(text: string): string {
  const word = /^[A-Za-z][A-Za-z0-9]*$/.test(text) && !/^(?:y|n|yes|no|on|off|true|false|null)$/i.test(text);
  const hyphenated = /^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+$/.test(text) && !/^\d{4}-\d\d?-\d\d?$/.test(text);
  // Floats: `1e-5` and `0e-0` in YAML 1.2 and js-yaml (a valid Kubernetes name, so a VM's
  // hostname), and `e0`, `e-1` as (NaN) floats in the yaml package's YAML 1.1.
  const exponent = /^[0-9]*[eE]-?[0-9]+$/.test(text);
  return (word || hyphenated) && !exponent ? text : JSON.stringify(text);
}

/** `{"0": key, "1": key}`: the map form both meta-data formats take (OpenStack's public_keys). */
function keyMap(keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k, i) => [String(i), k]));
}

/** NoCloud meta-data's `public-keys` (YAML; JSON strings are YAML scalars, so any key text is safe). */
function publicKeysYaml(keys: string[] | undefined): string {
  if (!keys?.length) return '';
  return `public-keys:\n${Object.entries(keyMap(keys)).map(([i, k]) => `  "${i}": ${JSON.stringify(k)}\n`).join('')}`;
}

/** Secret keys KubeVirt accepts for cloud-init data, in lookup order. */
export const USER_DATA_KEYS = ['userdata', 'userData'] as const;
export const NETWORK_DATA_KEYS = ['networkdata', 'networkData'] as const;

/** The first of `keys` present in `data`, as text. */
export function pickKey(data: Record<string, Buffer>, keys: readonly string[]): string | undefined {
  for (const k of keys) if (data[k] !== undefined) return data[k].toString('utf8');
  return undefined;
}
