/**
 * Certificates for the node agents' console endpoint (reconciler/cluster/console-server.ts),
 * the way a kubeadm cluster has them for kubelets: a CA that signs only the API server's
 * kubelet client certificate (kube-apiserver `--kubelet-client-certificate/-key`; agents
 * trust it with `--client-ca-file`), and one serving certificate agents may share (the API
 * server does not verify kubelet serving certificates unless --kubelet-certificate-authority
 * is set). Made with the openssl CLI (ECDSA P-256: fast), fresh per control plane start.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface NodePki {
  /** CA of the API server's kubelet client certificate: agents' `--client-ca-file`. */
  readonly clientCaFile: string;
  readonly apiserverClientCertFile: string;
  readonly apiserverClientKeyFile: string;
  /** A serving certificate and key for agents' `--tls-cert-file/--tls-private-key-file`. */
  readonly servingCertFile: string;
  readonly servingKeyFile: string;
}

/** Pure: where the files live under the pki dir. */
export function nodePkiPaths(pki: string): NodePki {
  const d = join(pki, 'nodes');
  return {
    clientCaFile: join(d, 'kubelet-client-ca.crt'),
    apiserverClientCertFile: join(d, 'apiserver-kubelet-client.crt'),
    apiserverClientKeyFile: join(d, 'apiserver-kubelet-client.key'),
    servingCertFile: join(d, 'node-serving.crt'),
    servingKeyFile: join(d, 'node-serving.key'),
  };
}

/** The kube-apiserver flags that make it present its kubelet client certificate. Pure. */
export function apiserverKubeletClientArgs(p: NodePki): string[] {
  return [`--kubelet-client-certificate=${p.apiserverClientCertFile}`, `--kubelet-client-key=${p.apiserverClientKeyFile}`];
}

export function writeNodePki(pki: string): NodePki {
  const p = nodePkiPaths(pki);
  const dir = join(pki, 'nodes');
  const caKey = join(dir, 'kubelet-client-ca.key');
  const csr = join(dir, 'apiserver-kubelet-client.csr');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const run = (args: string[]) => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      throw new Error(e.code === 'ENOENT' ? 'openssl is not installed: the testenv needs it for the node console certificates (apt-get install openssl)' : `openssl ${args[0]}: ${e.stderr?.toString() ?? e.message}`);
    }
  };
  execFileSync('mkdir', ['-p', '-m', '0700', dir]);
  run(['req', '-x509', ...ec, '-keyout', caKey, '-out', p.clientCaFile, '-days', '3650', '-subj', '/CN=virtops-testenv-kubelet-client-ca']);
  run(['req', ...ec, '-keyout', p.apiserverClientKeyFile, '-out', csr, '-subj', '/O=system:masters/CN=kube-apiserver-kubelet-client']);
  run(['x509', '-req', '-in', csr, '-CA', p.clientCaFile, '-CAkey', caKey, '-CAcreateserial', '-out', p.apiserverClientCertFile, '-days', '3650']);
  run(['req', '-x509', ...ec, '-keyout', p.servingKeyFile, '-out', p.servingCertFile, '-days', '3650', '-subj', '/CN=virtops-agent']);
  return p;
}
