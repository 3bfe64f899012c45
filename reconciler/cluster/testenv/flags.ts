import type { Layout } from './layout.js';

/** Loopback ports picked for one control plane. */
export interface Ports {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
  readonly scheduler: number;
}

/** Service CIDR of the test cluster: the `kubernetes` Service gets 10.0.0.1. */
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

/** etcd, single member, data thrown away after the run (so fsync buys nothing). */
export function etcdArgs(l: Layout, p: Ports): string[] {
  const client = `http://127.0.0.1:${p.etcdClient}`;
  const peer = `http://127.0.0.1:${p.etcdPeer}`;
  return [
    '--name=testenv',
    `--data-dir=${l.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    // The defaults name http://localhost:2380; a member must find itself in the cluster list.
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=testenv=${peer}`,
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

/**
 * kube-apiserver on loopback: static tokens (admin in system:masters), RBAC + Node
 * authorization, service-account tokens signed with our own key (TokenRequest works), and the
 * ServiceAccount admission plugin off (Pods need no token volume: there is no kubelet).
 */
export function apiserverArgs(l: Layout, p: Ports): string[] {
  return [
    'kube-apiserver',
    `--etcd-servers=http://127.0.0.1:${p.etcdClient}`,
    `--cert-dir=${l.apiserverCertDir}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${p.apiserver}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--authorization-mode=Node,RBAC',
    `--token-auth-file=${l.tokenFile}`,
    `--service-account-issuer=https://127.0.0.1:${p.apiserver}`,
    `--service-account-key-file=${l.serviceAccountPub}`,
    `--service-account-signing-key-file=${l.serviceAccountKey}`,
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    // A loopback address is not a valid Endpoints address: do not publish one.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
  ];
}

/**
 * kube-controller-manager as kubeadm runs it: its own identity, one service-account credential
 * per controller (so RBAC is exercised as in a real cluster). The default controller set
 * includes the garbage collector (ownerReference cascades), the service-account token
 * controller and node lifecycle (Nodes whose Lease is not renewed get tainted, as in a real
 * cluster: a node agent must heartbeat).
 */
export function controllerManagerArgs(l: Layout, p: Ports, controllers: readonly string[]): string[] {
  const kubeconfig = l.componentKubeconfig('kube-controller-manager');
  return [
    'kube-controller-manager',
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${p.controllerManager}`,
    `--cert-dir=${l.pki}/controller-manager`,
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${l.serviceAccountKey}`,
    `--root-ca-file=${l.apiserverCert}`,
    `--controllers=${controllers.join(',')}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--profiling=false',
  ];
}

export function schedulerArgs(l: Layout, p: Ports): string[] {
  const kubeconfig = l.componentKubeconfig('kube-scheduler');
  return [
    'kube-scheduler',
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${p.scheduler}`,
    `--cert-dir=${l.pki}/scheduler`,
    '--profiling=false',
  ];
}
