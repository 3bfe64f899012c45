/**
 * `virtops source watch --webhook-listen` serves the same listener as `virtops up
 * --webhook-listen` (reconciler/standalone/api.ts startWebhookServer): /hooks/* only, 404 for
 * everything else (the control API's paths included), HMAC-verified, size-limited, and
 * rate-limited per client (a burst gets 429). A verified push makes the source look at once.
 */
import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../../reconciler/source/webhook.js';
import { freePort } from '../../helpers/registry.js';
import { TestRepo, vmYaml } from '../source/helpers.js';
import { CLI, join, rawRequest, waitFor } from './harness.js';

const SECRET = 'source-webhook-secret';

describe('virtops source watch --webhook-listen', () => {
  let repo: TestRepo;
  let port: number;
  let proc: ReturnType<typeof execa>;
  let out = '';

  beforeAll(async () => {
    repo = new TestRepo();
    repo.commit({ 'dist/a.yaml': vmYaml('a') }, 'first');
    await writeFile(join(repo.root, 'secret'), SECRET);
    port = await freePort();
    // Polled (file://) with long intervals: only the webhook brings a new commit in quickly.
    proc = execa(process.execPath, [CLI, 'source', 'watch', `file://${repo.bare}`, '--poll-interval', '3600', '--resync-interval', '3600', '--webhook-listen', `127.0.0.1:${port}`, '--webhook-secret-file', join(repo.root, 'secret')], { reject: false, env: { VIRTOPS_LOG_LEVEL: 'info' } });
    proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor('the first revision', () => out.includes('"type":"revision"'), 60_000);
  }, 90_000);

  afterAll(async () => {
    proc?.kill('SIGTERM');
    await proc;
    repo?.remove();
  });

  it('serves /hooks/* only, HMAC-verified and size-limited; a verified push is checked at once', async () => {
    const to = { port };
    const json = { 'content-type': 'application/json' };
    for (const [method, path] of [['GET', '/api/v1/vms'], ['POST', '/api/v1/vms/default/a/stop'], ['GET', '/metrics'], ['GET', '/readyz'], ['GET', '/'], ['POST', '/hooks/other']] as const) {
      expect(`${method} ${path} → ${(await rawRequest(to, method, path, json, method === 'POST' ? '{}' : undefined)).status}`).toBe(`${method} ${path} → 404`);
    }
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    expect((await rawRequest(to, 'POST', '/hooks/git', { ...json, 'x-signature-256': 'sha256=00' }, body)).status).toBe(401);
    expect((await rawRequest(to, 'POST', '/hooks/git', { ...json, 'content-length': String(2 * 1024 * 1024) })).status).toBe(413);
    const second = repo.commit({ 'dist/a.yaml': vmYaml('a', '256Mi') }, 'second');
    expect((await rawRequest(to, 'POST', '/hooks/git', { ...json, 'x-signature-256': signBody(body, SECRET) }, body)).status).toBe(202);
    await waitFor('the pushed revision', () => out.includes(second), 30_000);
  });

  it('a burst from one client gets 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 15; i++) {
      const r = await rawRequest({ port }, 'POST', '/hooks/git', { 'content-type': 'application/json', 'x-signature-256': 'sha256=00' }, '{}');
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers['retry-after'];
    }
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThan(0);
  });
});
