/**
 * `virtops up` end to end against libvirt's test:///default driver (real libvirt API, no
 * QEMU): real git pushes, real `virtops up` and launcher processes, the real CLI. Boot
 * does not matter here; up-boot.test.ts covers a real TCG guest.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { bareVm, gitFixture, vmDocuments, type GitFixture } from './fixture.js';
import { podDir } from '../../../reconciler/agent/host-config.js';
import { apiGet, cleanupStateDir, cli, launcherPids, listVms, makeStateDir, rawRequest, readyCondition, startUp, vm, waitFor, type UpProcess } from './harness.js';

const UP_ARGS = (bare: string) => ['--repo', bare, '--libvirt-uri', 'test:///default', '--interval', '2s', '--no-freshness-check'];

describe('virtops up (test:///default)', () => {
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;
  let first: string;

  beforeAll(async () => {
    git = await gitFixture();
    stateDir = await makeStateDir();
  });

  afterAll(async () => {
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    await git?.cleanup();
  });

  const running = (name: string) => waitFor(`${name} Running`, async () => {
    const v = await vm(up.server, name);
    return v?.status?.printableStatus === 'Running' && v.instance ? v : undefined;
  });

  it('a push adds VMs and they reach Running; get vms shows them', async () => {
    first = await git.commitVms([bareVm('alpha'), bareVm('beta')], 'alpha and beta');
    up = await startUp(UP_ARGS(git.bare), stateDir);
    const a = await running('alpha');
    await running('beta');
    expect(a.revision).toBe(first);
    expect(readyCondition(a, 'Ready')).toBe('True');
    // Exactly one launcher process (launcher-monitor, the launcher in-process) per VM, started from the Pod's command line.
    const procs = await launcherPids(stateDir);
    expect(procs.filter((p) => p.monitor).map((p) => p.uid).sort()).toEqual([a.instance!.uid, (await vm(up.server, 'beta'))!.instance!.uid].sort());

    const table = await cli(['get', 'vms'], up.server);
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+AGE\s+STATUS\s+READY\s+REVISION/);
    expect(table.stdout).toMatch(new RegExp(`alpha\\s+\\S+\\s+Running\\s+True\\s+${first.slice(0, 12)}`));
    const json = JSON.parse((await cli(['get', 'vms', '-o', 'json'], up.server)).stdout) as { vms: unknown[] };
    expect(json.vms).toHaveLength(2);
    const yaml = YAML.parse((await cli(['get', 'vms', '-o', 'yaml'], up.server)).stdout) as { revision: string };
    expect(yaml.revision).toBe(first);
    const metrics = await apiGet<string>(up.server, '/metrics');
    expect(metrics).toMatch(/virtops_vms\{status="Running"\} 2/);
    expect(metrics).toMatch(/virtops_push_to_running_seconds_count 2/);
    expect(await apiGet(up.server, '/readyz')).toEqual({ ready: true });
  });

  it('a memory change sets RestartRequired and is applied by virtops restart; the override is visible', async () => {
    const before = (await vm(up.server, 'alpha'))!.instance!.uid;
    await git.commitVms([bareVm('alpha', { memory: '96Mi' }), bareVm('beta')], 'alpha: 96Mi');
    const flagged = await waitFor('RestartRequired', async () => {
      const v = await vm(up.server, 'alpha');
      return readyCondition(v, 'RestartRequired') === 'True' ? v : undefined;
    });
    expect(flagged.instance!.uid).toBe(before);
    expect(flagged.status!.printableStatus).toBe('Running');
    const diff = await cli(['diff'], up.server);
    expect(diff.stdout).toMatch(/no changes|alpha/);

    const r = await cli(['restart', 'alpha'], up.server);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/restart requested/);
    const after = await waitFor('restarted alpha', async () => {
      const v = await vm(up.server, 'alpha');
      return v?.instance && v.instance.uid !== before && v.status?.printableStatus === 'Running' ? v : undefined;
    });
    expect(readyCondition(after, 'RestartRequired')).toBeUndefined();
    expect(after.override?.action).toBe('restart');
    const d = await cli(['describe', 'vm', 'alpha'], up.server);
    expect(d.stdout).toMatch(/Override:\s+restart/);
    expect(d.stdout).toMatch(/RestartRequired/);
    expect(d.stdout).toMatch(/Domain:\s+default_alpha/);
  });

  it('stop and start are overrides; stop removes the instance and its launcher', async () => {
    const uid = (await vm(up.server, 'beta'))!.instance!.uid;
    expect((await cli(['stop', 'beta'], up.server)).exitCode).toBe(0);
    await waitFor('beta Stopped', async () => (await vm(up.server, 'beta'))?.status?.printableStatus === 'Stopped');
    expect((await launcherPids(stateDir)).some((p) => p.uid === uid)).toBe(false);
    expect((await cli(['start', 'beta'], up.server)).exitCode).toBe(0);
    const v = await running('beta');
    expect(v.instance!.uid).not.toBe(uid);
    const bad = await cli(['pause', 'nope'], up.server);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/nope is not in the applied revision/);
  });

  it('an invalid commit is refused: running VMs untouched, the error visible in get vms and describe', async () => {
    const before = (await listVms(up.server)).vms.map((v) => v.instance?.uid);
    const applied = (await listVms(up.server)).revision;
    const broken = YAML.parse(vmDocuments(bareVm('alpha')).split('---\n')[0]!) as Record<string, Record<string, unknown>>;
    broken['spec']!['runStrategyy'] = 'Always';
    const bad = await git.commitDist({ 'alpha.k8s.yaml': YAML.stringify(broken) }, 'typo');
    const list = await waitFor('refusal', async () => {
      const l = await listVms(up.server);
      return l.refused?.sha === bad ? l : undefined;
    });
    expect(list.revision).toBe(applied);
    expect(list.refused!.errors.join('\n')).toMatch(/runStrategyy/);
    expect(list.vms.map((v) => v.instance?.uid)).toEqual(before);
    const table = await cli(['get', 'vms'], up.server);
    expect(table.stderr).toMatch(new RegExp(`commit ${bad.slice(0, 12)} was refused`));
    const d = await cli(['describe', 'vm', 'alpha'], up.server);
    expect(d.stdout).toMatch(/Source:\s+commit \w+ refused/);
    expect(await apiGet<string>(up.server, '/metrics')).toMatch(/virtops_revision_refused 1/);
  });

  it('removing a VM from git prunes it: instance, launcher process, socket and files gone', async () => {
    const beta = (await vm(up.server, 'beta'))!;
    await git.commitVms([bareVm('alpha', { memory: '96Mi' })], 'remove beta');
    await waitFor('beta pruned', async () => (await vm(up.server, 'beta')) === undefined);
    expect((await launcherPids(stateDir)).some((p) => p.uid === beta.instance!.uid)).toBe(false);
    expect(existsSync(beta.instance!.socket)).toBe(false);
    expect(existsSync(beta.instance!.podDir)).toBe(false);
    expect(existsSync(`${stateDir}/vms/default_beta.json`)).toBe(false);
  });

  it('a force-push back to an older commit converges to it', async () => {
    await git.forcePush(first);
    const beta = await running('beta');
    expect(beta.revision).toBe(first);
    // alpha's template is back to 64Mi while its instance runs 96Mi: flagged, not restarted.
    const alpha = await waitFor('alpha flagged', async () => {
      const v = await vm(up.server, 'alpha');
      return v?.revision === first && readyCondition(v, 'RestartRequired') === 'True' ? v : undefined;
    });
    expect(alpha.override).toBeUndefined(); // the commit touched alpha: its override is cleared
  });

  it('SIGKILL mid-reconcile, then a new up: no duplicate or orphan launchers or instances', async () => {
    const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    await git.commitVms([bareVm('alpha'), bareVm('beta'), ...names.map((n) => bareVm(n))], 'six more');
    // Kill as soon as the first new launcher has been recorded, while others are starting.
    await waitFor('a new instance recorded', async () => {
      for (const n of names) if (existsSync(`${stateDir}/vms/default_${n}.json`) && existsSync(podDir(stateDir, 'default', n))) return true;
      return false;
    }, 30_000, 10);
    await up.kill9();
    up = await startUp(UP_ARGS(git.bare), stateDir);
    for (const n of ['alpha', 'beta', ...names]) await running(n);
    await waitFor('orphans to go', async () => {
      const list = await listVms(up.server);
      const uids = new Set(list.vms.map((v) => v.instance!.uid));
      const procs = await launcherPids(stateDir);
      const monitors = procs.filter((p) => p.monitor);
      return monitors.length === uids.size && monitors.every((p) => uids.has(p.uid)) && procs.every((p) => uids.has(p.uid));
    }, 30_000);
    const list = await listVms(up.server);
    expect(list.vms).toHaveLength(8);
    expect(new Set(list.vms.map((v) => v.instance!.domain)).size).toBe(8);
  });

  it('SIGTERM stops the reconciler and leaves VMs running; the next up adopts them', async () => {
    const before = (await listVms(up.server)).vms.map((v) => `${v.name}:${v.instance!.uid}`).sort();
    await up.stop();
    const exit = `up exited: code ${up.proc.exitCode} signal ${up.proc.signalCode}`;
    expect(up.logText(), exit).toMatch(/VMs keep running/);
    expect(up.logText(), exit).toMatch(/"msg":"stopped"/);
    expect(up.proc.exitCode, exit).toBe(0);
    expect((await launcherPids(stateDir)).filter((p) => p.monitor)).toHaveLength(8);
    up = await startUp(UP_ARGS(git.bare), stateDir);
    await waitFor('adopted', async () => (await listVms(up.server)).vms.every((v) => v.status?.printableStatus === 'Running'));
    expect((await listVms(up.server)).vms.map((v) => `${v.name}:${v.instance!.uid}`).sort()).toEqual(before);
    expect(up.logText()).toMatch(/adopting 8 launcher/);
  });

  it('the control API serves no webhook (that is --webhook-listen, see up-api-security.test.ts)', async () => {
    const r = await rawRequest({ socketPath: up.server.slice('unix:'.length) }, 'POST', '/hooks/git', { 'content-type': 'application/json', 'x-signature-256': 'sha256=00' }, '{}');
    expect(r.status).toBe(404);
  });

  it('validates flags, naming the flag and the fix', async () => {
    const r = await cli(['up', '--repo', git.bare, '--interval', 'soon', '--emulation', 'fast', '--listen', 'nowhere']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/--interval "soon"/);
    expect(r.stderr).toMatch(/--emulation "fast"/);
    expect(r.stderr).toMatch(/--listen "nowhere"/);
  });
});
