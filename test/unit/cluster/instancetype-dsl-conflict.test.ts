/**
 * A DSL VM that sets CPU beside its instancetype: synth fails with ONE message (the
 * expansion's, naming the VM field and the instancetype field), not one from dsl/validate.ts
 * and another from the expansion.
 */
import { App, Chart } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { CommonInstancetypes, VirtualMachine, commonInstancetypes } from '../../../dsl/index.js';

describe('DSL: a CPU conflict with the instancetype is reported once', () => {
  it('names spec.template.spec.domain.cpu.cores and the instancetype field, once', () => {
    const app = new App({ outdir: '/nonexistent-never-written' });
    const chart = new Chart(app, 'c');
    new VirtualMachine(chart, 'vm', { instancetype: commonInstancetypes.u1.small, cpu: { cores: 2 } } as never);
    new CommonInstancetypes(app, 'catalogue');
    let message = '';
    try {
      app.synth();
    } catch (err) {
      message = (err as Error).message;
    }
    const lines = message.split('\n').filter((l) => l.includes('domain.cpu.cores'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/spec\.cpu\.guest/);
  });
});
