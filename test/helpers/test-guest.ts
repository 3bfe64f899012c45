import { open, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** The test guest built by scripts/build-test-guest.sh (see the script for its serial protocol). */
export interface TestGuest {
  /** Build key: kernel version + script hash. */
  key: string;
  kernelVersion: string;
  /** Direct kernel boot artifacts. */
  vmlinuz: string;
  initrd: string;
  /** Kernel command line that sends the console to ttyS0 (markers go there regardless). */
  kernelArgs: string;
  /** A tiny qcow2 whose first line is `virtops-disk-label: test-disk`. */
  disk: string;
  /** OCI layouts (tag `latest`): kernelBoot.container style and containerDisk style. */
  ociKernelBoot: string;
  ociDisk: string;
}

/** Serial markers the guest prints (one per line). */
export const GUEST_MARKERS = {
  booted: 'VIRTOPS-GUEST-BOOTED',
  ready: 'VIRTOPS-GUEST-READY',
  shutdown: 'VIRTOPS-GUEST-SHUTDOWN',
  userData: 'VIRTOPS-USERDATA',
  instanceId: 'VIRTOPS-INSTANCE-ID',
  disks: 'VIRTOPS-DISKS',
  diskLabel: 'VIRTOPS-DISK-LABEL',
} as const;

const SCRIPT = fileURLToPath(new URL('../../scripts/build-test-guest.sh', import.meta.url));

let cached: Promise<TestGuest> | undefined;

/** Builds the guest if the cache is stale (cheap when it is not) and returns its paths. */
export function ensureTestGuest(): Promise<TestGuest> {
  cached ??= (async () => {
    const { stdout } = await execa('bash', [SCRIPT], { stderr: 'inherit' });
    const dir = stdout.trim().split('\n').at(-1)!;
    return JSON.parse(await readFile(`${dir}/info.json`, 'utf8')) as TestGuest;
  })();
  return cached;
}

/** Writes the label line the test guest prints for a disk (GUEST_MARKERS.diskLabel) into the first 512 bytes of a raw disk file. */
export async function writeDiskLabel(file: string, label: string): Promise<void> {
  const fd = await open(file, 'r+');
  try {
    const line = Buffer.alloc(512);
    line.write(`virtops-disk-label: ${label}\n`);
    await fd.write(line, 0, 512, 0);
    await fd.sync();
  } finally {
    await fd.close();
  }
}
