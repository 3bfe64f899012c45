#!/bin/sh
# The freshness check of this repository: dist/ must be exactly what vms/ synthesize, so
# the diff a reviewer approves is what runs. The virtops reconciler applies dist/ as data
# and runs no code from this repository (unless its operator opts into the sandboxed
# --verify-synth), so this check belongs here, in CI, before a change reaches the branch.
# Any CI runs it the same way: `sh ci/check-dist.sh` (.github/workflows/virtops.yml and
# .gitlab-ci.yml do). Needs node >= 20.11 and npm; exit 0 = dist/ is fresh, the VMs type-check
# and match their reviewed snapshots.
set -eu
cd "$(dirname "$0")/.."

# With `virtops init --virtops-from`, virtops is a file: dependency (see README.md): say so
# plainly when this runner lacks that file.
dep=$(node -p "(require('./package.json').dependencies || {}).virtops || ''")
case "$dep" in
  file:*)
    if [ ! -e "${dep#file:}" ]; then
      echo "ci/check-dist.sh: package.json depends on virtops at ${dep#file:}, which this runner does not have." >&2
      echo "Fix: run this job where that file exists, or depend on a published version (npm install virtops@<version>)." >&2
      exit 2
    fi
    ;;
esac

if [ ! -f package-lock.json ]; then
  echo "ci/check-dist.sh: no package-lock.json. Fix: run 'npm install' once and commit package-lock.json." >&2
  exit 2
fi

npm ci --no-audit --no-fund
npx virtops synth --check
# Type-check and the snapshot test (under CI=true vitest never writes a missing snapshot: commit it).
npm test
