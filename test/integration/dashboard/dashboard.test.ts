/**
 * The web dashboard in a real browser (issue 14): Debian's headless chromium driven by
 * playwright-core, against a real `virtops up --listen` (qemu:///system, TCG) running the test
 * guest from a real git push. Screenshots of each page go to ./artifacts/ (gitignored).
 *
 * One VM through the whole story: an unauthenticated browser gets the login page and no data;
 * the printed login link signs in; a push turns the VM Running on the open overview without a
 * reload; a refused commit shows its reason; the console shows the guest's serial markers,
 * a typed line reaches the guest (its tty echoes it back) in two viewers at once, and a resize
 * refits the terminal; the stop button stops the VM and shows the override; the diff page.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { GUEST_MARKERS } from '../../helpers/test-guest.js';
import { type LocalRegistry, pushTestGuestImages, startRegistry } from '../../helpers/registry.js';
import { gitFixture, testGuestVm, vmDocuments, type GitFixture } from '../standalone/fixture.js';
import { cleanupStateDir, makeStateDir, startUp, vm, waitFor, type UpProcess } from '../standalone/harness.js';

const NAME = 'vo-dash-guest';
const DOMAIN = `default_${NAME}`;
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
const CHROMIUM = '/usr/bin/chromium';
const virsh = (...args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false });

describe.skipIf(!existsSync(CHROMIUM))('the dashboard in headless chromium against a real virtops up', () => {
  let registry: LocalRegistry;
  let image: string;
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;
  let browser: Browser;
  let session: BrowserContext;
  let base: string;

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    registry = await startRegistry();
    image = (await pushTestGuestImages(registry)).kernelBootImage;
    git = await gitFixture();
    stateDir = await makeStateDir();
    up = await startUp(['--repo', git.bare, '--emulation', 'tcg', '--interval', '3s', '--insecure-registry', registry.host], stateDir, { tcp: true });
    base = up.tcpServer!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 300_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    if ((await virsh('domstate', DOMAIN)).exitCode === 0) {
      await virsh('destroy', DOMAIN);
      await virsh('undefine', DOMAIN);
    }
    await git?.cleanup();
    await registry?.stop();
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

  it('an unauthenticated browser gets the login page, not data', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await expect(page.getByLabel('API token').isVisible()).resolves.toBe(true);
    // Same-origin fetches from the login page: no cookie, no data.
    const statuses = await page.evaluate(`Promise.all(['/api/v1/vms', '/api/v1/events', '/api/v1/source', '/api/v1/dashboard/summary', '/api/v1/session'].map((p) => fetch(p).then((r) => r.status)))`);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    // A wrong token is refused with a message, and sets no cookie.
    await page.getByLabel('API token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /token does not match/ }).waitFor();
    expect(await ctx.cookies()).toEqual([]);
    // The console WebSocket is refused too.
    const ws = await page.evaluate(`new Promise((resolve) => { const w = new WebSocket('ws://' + location.host + '/api/v1/vms/default/${NAME}/console'); w.onopen = () => resolve('open'); w.onerror = () => resolve('refused'); })`);
    expect(ws).toBe('refused');
    await shot(page, 'login');
    await ctx.close();
  });

  it('the printed login link signs in (token in the fragment only); the overview turns the VM Running after a push, without a reload', async () => {
    const link = /dashboard login link[^\n]*?(http:\/\/\S+\/login#token=\S+)/.exec(up.logText())?.[1];
    expect(link, up.logText().slice(-3000)).toBeDefined();
    expect(link).toBe(`${base}/login#token=${up.token}`);
    // The token is never in a request the server sees (it logs requests' paths at most).
    session = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await session.newPage();
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(link!);
    await page.waitForURL(`${base}/`);
    expect(urls.filter((u) => u.includes(up.token!))).toEqual([]);
    const cookie = (await session.cookies()).find((c) => c.name === 'virtops_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(cookie!.value).not.toBe(up.token);
    await page.getByText('live', { exact: true }).waitFor();
    await page.evaluate('window.__sameDocument = true');

    const sha = await git.commitVms([testGuestVm({ image, name: NAME })], 'add the dashboard test guest');
    const row = page.locator(`tr[data-vm="${NAME}"]`);
    await row.waitFor({ timeout: 60_000 });
    await row.getByTestId('status').filter({ hasText: 'Running' }).waitFor({ timeout: 240_000 });
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    await expect(row.textContent()).resolves.toContain(sha.slice(0, 12));
    const applied = page.getByTestId('applied');
    await applied.filter({ hasText: 'add the dashboard test guest' }).waitFor();
    await expect(applied.textContent()).resolves.toContain(sha.slice(0, 12));
    await expect(page.getByLabel('VMs by status', { exact: true }).textContent()).resolves.toMatch(/Running: 1/);
    // The push → Running chart got its sample.
    await page.getByText(/Push → Running, last 1 VM start/).waitFor({ timeout: 10_000 });
    await shot(page, 'overview');
    await page.close();
  }, 400_000);

  it('a refused commit shows its reason on the overview; the applied revision keeps running', async () => {
    const page = await session.newPage();
    await page.goto(`${base}/`);
    await page.getByText('live', { exact: true }).waitFor();
    const [vmDoc, podDoc] = vmDocuments(testGuestVm({ image, name: NAME })).split('---\n');
    const broken = YAML.parse(vmDoc!) as Record<string, Record<string, unknown>>;
    broken['spec']!['runStrategyy'] = 'Always';
    const bad = await git.commitDist({ [`${NAME}.k8s.yaml`]: `${YAML.stringify(broken)}---\n${podDoc}` }, 'a typo in the run strategy');
    const refused = page.getByTestId('refused');
    await refused.waitFor({ timeout: 60_000 });
    const text = await refused.textContent();
    expect(text).toContain(bad.slice(0, 12));
    expect(text).toMatch(/runStrategyy/);
    expect(text).toContain('a typo in the run strategy');
    await expect(page.locator(`tr[data-vm="${NAME}"]`).getByTestId('status').textContent()).resolves.toBe('Running');
    await shot(page, 'overview-refused');
    await page.close();
  }, 120_000);

  it('the console shows the guest\'s serial markers; a typed line reaches the guest, seen by two viewers; resize refits', async () => {
    // The guest boots under TCG: wait (as up-boot.test.ts does) until it is idle.
    const inst = (await vm(up.server, NAME))!.instance!;
    await waitFor('guest ready marker in the serial log', async () => (await readFile(inst.serialLog, 'utf8').catch(() => '')).includes(GUEST_MARKERS.ready), 180_000, 500);
    const a = await session.newPage();
    const b = await session.newPage();
    for (const p of [a, b]) {
      await p.goto(`${base}/console/default/${NAME}`);
      await p.getByTestId('console-state').filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
    }
    const text = (p: Page) => p.evaluate<string>('window.virtopsConsoleText ? window.virtopsConsoleText() : ""');
    await waitFor('the markers in the browser terminal', async () => (await text(a)).includes(GUEST_MARKERS.ready), 30_000, 200).catch(async (err: Error) => {
      throw new Error(`${err.message}; the terminal holds:\n${(await text(a)).slice(-2000)}`);
    });
    expect(await text(a)).toContain(GUEST_MARKERS.booted);
    // Typed into viewer A: the guest's tty echoes the line back (nothing else echoes it), so
    // it reached the guest; viewer B sees the echo too.
    const line = `virtops-typed-${Date.now()}`;
    await a.getByTestId('terminal').click();
    await a.keyboard.type(line);
    await a.keyboard.press('Enter');
    await waitFor('the echo in viewer A', async () => (await text(a)).includes(line), 30_000, 200);
    await waitFor('the echo in viewer B', async () => (await text(b)).includes(line), 30_000, 200);
    await shot(a, 'console');
    // Resize: the terminal refits to its box.
    const cols = Number(await a.getByTestId('terminal').getAttribute('data-cols'));
    await a.setViewportSize({ width: 700, height: 600 });
    await waitFor('fewer columns', async () => Number(await a.getByTestId('terminal').getAttribute('data-cols')) < cols, 10_000, 100);
    await a.close();
    await b.close();
  }, 300_000);

  it('the stop button (reached by keyboard) stops the VM and shows the override it created', async () => {
    const page = await session.newPage();
    // By keyboard from the overview: Tab to the VM's link, Enter opens its page.
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: NAME }).waitFor();
    for (let i = 0; i < 30 && (await page.evaluate<string>('document.activeElement?.textContent ?? ""')) !== NAME; i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/vms/default/${NAME}`);
    await page.getByTestId('vm-status').filter({ hasText: 'Running' }).waitFor();
    // The push → Running stages of its start.
    // (The spec and revision come in a second request: wait for them rather than read at once.)
    await page.getByTestId('stages').filter({ hasText: /commit \w{8} authored.*revision seen by the source.*launcher starting.*domain started.*Running/s }).waitFor({ timeout: 10_000 });
    await expect(page.getByTestId('override').textContent()).resolves.toMatch(/none/);
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.getByTestId('notice').filter({ hasText: /override “stop”/ }).waitFor();
    await expect(page.getByTestId('override').textContent()).resolves.toMatch(/^stop \(requested/);
    await page.getByTestId('vm-status').filter({ hasText: 'Stopped' }).waitFor({ timeout: 120_000 });
    expect((await vm(up.server, NAME))?.override?.action).toBe('stop');
    await waitFor('the domain is not running', async () => (await virsh('domstate', DOMAIN)).stdout.trim() !== 'running', 60_000, 500);
    await expect(page.locator('.timeline').textContent()).resolves.toMatch(/Override/);
    await shot(page, 'vm');
    // The overview shows the override in its row.
    await page.getByRole('link', { name: 'Overview' }).click();
    await expect(page.locator(`tr[data-vm="${NAME}"]`).textContent()).resolves.toContain('stop');
    await page.close();
  }, 180_000);

  it('the diff page says what the next reconcile would do', async () => {
    const page = await session.newPage();
    await page.goto(`${base}/diff`);
    const entry = page.getByRole('region', { name: new RegExp(`default/${NAME}`) });
    await entry.waitFor({ timeout: 30_000 });
    await shot(page, 'diff');
    await page.close();
  }, 60_000);
});
