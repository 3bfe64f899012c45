/**
 * Pure helpers about image references and image contents, shared by the planner and the
 * image store.
 */

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface ImageRef {
  image: string;
  pullPolicy: PullPolicy;
  /** Name of a Secret (same namespace) holding `.dockerconfigjson`. */
  pullSecret?: string;
}

/** Kubernetes' default: `Always` for `:latest` or untagged images, else `IfNotPresent`. */
export function defaultPullPolicy(image: string): PullPolicy {
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.indexOf(':');
  if (colon < 0) return 'Always';
  return lastSegment.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

/** The registry host of an image reference (`docker.io` when the first part is not a host). */
export function registryHost(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** The reference without tag or digest: `host:5000/a/b:tag` → `host:5000/a/b`. */
export function repositoryOf(image: string): string {
  const at = image.indexOf('@');
  const noDigest = at >= 0 ? image.slice(0, at) : image;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** The reference pinned to a manifest digest, so a tag moving mid-pull cannot mix images. */
export function pinnedReference(image: string, digest: string): string {
  return `${repositoryOf(image)}@${digest}`;
}

/**
 * The human part of skopeo's stderr: it logs `time=... level=fatal msg="..."`; the msg
 * carries the registry's own words (e.g. "manifest unknown").
 */
export function skopeoMessage(stderr: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(stderr);
  const text = m ? m[1]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\') : stderr;
  return text.trim() || 'skopeo failed without a message';
}

/**
 * Whether skopeo failed because the transfer itself broke (the connection dropped mid-read or
 * the registry was briefly unavailable), not because of what was asked. Such a pull is tried
 * again at once; the rest (refused connections, unknown manifests, auth) fail the pull for the
 * caller to report and back off, as before.
 */
export function isTransientTransferError(stderr: string): boolean {
  return /unexpected EOF|": EOF\b|connection reset by peer|broken pipe|i\/o timeout|TLS handshake timeout|server sent GOAWAY|502 Bad Gateway|503 Service Unavailable|504 Gateway Timeout/i.test(stderr);
}

/** Normalises a tar member name (`./disk/x` → `disk/x`, `disk/` → `disk`). */
export function normalizeMember(name: string): string {
  return name.replace(/^\.\//, '').replace(/^\/+/, '').replace(/\/+$/, '');
}

export type LayerLookup =
  /** The layer holds the file: extract this exact member name. */
  | { found: string }
  /** The layer deletes the path (whiteout): lower layers must not be consulted. */
  | { deleted: true }
  | { absent: true };

/**
 * Looks up `path` (absolute, in the image) in one layer's tar listing (`tar -t` output,
 * directories end in `/`). With `asDirectory`, the single regular file directly under the
 * directory is wanted (containerDisk's `/disk/` convention); several candidates throw.
 */
export function lookupInLayer(listing: readonly string[], path: string, asDirectory: boolean): LayerLookup {
  const target = normalizeMember(path);
  const slash = target.lastIndexOf('/');
  const parent = slash >= 0 ? target.slice(0, slash) : '';
  const base = target.slice(slash + 1);
  const whiteouts = new Set([
    normalizeMember(`${parent}/.wh.${base}`),
    normalizeMember(`${parent}/.wh..wh..opq`),
    ...(asDirectory ? [normalizeMember(`${target}/.wh..wh..opq`)] : []),
  ]);
  if (listing.some((m) => whiteouts.has(normalizeMember(m)))) return { deleted: true };
  if (!asDirectory) {
    const hit = listing.find((m) => !m.endsWith('/') && normalizeMember(m) === target);
    return hit ? { found: hit } : { absent: true };
  }
  const prefix = `${target}/`;
  const files = listing.filter((m) => {
    if (m.endsWith('/')) return false;
    const n = normalizeMember(m);
    return n.startsWith(prefix) && !n.slice(prefix.length).includes('/') && !n.slice(prefix.length).startsWith('.wh.');
  });
  if (files.length > 1) {
    throw new Error(`several files under ${path} (${files.map(normalizeMember).join(', ')}); set the volume's path to the disk file`);
  }
  return files.length ? { found: files[0]! } : { absent: true };
}
