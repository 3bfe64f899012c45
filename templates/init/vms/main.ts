/**
 * The cdk8s app: every chart of this repository. `npm run synth` writes one
 * dist/<chart-id>.k8s.yaml per chart (VirtualMachines with their launcher Pods), plus
 * crds.k8s.yaml and install.k8s.yaml for the virtops reconciler.
 */
import { VirtopsApp } from '{{synthModule}}';
import { HelloVms } from './hello.js';

const app = new VirtopsApp();
new HelloVms(app);
app.synth();
