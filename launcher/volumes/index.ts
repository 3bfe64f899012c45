/**
 * launcher/volumes: turns a VMI's volumes into files libvirt can attach (see materialize.ts
 * for lifetimes, plan.ts for the on-disk layout, image-store.ts for the image cache).
 */
export { materializeVolumes, releaseVolumes, type MaterializeOptions, type MaterializedVolumes } from './materialize.js';
export { ImageStore, type ImageStoreOptions, type PulledImage, type TransferRetry } from './image-store.js';
export { DirectorySecretSource, type DirectorySecretSourceOptions, type SecretSource, type ObjectKind } from './secrets.js';
export { CommandError, ImagePullError, InvalidVolumeError, VolumeError, type VolumeErrorReason } from './errors.js';
export { planVolumes, volumeDirs, type MaterializationPlan, type VolumePlan } from './plan.js';
