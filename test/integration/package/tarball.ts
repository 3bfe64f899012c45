/**
 * The npm package of this checkout, as `npm pack` makes it (prepack: scripts/build-package.mjs),
 * cached under ~/.cache/virtops/package/<hash>/ keyed by the content of everything the pack
 * reads (sources, templates, build scripts and configs, package.json, the lockfile), so
 * test files share one tarball and a run without source changes does not pack again.
 * build-info.json's commit is the one of the run that packed it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const INPUTS = ['api', 'dsl', 'synth', 'launcher', 'reconciler', 'cli', 'dashboard', 'templates', 'scripts/build-bundles.mjs', 'scripts/build-package.mjs', 'tools/kube/versions.env', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'CHANGELOG.md'];

/** Absolute path of the packed virtops-<version>.tgz (packed now when the cache has none for these sources). */
export async function packedTarball(): Promise<string> {
  const { stdout } = await execa('git', ['ls-files', '-co', '--exclude-standard', '--', ...INPUTS], { cwd: REPO });
  const h = createHash('sha256');
  for (const rel of stdout.split('\n').filter(Boolean).sort()) {
    if (!existsSync(join(REPO, rel))) continue; // deleted in the work tree
    h.update(rel).update('\0').update(readFileSync(join(REPO, rel))).update('\0');
  }
  const dir = join(process.env['VIRTOPS_CACHE_DIR'] ?? join(homedir(), '.cache', 'virtops'), 'package', h.digest('hex').slice(0, 16));
  const found = existsSync(dir) ? readdirSync(dir).find((f) => /^virtops-.*\.tgz$/.test(f)) : undefined;
  if (found) return join(dir, found);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const packed = await execa('npm', ['pack', '--pack-destination', tmp, '--loglevel=warn'], { cwd: REPO, all: true, reject: false });
    if (packed.exitCode !== 0) throw new Error(`npm pack failed in ${REPO}:\n${packed.all}`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Tarballs of older sources: kept a day (another test file of this run may still use one).
  for (const name of readdirSync(join(dir, '..'))) {
    const p = join(dir, '..', name);
    if (p !== dir && /^[0-9a-f]{16}$/.test(name) && Date.now() - statSync(p).mtimeMs > 24 * 3600 * 1000) rmSync(p, { recursive: true, force: true });
  }
  return join(dir, readdirSync(dir).find((f) => /^virtops-.*\.tgz$/.test(f)) as string);
}

/** The environment without CI markers (vitest then writes a first snapshot), npm preferring its cache. */
export const npmEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'CI' && !k.startsWith('GITHUB_') && !k.startsWith('VITEST') && k !== 'NODE_ENV' && k !== 'TEST')),
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
