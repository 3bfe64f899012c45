import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'cdk8s';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import type * as api from '../../../api/kubevirt.js';
import { VirtualMachine } from '../../../dsl/index.js';
import { Cirros } from '../../../vms/cirros.js';
import { FedoraPvc } from '../../../vms/fedora-pvc.js';
import { KubevirtSmokeFedora } from '../../../vms/kubevirt-smoke-fedora.js';
import { TEST_GUEST_IMAGE, TestGuest } from '../../../vms/test-guest.js';
import { at } from './helpers.js';

const app = (): App => new App({ outdir: '/nonexistent/virtops-examples-never-written' });
const T = 'spec.template.spec';

const examples = [
  ['kubevirt-smoke-fedora', (): { vm: VirtualMachine } => new KubevirtSmokeFedora(app())],
  ['cirros', (): { vm: VirtualMachine } => new Cirros(app())],
  ['fedora-pvc', (): { vm: VirtualMachine } => new FedoraPvc(app())],
  ['test-guest', (): { vm: VirtualMachine } => new TestGuest(app())],
] as const;

describe('vms/ examples', () => {
  it.each(examples)('%s: manifest snapshot, valid, namespace default', (name, build) => {
    const { vm } = build();
    expect(vm.node.validate()).toEqual([]);
    const manifest = vm.toManifest();
    expect(manifest.metadata.name).toBe(name);
    expect(manifest.metadata.namespace).toBe('default');
    expect(manifest).toMatchSnapshot();
  });

  it('kubevirt-smoke-fedora is the seed VM with its password moved to a Secret', () => {
    const m = new KubevirtSmokeFedora(app()).vm.toManifest();
    expect(m.spec.running).toBe(true);
    expect(at(m, `${T}.domain.cpu`)).toEqual({ cores: 1 });
    expect(at(m, `${T}.domain.resources.requests.memory`)).toBe('4G');
    expect(at(m, `${T}.domain.machine.type`)).toBe('q35');
    expect(at(m, `${T}.domain.devices.interfaces`)).toEqual([{ name: 'default', bridge: {} }]);
    expect(at(m, `${T}.networks`)).toEqual([{ name: 'default', pod: {} }]);
    expect((at(m, `${T}.domain.devices.disks`) as api.Disk[]).map((d) => [d.name, d.disk?.bus])).toEqual([
      ['containerdisk', 'virtio'], ['emptydisk', 'virtio'], ['cloudinitdisk', 'virtio'],
    ]);
    expect(at(m, `${T}.volumes`)).toEqual([
      { name: 'containerdisk', containerDisk: { image: 'kubevirt/fedora-cloud-container-disk-demo:latest', imagePullPolicy: 'Always' } },
      { name: 'emptydisk', emptyDisk: { capacity: '2Gi' } },
      { name: 'cloudinitdisk', cloudInitNoCloud: { secretRef: { name: 'kubevirt-smoke-fedora-cloudinit' } } },
    ]);
    expect(JSON.stringify(m)).not.toMatch(/changeme|password/);
  });

  it('test-guest boots a kernel from the local registry and carries the user-data marker', () => {
    const m = new TestGuest(app()).vm.toManifest();
    expect(m.spec.runStrategy).toBe('Always');
    expect(at(m, `${T}.domain.memory.guest`)).toBe('128Mi');
    expect(at(m, `${T}.domain.firmware.kernelBoot`)).toEqual({
      kernelArgs: 'console=ttyS0 no_timer_check',
      container: { image: TEST_GUEST_IMAGE, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' },
    });
    const userData = at(m, `${T}.volumes[0].cloudInitNoCloud.userData`) as string;
    expect(userData.split('\n')).toContain('virtops-marker: hello-from-git');
    expect(parse(userData)).toEqual({ 'virtops-marker': 'hello-from-git' });
    expect(at(m, `${T}.volumes[1].emptyDisk`)).toBeDefined();
  });

  it('vms/main.ts synthesizes one file per example chart holding its VirtualMachine', async () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-vms-'));
    try {
      await execa('npx', ['tsx', 'vms/main.ts'], { env: { CDK8S_OUTDIR: outdir } });
      for (const [name] of examples) {
        const docs = parseAllDocuments(fs.readFileSync(path.join(outdir, `${name}.k8s.yaml`), 'utf8')).map((d) => d.toJS());
        const vms = docs.filter((d) => d?.kind === 'VirtualMachine');
        expect(vms.map((v) => v.metadata.name)).toEqual([name]);
      }
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
