import { join } from 'node:path';

/** The four processes of the control plane, in start order. */
export const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'] as const;
export type Component = (typeof COMPONENTS)[number];

/** Where everything lives inside a testenv directory. Pure path arithmetic. */
export function layoutOf(dir: string) {
  const pki = join(dir, 'pki');
  return {
    dir,
    state: join(dir, 'testenv.json'),
    kubeconfig: join(dir, 'kubeconfig'),
    etcdData: join(dir, 'etcd'),
    pki,
    /** kube-apiserver writes its self-signed serving cert (followed by its CA) here. */
    apiserverCertDir: join(pki, 'apiserver'),
    apiserverCert: join(pki, 'apiserver', 'apiserver.crt'),
    tokenFile: join(pki, 'tokens.csv'),
    serviceAccountKey: join(pki, 'sa.key'),
    serviceAccountPub: join(pki, 'sa.pub'),
    componentKubeconfig: (c: 'kube-controller-manager' | 'kube-scheduler') => join(dir, `${c}.kubeconfig`),
    userKubeconfig: (user: string) => join(dir, 'users', `${user}.kubeconfig`),
    logs: join(dir, 'logs'),
    log: (c: Component) => join(dir, 'logs', `${c}.log`),
    pidFile: (c: Component) => join(dir, `${c}.pid`),
  };
}
export type Layout = ReturnType<typeof layoutOf>;
