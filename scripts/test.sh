#!/usr/bin/env bash
# `npm test`: everything the test suites need, then every test. Works on a fresh machine:
# each step below is idempotent and cheap when its work is already done.
#   - host: Debian packages for libvirt/QEMU/image tools, a running libvirtd
#   - npm deps (npm ci when node_modules is missing or older than the lockfile)
#   - the test guest (kernel + busybox initramfs + OCI images, cached)
#   - the Kubernetes control plane binaries built from Go modules (cached by version), and the
#     real test node's kubelet + containerd (same build) and pause/busybox images (cached)
# Then: type-check, and run the vitest projects (unit, integration, cluster).
# Extra arguments go to vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/build-test-guest.sh >/dev/null
bash scripts/guest-image/build.sh >/dev/null  # the Debian guest (minutes cold, cached)
bash tools/kube/build.sh
bash scripts/build-pause-image.sh >/dev/null
npx tsc --noEmit
exec npx vitest run "$@"
