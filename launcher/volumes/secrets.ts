/**
 * Where Secret, ConfigMap and ServiceAccount contents come from on a node. The launcher
 * has no API server in standalone mode, so the default source is a directory tree laid
 * out like a mounted Kubernetes volume:
 *
 *   <secretsDir>/<namespace>/<name>/<key>          one file per Secret key
 *   <configMapsDir>/<namespace>/<name>/<key>       one file per ConfigMap key
 *   <serviceAccountsDir>/<namespace>/<name>/<key>  token, ca.crt (namespace is added)
 *
 * Entries starting with `..` (the `..data` symlinks kubelet writes) are skipped; other
 * dotfiles are keys (`.dockerconfigjson`).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type ObjectKind = 'secret' | 'configMap' | 'serviceAccount';

export interface SecretSource {
  /** Key → contents, or undefined when the object does not exist. */
  get(kind: ObjectKind, namespace: string, name: string): Promise<Record<string, Buffer> | undefined>;
  /** Where the object would be found, for error messages. */
  describe(kind: ObjectKind, namespace: string, name: string): string;
}

export interface DirectorySecretSourceOptions {
  secretsDir?: string;
  configMapsDir?: string;
  serviceAccountsDir?: string;
}

export class DirectorySecretSource implements SecretSource {
  constructor(private readonly dirs: DirectorySecretSourceOptions) {}

  private dirOf(kind: ObjectKind): string | undefined {
    return kind === 'secret' ? this.dirs.secretsDir : kind === 'configMap' ? this.dirs.configMapsDir : this.dirs.serviceAccountsDir;
  }

  describe(kind: ObjectKind, namespace: string, name: string): string {
    const dir = this.dirOf(kind);
    return dir ? join(dir, namespace, name) : `(no ${kind} directory configured)`;
  }

  async get(kind: ObjectKind, namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    const root = this.dirOf(kind);
    if (!root) return undefined;
    const dir = join(root, namespace, name);
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const data: Record<string, Buffer> = {};
    for (const key of entries.sort()) {
      if (key.startsWith('..')) continue;
      const file = join(dir, key);
      if (!(await stat(file)).isFile()) continue;
      data[key] = await readFile(file);
    }
    if (kind === 'serviceAccount' && data.namespace === undefined) data.namespace = Buffer.from(namespace);
    return data;
  }
}
