/**
 * `virtops port-forward` through a real `virtops up` (its API, then the VM's launcher socket)
 * on libvirt's test:///default driver. That driver runs no QEMU, so nothing binds the host
 * port the launcher picked for the declared guest port: this test listens there itself, in
 * QEMU's place, and checks that bytes sent to port-forward's local port arrive and come back.
 * The forward from that host port into a real guest is test/integration/guest/debian.test.ts's.
 */
import { createServer, connect, type Server } from 'node:net';
import YAML from 'yaml';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortForward } from '../../../launcher/convert/context.js';
import { callLauncher } from '../../../launcher/server/client.js';
import { bareVm, gitFixture, vmDocuments, type GitFixture } from './fixture.js';
import { CLI, cleanupStateDir, cli, listVms, makeStateDir, startUp, waitFor, type UpProcess } from './harness.js';

describe('virtops port-forward through virtops up', () => {
  let git: GitFixture;
  let stateDir: string;
  let up: UpProcess;
  let standIn: Server | undefined;
  let nodePort: number;

  beforeAll(async () => {
    git = await gitFixture();
    stateDir = await makeStateDir();
    const vm = bareVm('web');
    vm.spec.template.spec.domain.devices.interfaces = [{ name: 'default', masquerade: {}, ports: [{ name: 'http', port: 8080 }] }];
    vm.spec.template.spec.networks = [{ name: 'default', pod: {} }];
    // A NodePort Service selecting web's template label: up listens on nodePort (a free port here).
    nodePort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-http', namespace: 'default' }, spec: { type: 'NodePort', selector: { 'kubevirt.io/vm': 'web' }, ports: [{ port: 80, targetPort: 8080, nodePort }] } };
    await git.commitDist({ 'web.k8s.yaml': vmDocuments(vm), 'quiet.k8s.yaml': vmDocuments(bareVm('quiet')), 'web-service.k8s.yaml': YAML.stringify(service) }, 'a VM with a declared port and a NodePort Service, one VM without ports');
    up = await startUp(['--repo', git.bare, '--libvirt-uri', 'test:///default', '--interval', '2s'], stateDir);
  });

  afterAll(async () => {
    standIn?.close();
    await up?.stop().catch(() => undefined);
    if (stateDir) await cleanupStateDir(stateDir);
    await git?.cleanup();
  });

  it('relays to the host port the launcher recorded, and explains what it cannot forward', async () => {
    const web = await waitFor('web Running', async () => {
      const v = (await listVms(up.server)).vms.find((x) => x.name === 'web');
      return v?.status?.printableStatus === 'Running' && v.instance ? v : undefined;
    });
    const info = await callLauncher<{ ports: PortForward[] }>(web.instance!.socket, 'GET', '/v1/info');
    expect(info.body.ports).toEqual([{ guest: 8080, host: expect.any(Number), protocol: 'TCP', name: 'http' }]);
    const host = info.body.ports[0]!.host;

    // In QEMU's place: an echo server on the host port.
    standIn = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => standIn!.listen(host, '127.0.0.1', () => r()));

    const pf = execa(process.execPath, [CLI, 'port-forward', 'web', ':8080', '--server', up.server], { reject: false });
    try {
      const local = await new Promise<number>((resolve, reject) => {
        let out = '';
        pf.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> default\/web:8080/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        void pf.then((r) => reject(new Error(`port-forward exited ${r.exitCode}: ${String(r.stderr)}`)));
      });
      const echoed = await new Promise<string>((resolve, reject) => {
        const c = connect(local, '127.0.0.1', () => c.write('hello guest'));
        c.once('data', (b: Buffer) => { resolve(b.toString()); c.destroy(); });
        c.once('error', reject);
      });
      expect(echoed).toBe('hello guest');
    } finally {
      pf.kill('SIGTERM');
      await pf;
    }

    // The NodePort Service: 127.0.0.1:nodePort (up listens on 0.0.0.0) reaches web's 8080 too.
    const viaService = await waitFor('node port answers', async () => new Promise<string | undefined>((resolve) => {
      const c = connect(nodePort, '127.0.0.1', () => c.write('hello service'));
      c.once('data', (b: Buffer) => { resolve(b.toString()); c.destroy(); });
      c.once('error', () => resolve(undefined));
      c.once('close', () => resolve(undefined));
    }));
    expect(viaService).toBe('hello service');

    const undeclared = await cli(['port-forward', 'web', '9090'], up.server);
    expect(undeclared.exitCode).toBe(1);
    expect(undeclared.stderr).toContain('port 9090 of VM default/web is not declared (declared: 8080)');
    await waitFor('quiet Running', async () => (await listVms(up.server)).vms.find((x) => x.name === 'quiet')?.instance);
    const none = await cli(['port-forward', 'quiet', '22'], up.server);
    expect(none.stderr).toMatch(/VM default\/quiet forwards no ports: .*add ports: \[\{ port: 22 \}\]/);
    const missing = await cli(['ssh', 'nobody'], up.server);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/nobody/);
  }, 120_000);
});
