/**
 * The light client's kubeconfig reading (cli/kube-rest.ts) with YAML as kubectl and testenv
 * write it (cli-modes.test.ts covers the merge rules with JSON documents): block style,
 * core-schema scalars kept as written, and a syntax error naming the file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadKubeTarget } from '../../../cli/kube-rest.js';

describe('kubeconfig YAML', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vo-kc-yaml-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('block-style YAML as testenv writes it: server, token, CA path relative to the file, namespace', () => {
    writeFileSync(join(dir, 'ca.crt'), 'CA-PEM');
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '  - name: testenv',
      '    cluster:',
      '      server: https://127.0.0.1:31248',
      '      certificate-authority: ca.crt',
      'users:',
      '  - name: admin',
      '    user:',
      '      token: 2026-12-04   # a date-looking token stays a string',
      'contexts:',
      '  - name: admin@testenv',
      '    context: { cluster: testenv, user: admin, namespace: "007" }',
      'current-context: admin@testenv',
      '',
    ].join('\n'));
    const t = loadKubeTarget([file]);
    expect(t.server.href).toBe('https://127.0.0.1:31248/');
    expect(t.headers['authorization']).toBe('Bearer 2026-12-04');
    expect(t.tls.ca?.toString()).toBe('CA-PEM');
    expect(t.namespace).toBe('007');
  });

  it('a YAML syntax error names the file', () => {
    const bad = join(dir, 'broken');
    writeFileSync(bad, 'clusters: [\n  - name: x\n');
    expect(() => loadKubeTarget([bad])).toThrow(new RegExp(`kubeconfig ${bad}: not valid YAML`));
  });
});
