/**
 * Where launcher code runs from: TypeScript source under tsx (tests, `npx tsx cli/main.ts`)
 * or the esbuild bundle `cli/bin.js` runs (scripts/build-bundles.mjs). The bundle puts its
 * entry points and chunks in one directory, so a sibling entry is found next to
 * import.meta.url of whichever chunk asks.
 */

/** A sibling entry point: `<name>.ts` next to the source file, `<name>.mjs` in the bundle. */
export function siblingEntry(moduleUrl: string, sourceRelative: string, bundleName: string): URL {
  return moduleUrl.endsWith('.ts') ? new URL(sourceRelative, moduleUrl) : new URL(`./${bundleName}.mjs`, moduleUrl);
}

/** True when `moduleUrl` (an import.meta.url) is a module of the bundle, not TypeScript source. */
export function isBundled(moduleUrl: string): boolean {
  return !moduleUrl.endsWith('.ts');
}
