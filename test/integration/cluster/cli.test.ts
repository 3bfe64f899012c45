/**
 * One CLI for both modes (issue 12, part 3): every VM command of `virtops`, run as the real
 * CLI process with `--kubeconfig`, against the shared control plane, a controller and a
 * process-runtime agent serving its console endpoint (API server clients only), and the test
 * guest under TCG: get vms|vmis (-n, -A, -o wide|json|yaml), describe, diff (./dist against
 * the cluster), pause/unpause, console (the guest's serial output through
 * nodes/<node>/proxy), stop (an override on the VM, undone by the next commit touching it),
 * reconcile (waits until the controller handled it).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { OVERRIDE_ANNOTATION } from '../../../reconciler/core/overrides.js';
import { CLI_BIN, defaultNodeIp, runAgent, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { type LocalRegistry, pushTestGuestImages, startRegistry } from '../../helpers/registry.js';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { bareVm, testGuestVm, vmDocuments } from '../standalone/fixture.js';
import { clusterTestenv } from './testenv-fixture.js';
import { teardownGuestTest, commitVms, getVm, gitFixture, identities, log, startController, tempDir, until, type Env, type Identities } from './harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-cli-${suffix}`;
const NODE = `vo-cli-node-${suffix}`;
const NAME = 'g';
const DOMAIN = `${NS}_${NAME}`;
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

describe.skipIf(!env || !defaultNodeIp())('virtops CLI in cluster mode (--kubeconfig), every VM command against the real control plane', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let registry: LocalRegistry;
  let image: string;
  let controller: ControllerHandle;
  let agent: AgentHandle;

  const cli = (args: string[], opts: { cwd?: string; kubeconfig?: string } = {}) =>
    execa(process.execPath, [CLI_BIN, ...args, '--kubeconfig', opts.kubeconfig ?? e.kubeconfigPath, '--controller-namespace', NS], {
      reject: false, cwd: opts.cwd ?? process.cwd(), env: { VIRTOPS_STATE_DIR: '', VIRTOPS_SERVER: '' },
    });
  const guest = (labels: Record<string, string> = {}): VirtualMachine => {
    const v = testGuestVm({ image, name: NAME });
    v.metadata.namespace = NS;
    v.metadata.labels = { ...(v.metadata.labels ?? {}), ...labels };
    return v;
  };
  const halted = () => ({ ...bareVm('h', { runStrategy: 'Halted' }), metadata: { name: 'h', namespace: NS } }) as VirtualMachine;
  const status = async () => (await getVm(ids.admin, NS, NAME))?.status?.printableStatus;

  beforeAll(async () => {
    registry = await startRegistry();
    image = (await pushTestGuestImages(registry)).kernelBootImage;
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-cli-');
    const pki = e.nodePki;
    agent = await runAgent(
      {
        node: NODE, processRuntime: true, stateDir: state.dir, emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [registry.host], intervalMs: 5000,
        console: { tlsCertFile: pki.servingCertFile, tlsKeyFile: pki.servingKeyFile, clientCaFile: pki.clientCaFile, address: '0.0.0.0', port: 0, nodeIp: defaultNodeIp()! },
      },
      log.child({ c: 'agent' }),
      { client: ids.agent.client },
    );
    controller = await startController(ids, git, NS);
    await commitVms(git, [guest(), halted()], 'the test guest and a halted VM');
    await until('VM Running', async () => (await status()) === 'Running', 300_000, 500);
  }, 600_000);

  afterAll(() => teardownGuestTest({ ids, controller, agent, state, git, registry, ns: NS, node: NODE, domain: DOMAIN }), 180_000);

  it('get vms|vmis: KubeVirt columns, -A adds NAMESPACE, -o wide|json|yaml', async () => {
    const vms = await cli(['get', 'vms', '-n', NS]);
    expect(vms.exitCode, vms.stderr).toBe(0);
    const lines = vms.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+AGE\s+STATUS\s+READY$/);
    expect(lines.find((l) => l.startsWith('g '))).toMatch(/^g\s+\S+\s+Running\s+True$/);
    expect(lines.find((l) => l.startsWith('h '))).toMatch(/^h\s+\S+\s+Stopped\s+False$/);

    const all = await cli(['get', 'vms', '-A']);
    expect(all.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+AGE\s+STATUS\s+READY$/);
    expect(all.stdout).toMatch(new RegExp(`^${NS}\\s+g\\s+\\S+\\s+Running\\s+True$`, 'm'));

    const vmis = await cli(['get', 'vmis', '-n', NS, '-o', 'wide']);
    expect(vmis.exitCode, vmis.stderr).toBe(0);
    expect(vmis.stdout.split('\n')[0]).toMatch(/^NAME\s+AGE\s+PHASE\s+IP\s+NODENAME\s+READY\s+PAUSED$/);
    expect(vmis.stdout).toMatch(new RegExp(`^g\\s+\\S+\\s+Running\\s+(\\S+\\s+)?${NODE}\\s+True\\s+False$`, 'm'));

    const json = JSON.parse((await cli(['get', 'vm', '-n', NS, '-o', 'json'])).stdout) as { items: VirtualMachine[] };
    expect(json.items.map((v) => v.metadata.name)).toEqual(['g', 'h']);
    const yaml = YAML.parse((await cli(['get', 'vmi', '-n', NS, '-o', 'yaml'])).stdout) as { items: VirtualMachineInstance[] };
    expect(yaml.items[0]?.status?.nodeName).toBe(NODE);

    const none = await cli(['get', 'vms', '-n', `${NS}-empty`]);
    expect(none.exitCode).toBe(0);
    expect(none.stderr).toContain(`No VirtualMachines found in ${NS}-empty namespace.`);
    const bad = await cli(['get', 'pods']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/resource "pods" is not supported/);
  }, 120_000);

  it('describe vm: status, instance on its node, launcher Pod, conditions and events', async () => {
    const d = await cli(['describe', 'vm', `${NS}/${NAME}`]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/Status:\s+Running/);
    expect(d.stdout).toMatch(new RegExp(`Node:\\s+${NODE}`));
    expect(d.stdout).toMatch(/Launcher Pod:\s+virt-launcher-g-\S+ \(Running\)/);
    expect(d.stdout).toMatch(/Revision:\s+[0-9a-f]{40}/);
    expect(d.stdout).toMatch(/SuccessfulCreate/);
    const missing = await cli(['describe', 'vm', 'nope', '-n', NS]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`VirtualMachine ${NS}/nope not found`);
  }, 60_000);

  it('diff: ./dist against the cluster (server-side apply dry run), then per-VM actions', async () => {
    const same = await cli(['diff'], { cwd: git.work });
    expect(same.exitCode, same.stderr).toBe(0);
    expect(same.stdout).toContain('no changes: the cluster matches dist/');
    // An uncommitted edit of the VM: the field it changes, and a new VM that would start.
    const more = { ...guest(), spec: { ...guest().spec, template: { ...guest().spec.template, spec: { ...guest().spec.template.spec, domain: { ...guest().spec.template.spec.domain, memory: { guest: '200Mi' } } } } } } as VirtualMachine;
    await writeFile(join(git.work, 'dist', `${NAME}.k8s.yaml`), vmDocuments(more));
    await writeFile(join(git.work, 'dist', 'n.k8s.yaml'), vmDocuments({ ...bareVm('n'), metadata: { name: 'n', namespace: NS } } as VirtualMachine));
    const changed = await cli(['diff'], { cwd: git.work });
    expect(changed.exitCode, changed.stderr).toBe(0);
    expect(changed.stdout).toContain(`~ kubevirt.io/v1/VirtualMachine/${NS}/g (update)`);
    expect(changed.stdout).toMatch(/spec\.template\.spec\.domain\.memory\.guest: .* → "200Mi"/);
    expect(changed.stdout).toContain(`+ kubevirt.io/v1/VirtualMachine/${NS}/n (create)`);
    expect(changed.stdout).toMatch(new RegExp(`\\+ ${NS}/n \\(create\\)\\n    create-instance`));
    const json = JSON.parse((await cli(['diff', '-o', 'json'], { cwd: git.work })).stdout) as { objects: { key: string }[] };
    expect(json.objects.map((o) => o.key)).toContain(`kubevirt.io/v1/VirtualMachine/${NS}/n`);
    // Back to what git has.
    await execa('git', ['checkout', '--', 'dist'], { cwd: git.work });
    await execa('rm', ['-f', join(git.work, 'dist', 'n.k8s.yaml')]);
  }, 120_000);

  it('pause and unpause: an override the node agent carries out', async () => {
    const p = await cli(['pause', NAME, '-n', NS]);
    expect(p.exitCode, p.stderr).toBe(0);
    expect(p.stdout).toContain('pause requested');
    await until('VM Paused', async () => (await status()) === 'Paused', 60_000, 250);
    expect((await virsh('domstate', DOMAIN)).stdout.trim()).toBe('paused');
    expect((await cli(['get', 'vms', '-n', NS, '-o', 'wide'])).stdout).toMatch(/^g\s+\S+\s+Paused\s+\S+\s+Always\b.*\bpause\b/m);
    expect((await cli(['unpause', NAME, '-n', NS])).exitCode).toBe(0);
    await until('VM Running again', async () => (await status()) === 'Running', 60_000, 250);
    expect((await virsh('domstate', DOMAIN)).stdout.trim()).toBe('running');
  }, 150_000);

  it('console reaches the serial port through the API server; only the API server reaches the agent', async () => {
    // Without RBAC on nodes/proxy (the agent's service account has none), the API server refuses.
    const denied = await cli(['console', NAME, '-n', NS], { kubeconfig: ids.agent.kubeconfigPath });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toMatch(/nodes\/proxy/);
    // The agent's port itself refuses a client without the API server's certificate.
    const port = agent.console!.port;
    const direct = await new Promise<string>((resolve) => {
      const req = request({ host: defaultNodeIp(), port, path: `/virtops/v1/console/${NS}/${NAME}`, rejectUnauthorized: false }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (err) => resolve(err.message));
      req.end();
    });
    expect(direct).not.toMatch(/^HTTP/);

    // Attached, then `virtops stop`: the guest's ACPI shutdown message arrives on the console.
    const con = execa(process.execPath, [CLI_BIN, 'console', NAME, '-n', NS, '--kubeconfig', e.kubeconfigPath], { reject: false, stdin: 'pipe' });
    let err = '';
    let out = '';
    con.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    con.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    await until('console attached', async () => /Connected to .* on node/.test(err), 30_000, 100);
    // Input reaches the guest's serial port too (the guest echoes nothing back, so only no error is checked).
    con.stdin?.write('\n');
    const stop = await cli(['stop', NAME, '-n', NS]);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(stop.stdout).toContain(`virtualmachine ${NS}/g: stop requested`);
    await until('shutdown on the console', async () => out.includes(GUEST_MARKERS.shutdown), 120_000, 250);
    const ended = await con;
    expect(ended.exitCode, ended.stderr).toBe(0);
  }, 240_000);

  it('stop shows on the VM as an override, and the next commit touching the VM (applied by virtops reconcile) undoes it', async () => {
    await until('VM Stopped', async () => (await status()) === 'Stopped', 120_000, 250);
    const vm = await getVm(ids.admin, NS, NAME);
    expect(JSON.parse(vm!.metadata.annotations![OVERRIDE_ANNOTATION]!)).toMatchObject({ action: 'stop' });
    expect((await cli(['get', 'vms', '-n', NS, '-o', 'wide'])).stdout).toMatch(/^g\s+\S+\s+Stopped\s+False\s+Always\b.*\bstop\b/m);
    expect((await cli(['describe', 'vm', NAME, '-n', NS])).stdout).toMatch(/Override:\s+stop \(requested/);
    // A commit that does not touch g keeps the override.
    await commitVms(git, [guest(), { ...halted(), metadata: { ...halted().metadata, labels: { touched: 'h-only' } } }], 'touch h only');
    const r1 = await cli(['reconcile']);
    expect(r1.exitCode, r1.stderr).toBe(0);
    expect(r1.stdout).toMatch(/reconciliation finished: applied revision [0-9a-f]{12}/);
    expect((await getVm(ids.admin, NS, NAME))?.metadata.annotations?.[OVERRIDE_ANNOTATION]).toBeDefined();
    expect(await status()).toBe('Stopped');
    // The next commit touching g: git (runStrategy Always) wins again, also when a second
    // commit changes g back before the controller applies either (the net change is nothing).
    await commitVms(git, [guest({ touched: 'yes' }), halted()], 'touch g');
    const sha = await commitVms(git, [guest(), halted()], 'g back as it was');
    const r2 = await cli(['reconcile']);
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(sha.slice(0, 12));
    expect((await getVm(ids.admin, NS, NAME))?.metadata.annotations?.[OVERRIDE_ANNOTATION]).toBeUndefined();
    await until('VM Running again', async () => (await status()) === 'Running', 300_000, 500);
    const d = await cli(['describe', 'vm', NAME, '-n', NS]);
    expect(d.stdout).not.toMatch(/Override:/);
    expect(d.stdout).toMatch(/OverrideCleared/);
  }, 420_000);

  it('reconcile names the controller namespace when there is none; errors name the flag', async () => {
    const r = await execa(process.execPath, [CLI_BIN, 'reconcile', '--kubeconfig', e.kubeconfigPath, '--controller-namespace', `${NS}-none`], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/virtops-inventory not found.*--controller-namespace/);
    const both = await execa(process.execPath, [CLI_BIN, 'get', 'vms', '--kubeconfig', e.kubeconfigPath, '--server', 'unix:/tmp/x.sock'], { reject: false });
    expect(both.stderr).toMatch(/--kubeconfig \(cluster mode\) cannot be combined with --server/);
  }, 60_000);
});
