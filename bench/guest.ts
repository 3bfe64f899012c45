/**
 * The Debian guest (scripts/guest-image) on a single host, qemu:///system, TCG:
 *
 * 1. git push → `virtops ssh` succeeds (the guest booted, cloud-init made the user and put
 *    the key, sshd answers through the launcher's port forward), p50 of N runs, beside the
 *    same image booted with plain `virsh define && virsh start` + the same cloud-init ISO
 *    (the domain XML the launcher defined, renamed, on a fresh overlay; plain `ssh` to its
 *    forwarded port). Runs alternate virtops / virsh so load drifts hit both. Goal: ≤ 1.1x.
 * 2. Throughput host ↔ guest with iperf3 (in the guest image; Debian's iperf3 on the host):
 *    through the port forward (host client → 127.0.0.1:<forwarded port> → guest server, both
 *    directions with -R), beside libvirt user networking without forwards (the guest's client
 *    → the host's server at the user network's gateway, which is the host's loopback).
 *
 *   npx tsx bench/guest.ts [--runs 5] [--json]
 * --json prints one JSON line with every figure instead of the table.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { debianVm, ensureDebianGuest, makeSshKeyPair, pushDebianGuestImage, SSH_TEST_OPTIONS } from '../test/helpers/debian-guest.js';
import { freePort, startRegistry } from '../test/helpers/registry.js';
import { bareVm, gitFixture, vmDocuments } from '../test/integration/standalone/fixture.js';
import { CLI, makeStateDir, vm as getVm, waitFor } from '../test/integration/standalone/harness.js';
import { startDebianUp, tearDownDebianUp, virsh } from '../test/integration/guest/debian-up.js';
import type { VirtualMachine } from '../api/kubevirt.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const RUNS = Number(arg('--runs') ?? 5);
const JSON_OUT = process.argv.includes('--json');
const NAME = 'bench-guest';
const DOMAIN = `default_${NAME}`;
const PLAIN = 'bench-guest-virsh';
const USER = 'virtops';
const IPERF_SECONDS = 5;

const log = (s: string) => {
  if (!JSON_OUT) console.error(s);
};
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

function benchVm(image: string, publicKey: string): VirtualMachine {
  const userData = [
    '#cloud-config',
    'users:',
    `  - name: ${USER}`,
    '    shell: /bin/bash',
    `    ssh_authorized_keys: [${JSON.stringify(publicKey)}]`,
    'runcmd:',
    '  - [sh, -c, "setsid iperf3 -s -p 5201 </dev/null >/dev/null 2>&1 &"]',
    '',
  ].join('\n');
  return debianVm({
    name: NAME,
    image,
    cloudInit: { noCloud: userData },
    ports: [{ name: 'ssh', port: 22 }, { name: 'iperf', port: 5201 }],
    terminationGracePeriodSeconds: 30,
  });
}

/** Retries `attempt` every second until it exits 0; returns when it did. */
async function untilZero(what: string, attempt: () => Promise<{ exitCode?: number }>, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await attempt()).exitCode !== 0) {
    if (Date.now() > deadline) throw new Error(`${what}: no success within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Guest port → host port of the user netdev's hostfwd in a domain XML. */
function forwards(xml: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of xml.matchAll(/hostfwd=tcp:127\.0\.0\.1:(\d+)-:(\d+)/g)) out.set(Number(m[2]), Number(m[1]));
  return out;
}

interface IperfResult { error?: string; end?: { sum_received?: { bits_per_second: number } } }
/** Received Mbit/s from `iperf3 -J`; iperf3 reports its failures in the same JSON (`error`). */
function mbps(json: string): number {
  const r = JSON.parse(json) as IperfResult;
  const bps = r.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new Error(`iperf3 failed: ${r.error ?? json.slice(0, 300)}`);
  return bps / 1e6;
}

/**
 * One iperf3 measurement, tried up to 3 times: the first control connection through a fresh
 * forward was once reset (1 run in 3), which says nothing about throughput; each failure is logged.
 */
async function iperf3Mbps(run: () => Promise<{ stdout: string }>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const { stdout } = await run();
    try {
      return mbps(stdout);
    } catch (err) {
      if (attempt === 3) throw err;
      log(`${(err as Error).message}; trying again`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const image = await pushDebianGuestImage(registry);
  const guest = await ensureDebianGuest();
  const git = await gitFixture();
  const stateDir = await makeStateDir();
  const key = await makeSshKeyPair();
  const work = await mkdtemp(join(tmpdir(), 'vo-bench-guest-'));
  const placeholder = bareVm('placeholder', { runStrategy: 'Halted' });
  await git.commitDist({ 'placeholder.k8s.yaml': vmDocuments(placeholder) }, 'placeholder');
  const up = await startDebianUp(git.bare, registry, stateDir);
  const virtopsMs: number[] = [];
  const plainMs: number[] = [];
  const throughput: Record<string, number> = {};
  let plainXml = '';
  try {
    await waitFor('placeholder applied', async () => (await getVm(up.server, 'placeholder'))?.status?.printableStatus === 'Stopped', 60_000);
    // The base image the overlays of the virsh runs sit on (a copy: libvirt relabels it).
    const base = join(work, 'base.qcow2');
    await copyFile(guest.disk, base);
    for (let i = 0; i < RUNS; i++) {
      // --- virtops: push → ssh ---
      const t0 = performance.now();
      await git.commitDist({ 'placeholder.k8s.yaml': vmDocuments(placeholder), [`${NAME}.k8s.yaml`]: vmDocuments(benchVm(image, key.publicKey)) }, `add ${NAME} #${i}`);
      await untilZero('virtops ssh', () => execa(process.execPath, [CLI, 'ssh', '--server', up.server, `${USER}@${NAME}`, '-i', key.privateKey, ...SSH_TEST_OPTIONS, '-o', 'ConnectTimeout=10', '--', 'true'], { reject: false, timeout: 60_000 }));
      virtopsMs.push(performance.now() - t0);
      log(`virtops #${i}: ${(virtopsMs.at(-1)! / 1000).toFixed(1)} s`);
      const xml = (await virsh('dumpxml', '--inactive', DOMAIN)).stdout;
      if (i === 0) {
        // The same domain, outside virtops: new name, no uuid, paths under `work`, the same ISO.
        const podDir = /file='([^']+\/pods\/[^/]+)\//.exec(xml)?.[1];
        if (!podDir) throw new Error('no pod directory in the launcher\'s domain XML');
        const iso = /file='([^']+cloudinitdisk\.iso)'/.exec(xml)![1]!;
        await copyFile(iso, join(work, 'cloudinit.iso'));
        plainXml = xml
          .replace(/<name>[^<]*<\/name>/, `<name>${PLAIN}</name>`)
          .replace(/<uuid>[^<]*<\/uuid>/, '')
          .replace(/<entry name='uuid'>[^<]*<\/entry>/, '')
          .replace(/file='[^']+\/root\.qcow2'/, `file='${join(work, 'root.qcow2')}'`)
          .replace(/file='[^']+cloudinitdisk\.iso'/, `file='${join(work, 'cloudinit.iso')}'`)
          .replace(/<backingStore\/>/g, '')
          .replace(/<backingStore[^>]*>[\s\S]*?<\/backingStore>/g, '')
          .replaceAll(podDir, join(work, 'pod'))
          .replaceAll(`${DOMAIN}-`, `${PLAIN}-`);
        await mkdir(join(work, 'pod', 'public', 'sockets'), { recursive: true });
        await mkdir(join(work, 'pod', 'public', 'logs'), { recursive: true });
      }
      if (i === 0) {
        // --- throughput, on the first virtops guest (so a failure shows before the other runs) ---
        const fwd = forwards(xml).get(5201);
        if (!fwd) throw new Error('no forward for guest port 5201');
        // sshd answers before cloud-init's runcmd (cloud-final) has started the guest's iperf3
        // server, so make sure it listens (starting it if runcmd has not yet).
        await untilZero('guest iperf3 server', () => execa(process.execPath, [CLI, 'ssh', '--server', up.server, `${USER}@${NAME}`, '-i', key.privateKey, ...SSH_TEST_OPTIONS, '--',
          'ss -Hltn sport = :5201 | grep -q . || { setsid iperf3 -s -D -p 5201; sleep 1; ss -Hltn sport = :5201 | grep -q .; }'], { reject: false, timeout: 60_000 }));
        for (const [label, extra] of [['host → guest, port forward', []], ['guest → host, port forward', ['-R']]] as const) {
          throughput[label] = await iperf3Mbps(() => execa('iperf3', ['-c', '127.0.0.1', '-p', String(fwd), '-t', String(IPERF_SECONDS), '-J', ...extra], { reject: false }));
        }
        const hostPort = await freePort();
        const server = execa('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(hostPort)], { reject: false });
        try {
          await new Promise((r) => setTimeout(r, 500));
          for (const [label, extra] of [['guest → host, user networking (no forward)', ''], ['host → guest, user networking (no forward)', ' -R']] as const) {
            throughput[label] = await iperf3Mbps(() => execa(process.execPath, [CLI, 'ssh', '--server', up.server, `${USER}@${NAME}`, '-i', key.privateKey, ...SSH_TEST_OPTIONS, '--',
              `iperf3 -c $(ip route show default | awk '{print $3}') -p ${hostPort} -t ${IPERF_SECONDS} -J${extra}`], { timeout: 120_000, reject: false }));
          }
        } finally {
          server.kill('SIGTERM');
          await server;
        }
        log(`throughput: ${JSON.stringify(throughput)}`);
      }
      await git.commitDist({ 'placeholder.k8s.yaml': vmDocuments(placeholder) }, `remove ${NAME} #${i}`);
      await waitFor('pruned', async () => (await getVm(up.server, NAME)) === undefined && (await virsh('domstate', DOMAIN)).exitCode !== 0, 300_000, 200);

      // --- plain virsh: define + start → ssh, the same ISO, a fresh overlay ---
      await rm(join(work, 'root.qcow2'), { force: true });
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', join(work, 'root.qcow2')]);
      // Fresh host ports for its forwards (the launcher's may be taken by now).
      const hostPorts = new Map<number, number>();
      for (const guestPort of forwards(plainXml).keys()) hostPorts.set(guestPort, await freePort());
      const sshPort = hostPorts.get(22)!;
      await writeFile(join(work, 'domain.xml'), plainXml.replace(/hostfwd=tcp:127\.0\.0\.1:\d+-:(\d+)/g, (_, g: string) => `hostfwd=tcp:127.0.0.1:${hostPorts.get(Number(g))}-:${g}`));
      const t1 = performance.now();
      await execa('sh', ['-c', `virsh -q -c qemu:///system define ${join(work, 'domain.xml')} >/dev/null && virsh -q -c qemu:///system start ${PLAIN} >/dev/null`]);
      await untilZero('ssh', () => execa('ssh', ['-p', String(sshPort), '-i', key.privateKey, ...SSH_TEST_OPTIONS, '-o', 'ConnectTimeout=10', '-o', 'IdentitiesOnly=yes', `${USER}@127.0.0.1`, 'true'], { reject: false, timeout: 60_000 }));
      plainMs.push(performance.now() - t1);
      log(`virsh #${i}: ${(plainMs.at(-1)! / 1000).toFixed(1)} s`);
      await virsh('destroy', PLAIN);
      await virsh('undefine', PLAIN);
    }
  } finally {
    if ((await virsh('domstate', PLAIN)).exitCode === 0) {
      await virsh('destroy', PLAIN);
      await virsh('undefine', PLAIN);
    }
    await tearDownDebianUp({ up, stateDir, domains: [DOMAIN], git, registry });
    await key.remove();
    await rm(work, { recursive: true, force: true });
  }

  const ratio = p50(virtopsMs) / p50(plainMs);
  if (JSON_OUT) {
    console.log(JSON.stringify({ runs: RUNS, pushToSshMs: virtopsMs.map(Math.round), virshToSshMs: plainMs.map(Math.round), p50PushToSshMs: Math.round(p50(virtopsMs)), p50VirshToSshMs: Math.round(p50(plainMs)), ratio: Number(ratio.toFixed(3)), iperf3Mbps: Object.fromEntries(Object.entries(throughput).map(([k, v]) => [k, Number(v.toFixed(1))])) }));
    return;
  }
  const s = (x: number) => `${(x / 1000).toFixed(1)} s`;
  console.log(`p50 of ${RUNS}`);
  console.log(`git push → virtops ssh succeeds        ${s(p50(virtopsMs))}  (${virtopsMs.map(s).join(', ')})`);
  console.log(`virsh define+start → ssh (same ISO)    ${s(p50(plainMs))}  (${plainMs.map(s).join(', ')})`);
  console.log(`ratio ${ratio.toFixed(2)}x (goal ≤ 1.1: ${ratio <= 1.1 ? 'met' : 'MISSED'})`);
  for (const [k, v] of Object.entries(throughput)) console.log(`iperf3 ${k.padEnd(44)} ${v.toFixed(0)} Mbit/s`);
}

await main();
