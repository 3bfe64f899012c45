/**
 * virtops testenv: a real local Kubernetes control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) built from Go modules, for tests and local use.
 * See README.md in this directory.
 */
export {
  startControlPlane,
  stopControlPlane,
  attachControlPlane,
  readControlPlane,
  killControlPlaneOnExit,
  runningComponents,
  type ControlPlane,
  type ControlPlaneInfo,
  type StartControlPlaneOptions,
  type StopComponentOptions,
  type ExtraUser,
  type Component,
} from './control-plane.js';
export { ensureBinaries, binariesPresent, goAvailable, GoMissingError, type Binaries } from './binaries.js';
export { defaultBinDir, readVersions, type ControlPlaneVersions } from './versions.js';
export { serviceAccountKubeconfig, loadKubeConfig, type ServiceAccountKubeconfigOptions } from './identities.js';
export { renderKubeconfig } from './credentials.js';
export { COMPONENTS } from './layout.js';
export { startNode, stopNode, defaultNodeName, attachNode, readNode, runningNodeProcesses, ensureNodeArtifacts, type KubeletNode, type NodeInfo, type StartNodeOptions } from './node.js';
