/**
 * Every chart of this repository. Add a VM: a construct file in vms/ (copy hello.ts, or
 * `npx virtops import vm.yaml --out vms/my-vm.ts`) and one line below. vms/main.ts
 * synthesizes this app into dist/; test/vms.test.ts snapshots each chart.
 */
import { VirtopsApp, type VirtopsAppProps } from '{{synthModule}}';
import { HelloVms } from './hello.js';

export function buildApp(props?: VirtopsAppProps): VirtopsApp {
  const app = new VirtopsApp(props);
  new HelloVms(app);
  return app;
}
