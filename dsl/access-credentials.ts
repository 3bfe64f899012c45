/**
 * KubeVirt's `accessCredentials`: ssh public keys from a Secret, put into the guest by
 * cloud-init (noCloud / configDrive: the keys ride in the cloud-init meta-data and go to the
 * guest's default user) or by the launcher through the guest agent (qemuGuestAgent: added to
 * the named users' authorized_keys once the agent answers). The keys never go to git: the
 * Secret holds them (one or more keys a value, one a line).
 *
 *   vm.addAccessCredential(AccessCredential.sshPublicKey({ name: 'my-keys' }, SshKeyPropagation.noCloud()));
 */
import type * as api from '../api/kubevirt.js';
import type { SecretReference } from './cloud-init.js';

type Method = NonNullable<api.AccessCredential['sshPublicKey']>['propagationMethod'];

/** How the keys reach the guest: exactly one method, by construction. */
export class SshKeyPropagation {
  /** In the NoCloud meta-data (`public-keys`); the VM needs a cloudInitNoCloud disk. */
  public static noCloud(): SshKeyPropagation {
    return new SshKeyPropagation({ noCloud: {} });
  }

  /** In the ConfigDrive meta_data.json (`public_keys`); the VM needs a cloudInitConfigDrive disk. */
  public static configDrive(): SshKeyPropagation {
    return new SshKeyPropagation({ configDrive: {} });
  }

  /** Through qemu-guest-agent into each of `users`' authorized_keys (the users must exist in the guest). */
  public static qemuGuestAgent(users: string[]): SshKeyPropagation {
    return new SshKeyPropagation({ qemuGuestAgent: { users: [...users] } });
  }

  private constructor(private readonly method: Method) {}

  /** @internal */
  public _toKube(): Method {
    return structuredClone(this.method);
  }
}

export class AccessCredential {
  /** The ssh public keys in `secret` (every key of it), propagated by `propagation`. */
  public static sshPublicKey(secret: SecretReference, propagation: SshKeyPropagation): AccessCredential {
    return new AccessCredential(secret.name, propagation);
  }

  private constructor(private readonly secretName: string, private readonly propagation: SshKeyPropagation) {}

  /** @internal */
  public _toKube(): api.AccessCredential {
    return { sshPublicKey: { source: { secret: { secretName: this.secretName } }, propagationMethod: this.propagation._toKube() } };
  }
}
