import { describe, expect, it } from 'vitest';
import { AccessCredential, SshKeyPropagation, UserData, Volume } from '../../../dsl/index.js';
import { testChart, validVm } from './helpers.js';

describe('accessCredentials', () => {
  it('renders KubeVirt\'s sshPublicKey entries, one per call, in order', () => {
    const vm = validVm({ name: 'web' }, testChart());
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromSecret({ name: 'web-userdata' }) }));
    vm.addAccessCredential(AccessCredential.sshPublicKey({ name: 'my-keys' }, SshKeyPropagation.noCloud()));
    vm.addAccessCredential(AccessCredential.sshPublicKey({ name: 'ops-keys' }, SshKeyPropagation.qemuGuestAgent(['debian'])));
    expect(vm.toManifest().spec.template.spec.accessCredentials).toEqual([
      { sshPublicKey: { source: { secret: { secretName: 'my-keys' } }, propagationMethod: { noCloud: {} } } },
      { sshPublicKey: { source: { secret: { secretName: 'ops-keys' } }, propagationMethod: { qemuGuestAgent: { users: ['debian'] } } } },
    ]);
    expect(vm.node.validate()).toEqual([]);
  });

  it('names the field and the fix: noCloud without a cloudInitNoCloud disk, agent without users, a bad Secret name', () => {
    const vm = validVm({ name: 'web' }, testChart());
    vm.addAccessCredential(AccessCredential.sshPublicKey({ name: 'my-keys' }, SshKeyPropagation.noCloud()));
    vm.addAccessCredential(AccessCredential.sshPublicKey({ name: 'Bad_Name' }, SshKeyPropagation.qemuGuestAgent([])));
    const messages = vm.node.validate().join('\n');
    expect(messages).toContain('spec.template.spec.accessCredentials[0].sshPublicKey.propagationMethod.noCloud: needs a cloudInitNoCloud volume to carry the keys. Fix: add a disk with Volume.fromCloudInitNoCloud(...)');
    expect(messages).toContain('spec.template.spec.accessCredentials[1].sshPublicKey.propagationMethod.qemuGuestAgent.users: is empty. Fix: list the guest users');
    expect(messages).toMatch(/accessCredentials\[1\]\.sshPublicKey\.source\.secret\.secretName: .*Fix: name the Secret/);
  });
});
