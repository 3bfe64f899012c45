/**
 * The CLI's pure parts for both modes: mode selection, kubeconfig resolution, cluster
 * formatting (KubeVirt's columns, describe, field diff), the diff text, the console path,
 * --version, completion scripts and an example in every command's --help.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { EXAMPLES, buildProgram } from '../../../cli/main.js';
import { fieldDiff, comparable, formatClusterDescribe, formatVmRows, formatVmiRows, overrideOf } from '../../../cli/cluster-format.js';
import { formatDiff, parseResource, selectMode } from '../../../cli/vm-access.js';
import { loadKubeTarget } from '../../../cli/kube-rest.js';
import { bashCompletion, commandTree, zshCompletion } from '../../../cli/commands/completion.js';
import { buildInfo, formatVersion } from '../../../cli/commands/version.js';
import { consolePath, parseConsolePath } from '../../../reconciler/cluster/requests.js';
import { OVERRIDE_ANNOTATION, serializeOverride } from '../../../reconciler/core/overrides.js';

const NOW = Date.parse('2026-12-03T12:00:00Z');

describe('selectMode: --kubeconfig or KUBECONFIG → cluster, otherwise the local up', () => {
  const cases: [string, Parameters<typeof selectMode>[0], NodeJS.ProcessEnv, ReturnType<typeof selectMode> | RegExp][] = [
    ['nothing → local', {}, {}, { mode: 'local' }],
    ['--kubeconfig → cluster', { kubeconfig: '/k' }, {}, { mode: 'cluster', kubeconfigPaths: ['/k'] }],
    ['KUBECONFIG (a list) → cluster', {}, { KUBECONFIG: '/a:/b:' }, { mode: 'cluster', kubeconfigPaths: ['/a', '/b'] }],
    ['--kubeconfig beats KUBECONFIG', { kubeconfig: '/k' }, { KUBECONFIG: '/a' }, { mode: 'cluster', kubeconfigPaths: ['/k'] }],
    ['--server beats KUBECONFIG', { server: 'unix:/s' }, { KUBECONFIG: '/a' }, { mode: 'local' }],
    ['--state-dir beats KUBECONFIG', { stateDir: '/var/lib/x' }, { KUBECONFIG: '/a' }, { mode: 'local' }],
    ['VIRTOPS_SERVER beats KUBECONFIG', {}, { KUBECONFIG: '/a', VIRTOPS_SERVER: 'unix:/s' }, { mode: 'local' }],
    ['VIRTOPS_STATE_DIR beats KUBECONFIG', {}, { KUBECONFIG: '/a', VIRTOPS_STATE_DIR: '/d' }, { mode: 'local' }],
    ['empty KUBECONFIG → local', {}, { KUBECONFIG: '' }, { mode: 'local' }],
    ['--kubeconfig with --server → error', { kubeconfig: '/k', server: 'unix:/s' }, {}, /--kubeconfig \(cluster mode\) cannot be combined with --server/],
    ['--kubeconfig with --token-file → error', { kubeconfig: '/k', tokenFile: '/t' }, {}, /cannot be combined with --token-file/],
  ];
  it.each(cases)('%s', (_name, opts, env, want) => {
    if (want instanceof RegExp) expect(() => selectMode(opts, env)).toThrow(want);
    else expect(selectMode(opts, env)).toEqual(want);
  });

  it('resource names as kubectl knows them; others are refused naming the fix', () => {
    expect(parseResource('VirtualMachines', ['vms', 'vmis'], 'x')).toBe('vms');
    expect(parseResource('vmi', ['vms', 'vmis'], 'x')).toBe('vmis');
    expect(() => parseResource('vmis', ['vms'], 'virtops describe vm NAME')).toThrow(/resource "vmis" is not supported here: use virtops describe vm NAME/);
  });
});

describe('kubeconfig resolution (the light client)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vo-kc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, doc: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(doc));
    return p;
  };
  writeFileSync(join(dir, 'ca.crt'), 'CA-PEM');
  const a = write('a.yaml', {
    'current-context': 'ctx',
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'prod' } }],
    clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority': 'ca.crt' } }],
    users: [{ name: 'u', user: { token: 'T' } }],
  });
  const b = write('b.yaml', {
    contexts: [{ name: 'other', context: { cluster: 'c2', user: 'u2' } }],
    clusters: [{ name: 'c2', cluster: { server: 'https://h:443', 'certificate-authority-data': Buffer.from('CA2').toString('base64') } }],
    users: [{ name: 'u2', user: { 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64') } }, { name: 'u', user: { token: 'shadowed' } }],
  });

  it('current-context, namespace, token, CA path relative to the file', () => {
    const t = loadKubeTarget([a, b]);
    expect(t.server.href).toBe('https://10.0.0.1:6443/');
    expect(t.namespace).toBe('prod');
    expect(t.headers['authorization']).toBe('Bearer T');
    expect(t.tls.ca?.toString()).toBe('CA-PEM');
    expect(t.plugin).toBe(false);
  });
  it('--context from the second file: client certificate data, default namespace', () => {
    const t = loadKubeTarget([a, b], { context: 'other' });
    expect(t.tls.cert?.toString()).toBe('CERT');
    expect(t.tls.key?.toString()).toBe('KEY');
    expect(t.tls.ca?.toString()).toBe('CA2');
    expect(t.namespace).toBe('default');
  });
  it('errors name the field and the fix', () => {
    expect(() => loadKubeTarget([])).toThrow(/pass --kubeconfig FILE or set KUBECONFIG/);
    expect(() => loadKubeTarget([b])).toThrow(/no current-context/);
    expect(() => loadKubeTarget([a], { context: 'nope' })).toThrow(/context "nope" is not defined/);
    expect(() => loadKubeTarget([join(dir, 'missing')])).toThrow(/kubeconfig .*missing: .*--kubeconfig/);
    const bad = write('bad.yaml', { 'current-context': 'x', contexts: [{ name: 'x', context: { cluster: 'y' } }], clusters: [{ name: 'y', cluster: { server: 'ftp://x' } }] });
    expect(() => loadKubeTarget([bad])).toThrow(/clusters\[y\]\.server must be an https:\/\/ URL/);
  });
});

const vm = (name: string, ns: string, extra: Partial<VirtualMachine['status']> = {}, annotations?: Record<string, string>): VirtualMachine => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name, namespace: ns, creationTimestamp: '2026-12-03T11:55:00Z', uid: `uid-${name}`, generation: 2, ...(annotations ? { annotations } : {}) },
  spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {} } } } },
  status: { printableStatus: 'Running', ready: true, conditions: [{ type: 'Ready', status: 'True' }], ...extra },
});

describe('cluster formatting', () => {
  it('get vms: NAME AGE STATUS READY; -A adds NAMESPACE; wide adds RUNSTRATEGY OVERRIDE MESSAGE', () => {
    const stop = { [OVERRIDE_ANNOTATION]: serializeOverride({ action: 'stop', at: NOW, revision: 'abc' }) };
    const vms = [vm('web', 'prod'), vm('db', 'prod', { printableStatus: 'Stopped', ready: false, conditions: [{ type: 'Ready', status: 'False' }] }, stop)];
    const rows = formatVmRows(vms, { wide: false, now: NOW, allNamespaces: false }).split('\n');
    expect(rows[0]).toMatch(/^NAME\s+AGE\s+STATUS\s+READY$/);
    expect(rows.slice(1).map((r) => r.split(/\s+/))).toEqual([['web', '5m0s', 'Running', 'True'], ['db', '5m0s', 'Stopped', 'False']]);
    const all = formatVmRows(vms, { wide: true, now: NOW, allNamespaces: true }).split('\n');
    expect(all[0]).toMatch(/^NAMESPACE\s+NAME\s+AGE\s+STATUS\s+READY\s+RUNSTRATEGY\s+OVERRIDE\s+MESSAGE$/);
    expect(all[2]).toMatch(/^prod\s+db\s+5m0s\s+Stopped\s+False\s+Always\s+stop$/);
  });
  it('get vmis: NAME AGE PHASE IP NODENAME READY (wide: PAUSED)', () => {
    const vmi: VirtualMachineInstance = {
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance',
      metadata: { name: 'web', namespace: 'prod', creationTimestamp: '2026-12-03T11:59:00Z' },
      spec: { domain: { devices: {} } },
      status: { phase: 'Running', nodeName: 'n1', interfaces: [{ name: 'default', ipAddress: '10.0.0.5' }], conditions: [{ type: 'Ready', status: 'True' }, { type: 'Paused', status: 'False' }] },
    };
    const t = formatVmiRows([vmi], { wide: true, now: NOW, allNamespaces: false }).split('\n');
    expect(t[0]).toMatch(/^NAME\s+AGE\s+PHASE\s+IP\s+NODENAME\s+READY\s+PAUSED$/);
    expect(t[1]).toMatch(/^web\s+60s\s+Running\s+10\.0\.0\.5\s+n1\s+True\s+False$/);
  });
  it('describe: override, instance, conditions, events in time order; an invalid override says why', () => {
    const v = vm('web', 'prod', {}, { [OVERRIDE_ANNOTATION]: serializeOverride({ action: 'pause', at: NOW, revision: '0123456789abcdef' }) });
    const text = formatClusterDescribe({
      vm: v,
      vmi: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'web', uid: 'u1', creationTimestamp: '2026-12-03T11:58:00Z' }, spec: { domain: { devices: {} } }, status: { phase: 'Running', nodeName: 'n1' } },
      pod: { metadata: { name: 'virt-launcher-web-u1' }, status: { phase: 'Running' } },
      events: [{ type: 'Normal', reason: 'Second', message: 'b', lastTimestamp: '2026-12-03T11:59:00Z' }, { type: 'Normal', reason: 'First', message: 'a', lastTimestamp: '2026-12-03T11:58:00Z' }],
      revision: 'f'.repeat(40),
    }, NOW);
    expect(text).toMatch(/Override:\s+pause \(requested 2026-12-03T12:00:00.000Z at revision 0123456789ab;/);
    expect(text).toMatch(/Node:\s+n1/);
    expect(text).toMatch(/Launcher Pod:\s+virt-launcher-web-u1 \(Running\)/);
    expect(text.indexOf('First')).toBeLessThan(text.indexOf('Second'));
    expect(overrideOf(vm('x', 'y', {}, { [OVERRIDE_ANNOTATION]: '{"action":"explode"}' }))?.text).toMatch(/invalid \(virtops.io\/override.action: must be one of/);
  });
  it('fieldDiff: leaf paths old → new; server-owned metadata and status never count', () => {
    const live = { metadata: { name: 'a', resourceVersion: '9', managedFields: [1], labels: { x: '1' } }, spec: { a: [1, 2], b: { c: 'old' } }, status: { s: 1 } };
    const desired = { metadata: { name: 'a', resourceVersion: '10', labels: { x: '1', y: '2' } }, spec: { a: [1, 3], b: { c: 'new' } }, status: { s: 2 } };
    expect(fieldDiff(comparable(live), comparable(desired))).toEqual(['metadata.labels.y: (absent) → "2"', 'spec.a[1]: 2 → 3', 'spec.b.c: "old" → "new"']);
    expect(fieldDiff(comparable(live), comparable({ ...live, metadata: { ...live.metadata, resourceVersion: '11' } }))).toEqual([]);
  });
  it('formatDiff: objects, then VMs with actions; "no changes" per mode', () => {
    expect(formatDiff({ applied: 'a', entries: [] }, 'cluster')).toBe('applied: a\nno changes: the cluster matches dist/');
    expect(formatDiff({ applied: 'a', next: 'b', entries: [] }, 'local')).toBe('applied: a\nnext:    b\nno changes: the host matches the revision');
    const text = formatDiff({
      applied: 'a', next: '/r/dist (local)',
      objects: [{ key: 'kubevirt.io/v1/VirtualMachine/p/w', change: 'update', fields: ['spec.x: 1 → 2'] }],
      entries: [{ vm: 'p/w', change: 'update', actions: [{ type: 'none', reason: 'running as wanted' }] }, { vm: 'p/n', change: 'create', actions: [{ type: 'create-instance', reason: 'runStrategy Always' }] }],
    }, 'cluster');
    expect(text).toBe(['applied: a', 'next:    /r/dist (local)', '~ kubevirt.io/v1/VirtualMachine/p/w (update)', '    spec.x: 1 → 2', '~ p/w (update)', '    no action: running as wanted', '+ p/n (create)', '    create-instance: runStrategy Always'].join('\n'));
  });
  it('console path: built and parsed back; anything else is refused', () => {
    expect(parseConsolePath(consolePath('prod', 'web'))).toEqual({ namespace: 'prod', name: 'web' });
    expect(parseConsolePath('/virtops/v1/console/prod/web/x')).toBeUndefined();
    expect(parseConsolePath('/virtops/v1/console/../etc')).toBeUndefined();
    expect(parseConsolePath('/healthz')).toBeUndefined();
  });
});

describe('--version, completion, help', () => {
  it('--version: version, commit, KubeVirt API (from the checkout when there is no build-info.json)', () => {
    const b = buildInfo();
    expect(b.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(b.kubevirtApi).toBe('kubevirt.io/v1');
    expect(formatVersion({ version: '1.2.3', commit: 'abc', kubevirtApi: 'kubevirt.io/v1', kubevirtOpenApi: { title: 'KubeVirt API', version: null, sha256: '0123' } }))
      .toBe('virtops 1.2.3\ncommit: abc\nKubeVirt API: kubevirt.io/v1 (schema: vendored KubeVirt API OpenAPI subset, sha256 0123)');
  });

  const program = buildProgram();
  const all: [string, Command][] = [];
  const walk = (c: Command, path: string[]) => {
    for (const s of c.commands) {
      all.push([[...path, s.name()].join(' '), s]);
      walk(s, [...path, s.name()]);
    }
  };
  walk(program, []);

  it('every command has an example in its --help', () => {
    const missing = all.filter(([key]) => !EXAMPLES[key]).map(([k]) => k);
    expect(missing).toEqual([]);
    for (const [key, cmd] of all) {
      let out = '';
      cmd.configureOutput({ writeOut: (s) => (out += s) });
      cmd.outputHelp();
      expect(out, key).toContain('Examples:');
    }
  });

  it('completion scripts name every command, option and fixed argument word', () => {
    const tree = commandTree(program);
    const bash = bashCompletion(tree);
    const zsh = zshCompletion(tree);
    for (const [key, cmd] of all) {
      if ((cmd as Command & { _hidden?: boolean })._hidden) continue;
      expect(bash).toContain(`'${key}')`);
      expect(zsh).toContain(`'${key}')`);
    }
    expect(bash).toMatch(/'get'\) words='vms vmis [^']*--kubeconfig/);
    expect(bash).toContain('complete -o default -F _virtops_completion virtops');
    expect(zsh.startsWith('#compdef virtops')).toBe(true);
    expect(zsh).toContain("'--all-namespaces:every namespace (adds a NAMESPACE column)'");
  });
});
