#!/bin/sh
# The freshness check of this repository: dist/ must be exactly what vms/ synthesize, so
# the diff a reviewer approves is what runs. The virtops reconciler applies dist/ as data
# and runs no code from this repository (unless its operator opts into the sandboxed
# --verify-synth), so this check belongs here, in CI, before a change reaches the branch.
# Any CI runs it the same way: `sh ci/check-dist.sh` (.github/workflows/virtops.yml and
# .gitlab-ci.yml do). Needs node >= 20.11 and npm; exit 0 = dist/ is fresh.
set -eu
cd "$(dirname "$0")/.."

# virtops is a file: dependency (see README.md); say so plainly when this runner lacks it.
dep=$(node -p "(require('./package.json').dependencies || {}).virtops || ''")
case "$dep" in
  file:*)
    if [ ! -d "${dep#file:}" ]; then
      echo "ci/check-dist.sh: package.json depends on virtops at ${dep#file:}, which this runner does not have." >&2
      echo "Fix: run this job where that checkout exists (e.g. a self-hosted runner on the virtops host), or point the virtops dependency at a git URL." >&2
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
