/**
 * The cdk8s app: every chart of VMs-as-code. `npm run synth` (or `cdk8s synth`) runs this
 * file; each chart becomes `dist/<chart-id>.k8s.yaml`, next to the CRD/install charts and
 * one launcher Pod per VirtualMachine that VirtopsApp adds.
 */
import { VirtopsApp } from '../synth/app.js';
import { Cirros } from './cirros.js';
import { FedoraPvc } from './fedora-pvc.js';
import { KubevirtSmokeFedora } from './kubevirt-smoke-fedora.js';
import { SmokeDebian } from './smoke-debian.js';
import { TestGuest } from './test-guest.js';

const app = new VirtopsApp();
new KubevirtSmokeFedora(app);
new SmokeDebian(app);
new Cirros(app);
new FedoraPvc(app);
new TestGuest(app);
app.synth();
