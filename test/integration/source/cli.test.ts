import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TestRepo, vmYaml } from './helpers.js';

const CLI = fileURLToPath(new URL('../../../cli/main.ts', import.meta.url));
const repos: TestRepo[] = [];
afterEach(() => repos.splice(0).forEach((r) => r.remove()));

describe('virtops source watch --once', () => {
  it('prints the verdict as JSON and exits 0 for a valid tip, 1 for a refused one', async () => {
    const repo = new TestRepo();
    repos.push(repo);
    const good = repo.commit({ 'dist/a.yaml': vmYaml('a') }, 'good');
    const ok = await execa('npx', ['tsx', CLI, 'source', 'watch', repo.bare, '--once', '--no-freshness-check'], { reject: false, env: { VIRTOPS_LOG_LEVEL: 'silent' } });
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ type: 'revision', sha: good, manifests: ['dist/a.yaml#0'] });

    const bad = repo.commit({ 'dist/a.yaml': vmYaml('a').replace('runStrategy: Always', 'runStrategy: Sometimes') }, 'bad');
    const refused = await execa('npx', ['tsx', CLI, 'source', 'watch', `file://${repo.bare}`, '--once', '--no-freshness-check'], { reject: false, env: { VIRTOPS_LOG_LEVEL: 'silent' } });
    expect(refused.exitCode).toBe(1);
    const verdict = JSON.parse(refused.stdout) as { type: string; sha: string; errors: string[] };
    expect(verdict).toMatchObject({ type: 'refused', sha: bad });
    expect(verdict.errors.join('\n')).toMatch(/dist\/a\.yaml#0: \/spec\/runStrategy/);
  });
});
