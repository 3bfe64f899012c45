import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { stringify } from 'yaml';

/** A static-token identity of the API server (`--token-auth-file`). */
export interface StaticUser {
  readonly name: string;
  readonly token: string;
  readonly groups: readonly string[];
}

/** The built-in identities: admin (system:masters) and the two control-plane components. */
export function builtinUsers(token: () => string = randomToken): StaticUser[] {
  return [
    { name: 'admin', token: token(), groups: ['system:masters'] },
    // Bootstrap RBAC binds these user names to the components' roles, as in kubeadm.
    { name: 'system:kube-controller-manager', token: token(), groups: [] },
    { name: 'system:kube-scheduler', token: token(), groups: [] },
  ];
}

export function randomToken(): string {
  return randomBytes(24).toString('hex');
}

const USER_NAME = /^[a-z0-9]([a-z0-9:._@-]*[a-z0-9])?$/;

/** Checks extra users asked for by the caller; messages name the field and the fix. */
export function validateExtraUsers(users: readonly { name: string; groups?: readonly string[] }[], taken: readonly string[]): string[] {
  const errors: string[] = [];
  const seen = new Set(taken);
  users.forEach((u, i) => {
    if (!USER_NAME.test(u.name)) {
      errors.push(`users[${i}].name: "${u.name}" must be lower-case letters, digits and : . _ @ - (e.g. "alice" or "system:node:n1")`);
    } else if (seen.has(u.name)) {
      errors.push(`users[${i}].name: "${u.name}" is already defined; pick another name`);
    }
    seen.add(u.name);
    (u.groups ?? []).forEach((g, j) => {
      if (g === '' || /[",\n]/.test(g)) errors.push(`users[${i}].groups[${j}]: "${g}" must be non-empty without commas or quotes`);
    });
  });
  return errors;
}

/** `--token-auth-file` content: `token,user,uid,"group1,group2"` per line. Pure. */
export function renderTokenFile(users: readonly StaticUser[]): string {
  return users.map((u) => `${u.token},${u.name},${u.name},"${u.groups.join(',')}"`).join('\n') + '\n';
}

export interface KubeconfigInput {
  readonly server: string;
  /** PEM bundle that verifies the API server's serving certificate. */
  readonly caFile: string;
  readonly user: string;
  readonly token: string;
  readonly cluster?: string;
}

/** A one-context kubeconfig with bearer-token auth. Pure. */
export function renderKubeconfig(k: KubeconfigInput): string {
  const cluster = k.cluster ?? 'testenv';
  const context = `${k.user}@${cluster}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: k.server, 'certificate-authority': k.caFile } }],
    users: [{ name: k.user, user: { token: k.token } }],
    contexts: [{ name: context, context: { cluster, user: k.user } }],
    'current-context': context,
  });
}

/** RSA key pair for signing/verifying service-account tokens (PKCS#8 / SPKI PEM). */
export function serviceAccountKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}
