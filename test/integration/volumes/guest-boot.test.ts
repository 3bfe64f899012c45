import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../../../api/kubevirt.js';
import { convertVmi } from '../../../launcher/convert/convert.js';
import { serialLogPath } from '../../../launcher/convert/console.js';
import type { ConversionContext } from '../../../launcher/convert/context.js';
import { ImageStore, materializeVolumes, releaseVolumes, type MaterializeOptions } from '../../../launcher/volumes/index.js';
import { pushTestGuestImages, startRegistry, type LocalRegistry } from '../../helpers/registry.js';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';

// One real boot: the volumes this module materialises (containerDisk overlay, emptyDisk,
// NoCloud ISO, kernel from a kernelBoot image), converted by launcher/convert and run by
// libvirt under TCG, are what the test guest reports seeing.
let registry: LocalRegistry;
let work: string;
let vmi: VirtualMachineInstance;
let opts: MaterializeOptions;
const name = `volboot-${process.pid}`;
const domain = `tests_${name}`;
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  registry = await startRegistry();
  const images = await pushTestGuestImages(registry);
  // Short: the serial socket path must fit in 107 bytes.
  work = await mkdtemp(join(tmpdir(), 'vt-boot-'));
  opts = { vmDir: join(work, 'vm'), imageStore: new ImageStore({ dir: join(work, 'store'), insecureRegistries: [registry.host] }) };
  vmi = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'tests', uid: `uid-${process.pid}` },
    spec: {
      domain: {
        resources: { requests: { memory: '128Mi' } },
        firmware: {
          kernelBoot: {
            kernelArgs: 'console=ttyS0 no_timer_check',
            container: { image: images.kernelBootImage, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' },
          },
        },
        devices: {
          autoattachPodInterface: false,
          autoattachGraphicsDevice: false,
          disks: [
            { name: 'root', disk: { bus: 'virtio' } },
            { name: 'scratch', disk: { bus: 'virtio' } },
            { name: 'ci', cdrom: { bus: 'sata' } },
          ],
        },
      },
      volumes: [
        { name: 'root', containerDisk: { image: images.diskImage } },
        { name: 'scratch', emptyDisk: { capacity: '32Mi' } },
        { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\nvirtops-marker: volumes-ok\n' } },
      ],
    },
  };
});

afterAll(async () => {
  await virsh('destroy', domain);
  await virsh('undefine', domain);
  if (vmi && opts) await releaseVolumes(vmi, opts, { deleteVm: true });
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

it('boots the test guest from materialised volumes and it sees them', async () => {
  const { volumes, kernelBoot } = await materializeVolumes(vmi, opts);
  const ctx: ConversionContext = {
    emulation: 'tcg',
    volumes,
    ...(kernelBoot ? { kernelBoot } : {}),
    socketsDir: work,
    logDir: work,
  };
  const { xml } = convertVmi(vmi, ctx);
  const xmlFile = join(work, 'domain.xml');
  await writeFile(xmlFile, xml);
  const defined = await virsh('define', xmlFile);
  expect(defined.stderr).toBe('');
  expect((await virsh('start', domain)).exitCode).toBe(0);

  const log = serialLogPath(ctx, domain);
  const serial = (): Promise<string> => readFile(log, 'utf8').catch(() => '');
  await waitFor(async () => (await serial()).includes(GUEST_MARKERS.ready), 90_000, `${GUEST_MARKERS.ready} in ${log}`);
  const lines = (await serial()).split(/\r?\n/);
  expect(lines).toContain(`${GUEST_MARKERS.instanceId} uid-${process.pid}`);
  expect(lines).toContain(`${GUEST_MARKERS.userData} volumes-ok`);
  expect(lines).toContain(`${GUEST_MARKERS.diskLabel} vda test-disk`); // the containerDisk, through its overlay
  expect(lines).toContain(`${GUEST_MARKERS.disks} vda=8388608 vdb=33554432`); // + the 32Mi emptyDisk

  // ACPI power button → the guest powers itself off.
  await virsh('shutdown', domain);
  await waitFor(async () => (await virsh('domstate', domain)).stdout.includes('shut off'), 60_000, 'the guest to power off');
  expect(await serial()).toContain(GUEST_MARKERS.shutdown);
});
