import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { handleWebhook, signBody, type WebhookProvider } from '../../../reconciler/source/webhook.js';

const SECRET = 's3cret-value';
const SHA = 'a'.repeat(40);
const push = JSON.stringify({ ref: 'refs/heads/main', after: SHA });

function hmac(body: string, secret = SECRET): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

type Case = { name: string; provider: WebhookProvider; headers: Record<string, string>; body?: string; expect: { accepted: boolean; status: number; reason: RegExp } };

const cases: Case[] = [
  // GitHub
  { name: 'github valid push', provider: 'github', headers: { 'x-github-event': 'push', 'x-hub-signature-256': hmac(push) }, expect: { accepted: true, status: 202, reason: /accepted/ } },
  { name: 'github wrong secret', provider: 'github', headers: { 'x-github-event': 'push', 'x-hub-signature-256': hmac(push, 'other') }, expect: { accepted: false, status: 401, reason: /does not match/ } },
  { name: 'github signature of a different body', provider: 'github', headers: { 'x-github-event': 'push', 'x-hub-signature-256': hmac(push + ' ') }, expect: { accepted: false, status: 401, reason: /does not match/ } },
  { name: 'github missing signature', provider: 'github', headers: { 'x-github-event': 'push' }, expect: { accepted: false, status: 401, reason: /missing X-Hub-Signature-256/ } },
  { name: 'github malformed signature', provider: 'github', headers: { 'x-github-event': 'push', 'x-hub-signature-256': 'sha1=abc' }, expect: { accepted: false, status: 401, reason: /sha256=<64 hex/ } },
  { name: 'github ping', provider: 'github', headers: { 'x-github-event': 'ping', 'x-hub-signature-256': hmac(push) }, expect: { accepted: false, status: 200, reason: /pong/ } },
  { name: 'github wrong event', provider: 'github', headers: { 'x-github-event': 'issues', 'x-hub-signature-256': hmac(push) }, expect: { accepted: false, status: 202, reason: /ignored GitHub event "issues"/ } },
  { name: 'github unsigned ping is still refused', provider: 'github', headers: { 'x-github-event': 'ping' }, expect: { accepted: false, status: 401, reason: /missing/ } },
  // GitLab
  { name: 'gitlab valid push', provider: 'gitlab', headers: { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET }, expect: { accepted: true, status: 202, reason: /accepted/ } },
  { name: 'gitlab wrong token', provider: 'gitlab', headers: { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET + 'x' }, expect: { accepted: false, status: 401, reason: /does not match/ } },
  { name: 'gitlab missing token', provider: 'gitlab', headers: { 'x-gitlab-event': 'Push Hook' }, expect: { accepted: false, status: 401, reason: /missing X-Gitlab-Token/ } },
  { name: 'gitlab wrong event', provider: 'gitlab', headers: { 'x-gitlab-event': 'Tag Push Hook', 'x-gitlab-token': SECRET }, expect: { accepted: false, status: 202, reason: /only "Push Hook"/ } },
  // generic
  { name: 'generic valid', provider: 'generic', headers: { 'x-signature-256': hmac(push) }, expect: { accepted: true, status: 202, reason: /accepted/ } },
  { name: 'generic invalid', provider: 'generic', headers: { 'x-signature-256': hmac(push, 'nope') }, expect: { accepted: false, status: 401, reason: /does not match/ } },
  { name: 'generic missing', provider: 'generic', headers: {}, expect: { accepted: false, status: 401, reason: /missing X-Signature-256/ } },
  { name: 'generic empty body trigger', provider: 'generic', headers: { 'x-signature-256': hmac('') }, body: '', expect: { accepted: true, status: 202, reason: /trigger/ } },
];

describe('handleWebhook', () => {
  for (const c of cases) {
    it(c.name, () => {
      const body = c.body ?? push;
      const explicit = handleWebhook({ headers: c.headers, rawBody: Buffer.from(body) }, { secret: SECRET, provider: c.provider });
      expect(explicit).toMatchObject({ accepted: c.expect.accepted, status: c.expect.status });
      expect(explicit.reason).toMatch(c.expect.reason);
      // Auto-detection picks the same provider from the headers (a bare generic request included).
      const detected = handleWebhook({ headers: c.headers, rawBody: body }, { secret: SECRET });
      expect(detected.accepted).toBe(c.expect.accepted);
    });
  }

  it('extracts ref and sha from a verified push', () => {
    const r = handleWebhook({ headers: { 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': signBody(push, SECRET) }, rawBody: push }, { secret: SECRET });
    expect(r).toMatchObject({ accepted: true, provider: 'github', ref: 'refs/heads/main', sha: SHA });
  });

  it('ignores pushes to other branches when a branch is configured', () => {
    const other = JSON.stringify({ ref: 'refs/heads/dev', after: SHA });
    const r = handleWebhook({ headers: { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET }, rawBody: other }, { secret: SECRET, branch: 'main' });
    expect(r).toMatchObject({ accepted: false, status: 202, ref: 'refs/heads/dev' });
  });

  it('refuses bodies above the limit before verifying', () => {
    const big = 'x'.repeat(2048);
    const r = handleWebhook({ headers: { 'x-signature-256': hmac(big) }, rawBody: big }, { secret: SECRET, maxBodyBytes: 1024 });
    expect(r).toMatchObject({ accepted: false, status: 413 });
  });

  it('refuses everything when no secret is configured', () => {
    const r = handleWebhook({ headers: { 'x-signature-256': hmac(push, '') }, rawBody: push }, { secret: '' });
    expect(r).toMatchObject({ accepted: false, status: 401, reason: /no webhook secret/ });
  });

  it('answers 400 for a verified but unparsable push body', () => {
    const junk = '{not json';
    const r = handleWebhook({ headers: { 'x-github-event': 'push', 'x-hub-signature-256': hmac(junk) }, rawBody: junk }, { secret: SECRET });
    expect(r).toMatchObject({ accepted: false, status: 400 });
  });
});
