/**
 * `npm pack`'s prepack step: what the installed package runs, built from this checkout.
 *
 *   build/<dir>/*.js, *.d.ts   tsc -p tsconfig.build.json (compiled ESM + declarations of
 *                              api/, dsl/, synth/, launcher/, reconciler/, cli/)
 *   build/bundles/<name>/      the launcher and reconciler esbuild bundles (as in the
 *                              checkout, but prebuilt: the package has no esbuild step),
 *                              and the cli bundle that runs every other command (the
 *                              checkout runs those through tsx)
 *   build/cli/bin.js, build/tools/kube/versions.env   copies compiled modules find by
 *                              import.meta.url, as the sources find them
 *   build-info.json            { version, commit, kubevirtApi, kubevirtOpenApi }: what
 *                              `virtops --version` reports
 *
 * cli/bin.js runs these when it finds no cli/main.ts next to it (the installed package);
 * in this checkout it keeps running the sources. package.json `files` lists what ships.
 *
 *   node scripts/build-package.mjs           (prepack: npm pack / npm publish run it)
 *   node scripts/build-package.mjs --clean   (postpack: removes build/ and build-info.json again,
 *                                            so this checkout's `virtops --version` asks git, not a
 *                                            stale build-info.json)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPackageBundles } from './build-bundles.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BUILD = join(REPO, 'build');

const t0 = performance.now();
rmSync(BUILD, { recursive: true, force: true });
if (process.argv[2] === '--clean') {
  rmSync(join(REPO, 'build-info.json'), { force: true });
  process.exit(0);
}
const tsc = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json')], { cwd: REPO, stdio: 'inherit' });
if (tsc.status !== 0) {
  process.stderr.write('build-package: tsc -p tsconfig.build.json failed (see above); nothing was packed\n');
  process.exit(1);
}
// Files compiled modules locate next to themselves (import.meta.url), as in the source tree:
// cli/bin.js (CLI_BIN: how up and the agent start launchers) and the testenv's versions.
for (const rel of ['cli/bin.js', 'tools/kube/versions.env']) {
  mkdirSync(join(BUILD, rel, '..'), { recursive: true });
  copyFileSync(join(REPO, rel), join(BUILD, rel));
}
await buildPackageBundles(join(BUILD, 'bundles'));
writeFileSync(join(REPO, 'build-info.json'), `${JSON.stringify(buildInfo(), null, 2)}\n`);
process.stderr.write(`build-package: build/ and build-info.json in ${Math.round(performance.now() - t0)} ms\n`);

/** Version, the commit built from ("+dirty" when the work tree differs from it) and the KubeVirt API the schema comes from. */
function buildInfo() {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const git = (...args) => spawnSync('git', args, { cwd: REPO, encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no').stdout.trim() !== '';
  const specText = readFileSync(join(REPO, 'api/kubevirt-openapi.v1.json'));
  const spec = JSON.parse(specText.toString('utf8'));
  return {
    version: pkg.version,
    commit: head.status === 0 ? `${head.stdout.trim()}${dirty ? '+dirty' : ''}` : 'unknown',
    kubevirtApi: 'kubevirt.io/v1',
    // The vendored KubeVirt OpenAPI (swagger) subset: KubeVirt's spec carries no version
    // of its own (info.version is absent), so its content hash identifies it.
    kubevirtOpenApi: {
      title: spec.info?.title ?? spec['x-virtops-source']?.title ?? 'KubeVirt API',
      version: spec.info?.version ?? null,
      swagger: spec.swagger ?? spec.openapi ?? null,
      sha256: createHash('sha256').update(specText).digest('hex').slice(0, 16),
    },
  };
}
