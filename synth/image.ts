/**
 * The one place that names the virtops image (controller, node agent, launcher Pods).
 *
 * `npm run image` builds it (scripts/image/) and pushes `<registry>/virtops:<version>` and
 * `<registry>/virtops:<version>-<digest>`. Synth writes `<registry>/virtops:<version>` into
 * the launcher Pods and install.k8s.yaml, with the registry `localhost:5000` unless told
 * otherwise: a registry every node reaches as localhost (a node-local registry, or a
 * containerd mirror entry for `localhost:5000`), and a string that does not depend on the
 * machine that synthesizes, so dist/ is the same everywhere. Another registry or the exact
 * digest tag: `new VirtopsApp({ image: '...' })` in vms/main.ts (`npm run image` prints it).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const IMAGE_REPOSITORY = 'virtops';
export const DEFAULT_IMAGE_REGISTRY = 'localhost:5000';

let version: string | undefined;

/**
 * The virtops package version (the image's moving tag, the prefix of its digest tag), from
 * the nearest package.json named `virtops` above this module: the checkout, the installed
 * package or /opt/virtops in the image, also when this module runs from a bundle below it.
 */
export function virtopsVersion(): string {
  if (version) return version;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'virtops' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // no package.json here: keep looking upwards
    }
    if (dirname(dir) === dir) throw new Error(`no package.json named virtops above ${start}: cannot tell the virtops version for the image tag`);
  }
}

/** `<registry>/virtops:<tag>` (no registry: `virtops:<tag>`). */
export function virtopsImage(registry: string | undefined = DEFAULT_IMAGE_REGISTRY, tag: string = virtopsVersion()): string {
  return `${registry ? `${registry}/` : ''}${IMAGE_REPOSITORY}:${tag}`;
}

/** [REGISTRY[:PORT]/]PATH[:TAG][@sha256:DIGEST], as the distribution reference grammar allows. */
const IMAGE_REF_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;

/** Undefined when `ref` is a valid image reference, else the message naming `field` and the fix. */
export function imageRefProblem(field: string, ref: string): string | undefined {
  return IMAGE_REF_RE.test(ref)
    ? undefined
    : `${field}: ${JSON.stringify(ref.slice(0, 200))} is not an image reference; expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] with a lower-case name, e.g. ${virtopsImage()} (npm run image prints one)`;
}
