/**
 * Snapshot test of the synthesized manifests: a change to a VM shows up as a snapshot diff
 * to review (`npx vitest run -u` accepts it). The first run writes the snapshot; commit it.
 */
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { VirtopsApp } from '{{synthModule}}';
import { HelloVms } from '../vms/hello.js';

function synthHello() {
  const app = new VirtopsApp({ crds: false, install: false }); // nothing is written: no synth()
  const chart = new HelloVms(app);
  app.attachLauncherPods();
  return { app, chart };
}

describe('vms', () => {
  it('passes virtops validation', () => {
    const { app } = synthHello();
    const errors = app.node.findAll().flatMap((c) => c.node.validate());
    expect(errors).toEqual([]);
  });

  it('HelloVms synthesizes to the reviewed manifests', () => {
    const { chart } = synthHello();
    const manifests = Testing.synth(chart);
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(['VirtualMachine/hello', 'Pod/virt-launcher-hello']);
    expect(manifests).toMatchSnapshot();
  });
});
