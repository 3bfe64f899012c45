/** The module scripts/build-bundles.mjs generates (launcher/precompiled/generate.ts). */
declare module 'virtops:precompiled-validators' {
  import type { ValidateFunction } from 'ajv';
  export const precompiled: Record<string, ValidateFunction>;
}
