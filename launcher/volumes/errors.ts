/**
 * How materialising volumes fails. Each error names the VMI volume (and the field when the
 * input is at fault) so a status condition or a log line alone says what to fix. `reason`
 * uses KubeVirt's printableStatus vocabulary where one fits (ErrImagePull,
 * ErrorPvcNotFound), so the controller can surface it unchanged.
 */

export type VolumeErrorReason =
  | 'InvalidVolume'
  | 'ErrImagePull'
  | 'ErrImageNeverPull'
  | 'ErrorPvcNotFound'
  | 'SecretNotFound'
  | 'HostDiskNotFound'
  | 'CommandFailed';

export class VolumeError extends Error {
  override name = 'VolumeError';
  constructor(
    readonly reason: VolumeErrorReason,
    /** The VMI volume name, when the error is about one. */
    readonly volume: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(volume ? `volume "${volume}": ${message}` : message, options);
  }
}

/** Invalid input: `path` is the VMI field (e.g. `spec.volumes[2].emptyDisk.capacity`). */
export class InvalidVolumeError extends VolumeError {
  override name = 'InvalidVolumeError';
  constructor(
    volume: string | undefined,
    readonly path: string,
    problem: string,
    readonly fix: string,
  ) {
    super('InvalidVolume', volume, `${path}: ${problem}. Fix: ${fix}`);
  }
}

/** The image could not be pulled (missing, unreachable, unauthorised) or may not be pulled (policy Never). */
export class ImagePullError extends VolumeError {
  override name = 'ImagePullError';
  constructor(
    reason: 'ErrImagePull' | 'ErrImageNeverPull',
    readonly image: string,
    /** The registry's (or skopeo's) own message. */
    readonly registryMessage: string,
    volume?: string,
  ) {
    super(reason, volume, `cannot pull image "${image}": ${registryMessage}`);
  }
}

/** A helper program (qemu-img, genisoimage, skopeo, tar) failed; carries its stderr verbatim. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    /** Set when the failure is "no space left on device", the one callers may want to tell apart. */
    readonly noSpace: boolean,
  ) {
    super(
      `${command} ${args.join(' ')} failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}: ` +
        (stderr.trim() || '(no output)'),
    );
  }
}
