/**
 * Snapshot test of the synthesized manifests: a change to a VM shows up as a snapshot diff
 * to review (`npx vitest run -u` accepts it). The first run writes the snapshot; commit it.
 */
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../vms/app.js';

function synthAll() {
  const app = buildApp({ crds: false, install: false }); // nothing is written: no synth()
  app.attachLauncherPods();
  return app;
}

describe('vms', () => {
  it('passes virtops validation', () => {
    const errors = synthAll().node.findAll().flatMap((c) => c.node.validate());
    expect(errors).toEqual([]);
  });

  it('every chart synthesizes to the reviewed manifests', () => {
    const app = synthAll();
    expect(app.charts.length).toBeGreaterThan(0);
    for (const chart of app.charts) expect(Testing.synth(chart), chart.node.id).toMatchSnapshot(chart.node.id);
  });
});
