import { App, Chart } from 'cdk8s';
import { Size, VirtualMachine, Volume, type VirtualMachineProps } from '../../../dsl/index.js';

/** An outdir no test writes to: cdk8s' Testing.app() makes a temp dir per call that nobody removes. */
export const UNWRITTEN_OUTDIR = '/nonexistent/virtops-dsl-tests-never-written';

/** An app that is never written to disk (no temp dirs to clean up); Testing.synth(chart) still works. */
export function unwrittenApp(): App {
  return new App({ outdir: UNWRITTEN_OUTDIR });
}

/** A chart in an app that is never written to disk. */
export function testChart(props: { namespace?: string; labels?: Record<string, string> } = {}): Chart {
  return new Chart(unwrittenApp(), 'test', props);
}

/** A VM that validates cleanly: 512Mi, one containerDisk. Tests vary one thing at a time. */
export function validVm(props: VirtualMachineProps = {}, chart: Chart = testChart()): VirtualMachine {
  const vm = new VirtualMachine(chart, 'vm', { memory: { guest: Size.mebibytes(512) }, ...props });
  vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/kubevirt/cirros-container-disk-demo'));
  return vm;
}

/** Reads a dotted path (`a.b[0].c`) out of a manifest. */
export function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.replace(/\[(\d+)\]/g, '.$1').split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
