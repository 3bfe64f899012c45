/**
 * The web dashboard in cluster mode (issue 14): `virtops controller`'s dashboard listener
 * (reconciler/cluster/dashboard.ts) against the shared real control plane, a controller under
 * its install RBAC (synth/install.ts), a process-runtime agent with its console endpoint and
 * the test guest under TCG, in Debian's headless chromium (playwright-core). Runs in the
 * `cluster` project (vitest.config.ts): it needs the control plane's global setup.
 *
 * An unauthenticated browser gets the login page and no data; `virtops dashboard
 * --kubeconfig` prints the login link (token from Secret virtops-dashboard); after a push the
 * overview turns the VM Running without a reload; the stop button puts the override on the
 * VM (kubectl-visible annotation) and the VM stops; a cross-origin POST changes nothing.
 * Screenshots in ./artifacts/ (gitignored).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { OVERRIDE_ANNOTATION } from '../../../reconciler/core/overrides.js';
import { CLI_BIN, defaultNodeIp, runAgent, type AgentHandle, type ControllerHandle } from '../../../reconciler/cluster/run.js';
import { startControllerDashboard, type ClusterDashboard } from '../../../reconciler/cluster/dashboard.js';
import { type LocalRegistry, pushTestGuestImages, startRegistry } from '../../helpers/registry.js';
import { testGuestVm } from '../standalone/fixture.js';
import { clusterTestenv } from '../cluster/testenv-fixture.js';
import { teardownGuestTest, commitVms, getVm, gitFixture, identities, log, startController, tempDir, until, type Env, type Identities } from '../cluster/harness.js';

const env = await clusterTestenv();
const suffix = randomBytes(3).toString('hex');
const NS = `vo-dash-${suffix}`;
const NODE = `vo-dash-node-${suffix}`;
const NAME = 'g';
const DOMAIN = `${NS}_${NAME}`;
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;

describe.skipIf(!env || !defaultNodeIp() || !existsSync(CHROMIUM))('the dashboard served by virtops controller, in headless chromium, against the real control plane', () => {
  const e = env as Env;
  let ids: Identities;
  let git: Awaited<ReturnType<typeof gitFixture>>;
  let state: Awaited<ReturnType<typeof tempDir>>;
  let registry: LocalRegistry;
  let image: string;
  let controller: ControllerHandle;
  let agent: AgentHandle;
  let dashboard: ClusterDashboard;
  let browser: Browser;
  let session: BrowserContext;
  let other: Server | undefined;

  const shot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}cluster-${name}.png`, fullPage: true });
  const guest = (): VirtualMachine => {
    const v = testGuestVm({ image, name: NAME });
    v.metadata.namespace = NS;
    return v;
  };

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    registry = await startRegistry();
    image = (await pushTestGuestImages(registry)).kernelBootImage;
    ids = await identities(e, NS);
    git = await gitFixture();
    state = await tempDir('vo-dash-');
    const pki = e.nodePki;
    agent = await runAgent(
      {
        node: NODE, processRuntime: true, stateDir: state.dir, emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [registry.host], intervalMs: 5000,
        console: { tlsCertFile: pki.servingCertFile, tlsKeyFile: pki.servingKeyFile, clientCaFile: pki.clientCaFile, address: '0.0.0.0', port: 0, nodeIp: defaultNodeIp()! },
      },
      log.child({ c: 'agent' }),
      { client: ids.agent.client },
    );
    // The controller under exactly its install RBAC, serving the dashboard as --dashboard-listen does.
    controller = await startController(ids, git, NS);
    dashboard = await startControllerDashboard(controller, { namespace: NS, repo: git.bare }, { host: '127.0.0.1', port: 0 }, log.child({ c: 'dashboard' }));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 600_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await dashboard?.stop().catch(() => undefined);
    await new Promise<void>((r) => (other ? other.close(() => r()) : r()));
    await teardownGuestTest({ ids, controller, agent, state, git, registry, ns: NS, node: NODE, domain: DOMAIN });
  }, 180_000);

  it('an unauthenticated browser gets the login page, not data', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${dashboard.url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await expect(page.getByLabel('API token').isVisible()).resolves.toBe(true);
    const statuses = await page.evaluate(`Promise.all(['/api/v1/events', '/api/v1/dashboard/summary', '/api/v1/vms/${NS}/${NAME}', '/api/v1/session'].map((p) => fetch(p).then((r) => r.status)))`);
    expect(statuses).toEqual([401, 401, 401, 401]);
    await page.getByLabel('API token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /token does not match.*virtops dashboard --kubeconfig/ }).waitFor();
    expect(await ctx.cookies()).toEqual([]);
    await shot(page, 'login');
    await ctx.close();
  });

  it('virtops dashboard --kubeconfig prints the login link; after a push the overview turns the VM Running without a reload', async () => {
    const r = await execa(process.execPath, [CLI_BIN, 'dashboard', '--kubeconfig', e.kubeconfigPath, '--controller-namespace', NS], { reject: false, env: { VIRTOPS_STATE_DIR: '', VIRTOPS_SERVER: '' } });
    expect(r.exitCode, r.stderr).toBe(0);
    const link = r.stdout.trim();
    expect(link).toMatch(new RegExp(`^${dashboard.url}/login#token=\\S{20,}$`));
    // Without RBAC on the Secret, no link: the controller's service account may not read other Secrets, nor the agent's any.
    const denied = await execa(process.execPath, [CLI_BIN, 'dashboard', '--kubeconfig', ids.agent.kubeconfigPath, '--controller-namespace', NS], { reject: false, env: { VIRTOPS_STATE_DIR: '', VIRTOPS_SERVER: '' } });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toMatch(/RBAC "get" on Secret .*virtops-dashboard/);

    session = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await session.newPage();
    await page.goto(link);
    await page.waitForURL(`${dashboard.url}/`);
    const cookie = (await session.cookies()).find((c) => c.name === 'virtops_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page.getByText('live', { exact: true }).waitFor();
    await page.evaluate('window.__sameDocument = true');

    const sha = await commitVms(git, [guest()], 'add the cluster dashboard test guest');
    const row = page.locator(`tr[data-vm="${NAME}"]`);
    await row.waitFor({ timeout: 60_000 });
    await row.getByTestId('status').filter({ hasText: 'Running' }).waitFor({ timeout: 300_000 });
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    await page.getByTestId('applied').filter({ hasText: 'add the cluster dashboard test guest' }).waitFor({ timeout: 30_000 });
    await expect(page.getByTestId('applied').textContent()).resolves.toContain(sha.slice(0, 12));
    await shot(page, 'overview');
  }, 420_000);

  it('the VM page names the launcher Pod and node; the console page names the nodes/proxy right the controller lacks', async () => {
    const page = await session.newPage();
    // The dashboard's Pod and VMI informers may trail the VM's status by a moment (seen in CI
    // under load): reload until they have caught up, and say what the page showed last.
    let shown = '';
    await until('the VM page to name the launcher Pod and its node', async () => {
      await page.goto(`${dashboard.url}/vms/${NS}/${NAME}`);
      await page.getByTestId('vm-status').filter({ hasText: 'Running' }).waitFor();
      shown = (await page.getByTestId('launcher-pod').textContent()) ?? '';
      return new RegExp(`virt-launcher-${NAME}-\\S+.*on node ${NODE}`).test(shown);
    }, 60_000, 500).catch((err: Error) => { throw new Error(`${err.message}; the page showed: ${shown}`); });
    await shot(page, 'vm');
    // The install RBAC gives the controller no nodes/proxy (it reaches the kubelet API on real
    // nodes): the page says so rather than showing an empty terminal.
    const st = page.getByTestId('console-state');
    let text = '';
    await until('the console page to say why it cannot connect', async () => {
      await page.goto(`${dashboard.url}/console/${NS}/${NAME}`);
      // "connected" is only the browser's WebSocket to the dashboard opening; the refusal
      // of nodes/proxy closes it right after, with the reason.
      await st.filter({ hasText: /closed/ }).waitFor({ timeout: 30_000 });
      text = (await st.textContent()) ?? '';
      // "closed: VMI ... is Pending" / "has no VirtualMachineInstance": the informer trails.
      return !/is not running|is Pending|is Schedul|once it is Running/.test(text);
    }, 60_000, 1000).catch((err: Error) => { throw new Error(`${err.message}; the page showed: ${text}`); });
    // Refused, and the page names the missing right (not a bare HTTP status line).
    expect(text).toMatch(/^closed\b[\s\S]*RBAC "get" on nodes\/proxy/);
    await shot(page, 'console');
    await page.close();
  }, 120_000);

  it('the stop button puts the override on the VM (kubectl-visible annotation) and the VM stops', async () => {
    const page = await session.newPage();
    await page.goto(`${dashboard.url}/vms/${NS}/${NAME}`);
    await page.getByTestId('vm-status').filter({ hasText: 'Running' }).waitFor();
    await expect(page.getByTestId('override').textContent()).resolves.toMatch(/none/);
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.getByTestId('notice').filter({ hasText: /override “stop”/ }).waitFor();
    await expect(page.getByTestId('override').textContent()).resolves.toMatch(/^stop \(requested/);
    const vm = await getVm(ids.admin, NS, NAME);
    expect(vm?.metadata.annotations?.[OVERRIDE_ANNOTATION]).toMatch(/"action":"stop"/);
    await until('VM Stopped', async () => (await getVm(ids.admin, NS, NAME))?.status?.printableStatus === 'Stopped', 120_000, 500);
    await page.getByTestId('vm-status').filter({ hasText: 'Stopped' }).waitFor({ timeout: 30_000 });
    await shot(page, 'stopped');
    await page.close();
  }, 180_000);

  it('a cross-origin POST (same site, other port: the session cookie goes along) changes nothing', async () => {
    const before = (await getVm(ids.admin, NS, NAME))?.metadata.annotations?.[OVERRIDE_ANNOTATION];
    // A page of another origin on this host: SameSite=Strict does not stop it (same site).
    other = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>other</title>'));
    await new Promise<void>((r) => other!.listen(0, '127.0.0.1', () => r()));
    const port = (other.address() as { port: number }).port;
    const page = await session.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const target = `${dashboard.url}/api/v1/vms/${NS}/${NAME}/start`;
    // A "simple" request (no preflight), with the cookie: the guard refuses it (Origin, content type, no CSRF header).
    await page.evaluate(`fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }).catch(() => undefined)`);
    // And a form post, the classic CSRF.
    await page.evaluate(`(() => { const f = document.createElement('form'); f.method = 'POST'; f.action = ${JSON.stringify(target)}; document.body.appendChild(f); f.submit(); })()`);
    await page.waitForLoadState();
    // The same from outside a browser, with the cookie but a foreign Origin: 403.
    const cookie = (await session.cookies()).find((c) => c.name === 'virtops_session')!;
    const res = await fetch(target, { method: 'POST', headers: { cookie: `virtops_session=${cookie.value}`, origin: `http://127.0.0.1:${port}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
    await new Promise((r) => setTimeout(r, 3000));
    const after = await getVm(ids.admin, NS, NAME);
    expect(after?.metadata.annotations?.[OVERRIDE_ANNOTATION]).toBe(before);
    expect(after?.status?.printableStatus).toBe('Stopped');
    await page.close();
  }, 60_000);
});
