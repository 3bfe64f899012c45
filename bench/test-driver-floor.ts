/**
 * The floor of the `test:///default` benchmarks (bench:density, bench:scaling): N domains of
 * the test driver defined and started by one `virsh` session, libvirt alone (no git, no
 * reconciler, no launchers). Each test:///default connection is a fresh in-memory driver, so
 * nothing needs removing afterwards.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** Milliseconds for one virsh session to define and start `n` test-driver domains. */
export async function testDriverFloorMs(n: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-bench-floor-'));
  try {
    const cmds: string[] = [];
    for (let i = 0; i < n; i++) {
      const file = join(dir, `d${i}.xml`);
      await writeFile(file, `<domain type="test"><name>default_b${i}</name><memory unit="MiB">64</memory><vcpu>1</vcpu><os><type arch="x86_64">hvm</type></os></domain>`);
      cmds.push(`define ${file}`, `start default_b${i}`);
    }
    const t0 = performance.now();
    await execa('virsh', ['-q', '-c', 'test:///default'], { input: `${cmds.join('\n')}\n` });
    return performance.now() - t0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
