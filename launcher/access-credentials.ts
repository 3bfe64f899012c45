/**
 * KubeVirt's `spec.accessCredentials` (sshPublicKey from a Secret), pure: which Secrets go
 * where. The propagation methods, as KubeVirt implements them:
 *   noCloud        the keys go into the NoCloud meta-data (`public-keys`), which cloud-init
 *                  gives to the guest's default user (not into user-data, which may be a
 *                  script or MIME multipart that cannot be merged into safely);
 *   configDrive    the same in ConfigDrive's meta_data.json (`public_keys`);
 *   qemuGuestAgent the launcher adds the keys to each listed user's authorized_keys through
 *                  the agent (`guest-ssh-add-authorized-keys`) once it answers.
 * Every key of the Secret holds one or more keys, one a line.
 */
import type { AccessCredential, VirtualMachineInstanceSpec } from '../api/kubevirt.js';
import { InvalidVolumeError } from './volumes/errors.js';

export interface SshKeyRequest {
  secretName: string;
  users: string[];
  /** Where it is in the spec, for messages. */
  field: string;
}

export interface MetadataKeySource {
  secretName: string;
  method: 'noCloud' | 'configDrive';
  field: string;
}

const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const USER_NAME = /^[a-z_][a-z0-9_.-]*\$?$/i;

function entries(spec: Pick<VirtualMachineInstanceSpec, 'accessCredentials'>): { c: AccessCredential; at: string }[] {
  const list = spec.accessCredentials;
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new InvalidVolumeError(undefined, 'spec.accessCredentials', 'is not a list', 'write accessCredentials as a list of {sshPublicKey: {source, propagationMethod}}');
  return list.map((c, i) => ({ c, at: `spec.accessCredentials[${i}]` }));
}

/** Checks every entry; throws naming the field and the fix. Returns the sshPublicKey entries. */
export function checkAccessCredentials(spec: Pick<VirtualMachineInstanceSpec, 'accessCredentials'>): { secretName: string; method: 'noCloud' | 'configDrive' | 'qemuGuestAgent'; users: string[]; field: string }[] {
  return entries(spec).map(({ c, at }) => {
    if (c.userPassword !== undefined) throw new InvalidVolumeError(undefined, `${at}.userPassword`, 'userPassword credentials are not supported by virtops', 'set the password with cloud-init user-data from a Secret (UserData.fromSecret)');
    const k = c.sshPublicKey;
    if (!k) throw new InvalidVolumeError(undefined, at, 'has no sshPublicKey', 'set sshPublicKey: {source: {secret: {secretName}}, propagationMethod: {noCloud: {}}}');
    const secretName = k.source?.secret?.secretName;
    if (typeof secretName !== 'string' || !SECRET_NAME.test(secretName)) {
      throw new InvalidVolumeError(undefined, `${at}.sshPublicKey.source.secret.secretName`, `${JSON.stringify(secretName)} is not a Secret name`, 'name the Secret that holds the public keys (lowercase letters, digits, -, .)');
    }
    const pm = k.propagationMethod ?? {};
    const methods = (['noCloud', 'configDrive', 'qemuGuestAgent'] as const).filter((m) => pm[m] !== undefined);
    if (methods.length !== 1) {
      throw new InvalidVolumeError(undefined, `${at}.sshPublicKey.propagationMethod`, methods.length ? `sets ${methods.join(' and ')}` : 'sets no method', 'set exactly one of noCloud: {}, configDrive: {}, qemuGuestAgent: {users: [...]}');
    }
    const method = methods[0]!;
    const users = method === 'qemuGuestAgent' ? pm.qemuGuestAgent?.users : [];
    if (!Array.isArray(users) || (method === 'qemuGuestAgent' && users.length === 0) || users.some((u) => typeof u !== 'string' || !USER_NAME.test(u))) {
      throw new InvalidVolumeError(undefined, `${at}.sshPublicKey.propagationMethod.qemuGuestAgent.users`, `${JSON.stringify(users)} is not a list of guest user names`, 'list the guest users whose authorized_keys get the keys, e.g. users: [fedora]');
    }
    return { secretName, method, users, field: `${at}.sshPublicKey.source.secret.secretName` };
  });
}

/** The Secrets whose keys go into the cloud-init meta-data of the given flavour. */
export function metadataKeySources(spec: Pick<VirtualMachineInstanceSpec, 'accessCredentials'>, flavor: 'noCloud' | 'configDrive'): MetadataKeySource[] {
  return checkAccessCredentials(spec).flatMap((e) => (e.method === flavor ? [{ secretName: e.secretName, method: flavor, field: e.field }] : []));
}

/** The qemuGuestAgent entries: what the launcher adds through the agent. */
export function agentSshKeyRequests(spec: Pick<VirtualMachineInstanceSpec, 'accessCredentials'>): SshKeyRequest[] {
  return checkAccessCredentials(spec).flatMap((e) => (e.method === 'qemuGuestAgent' ? [{ secretName: e.secretName, users: e.users, field: e.field }] : []));
}

/** Every public key in a Secret's data (each value one or more keys, one a line; blank lines and # comments left out). */
export function publicKeysOf(data: Record<string, Buffer | string>): string[] {
  const keys: string[] = [];
  for (const name of Object.keys(data).sort()) {
    for (const line of data[name]!.toString().split(/\r?\n/)) {
      const k = line.trim();
      if (k && !k.startsWith('#') && !keys.includes(k)) keys.push(k);
    }
  }
  return keys;
}
