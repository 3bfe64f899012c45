/**
 * The cdk8s app (cdk8s.yaml): `npm run synth` writes one dist/<chart-id>.k8s.yaml per chart
 * of vms/app.ts (VirtualMachines with their launcher Pods), plus crds.k8s.yaml and
 * install.k8s.yaml for the virtops reconciler.
 */
import { buildApp } from './app.js';

buildApp().synth();
