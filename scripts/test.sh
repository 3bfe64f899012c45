#!/usr/bin/env bash
# `npm test`: everything the test suites need, then every test. Works on a fresh machine:
# each step below is idempotent and cheap when its work is already done.
#   - host: Debian packages for libvirt/QEMU/image tools, a running libvirtd
#   - npm deps (npm ci when node_modules is missing or older than the lockfile)
#   - the test guest (kernel + busybox initramfs + OCI images, cached)
#   - the Kubernetes control plane binaries built from Go modules (cached by version), and the
#     real test node's kubelet + containerd (same build) and pause/busybox images (cached),
#     in the background while the tests that do not need them run
# Then: type-check, and run the vitest projects (unit, integration, faults, cluster).
# Extra arguments go to vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/build-test-guest.sh >/dev/null
bash scripts/guest-image/build.sh >/dev/null  # the Debian guest (minutes cold, cached)
# The Kubernetes binaries take ~15 min to build cold, and only the faults and cluster projects
# need them, which vitest runs last (vitest.config.ts): build them in the background, niced so
# the integration project's TCG guests keep the CPU. The cluster fixtures wait for the build
# (build.sh holds a lock while it builds); cached, this ends in a second.
kube_log="$(mktemp -t virtops-kube-build.XXXXXX.log)"
setsid nice -n 19 bash -c 'bash tools/kube/build.sh && bash scripts/build-pause-image.sh' >"$kube_log" 2>&1 &
kube_build=$!
echo "test.sh: building the Kubernetes binaries in the background (pid $kube_build, log $kube_log)"
stop_kube_build() { kill -- "-$kube_build" 2>/dev/null || true; }
trap stop_kube_build EXIT
npx tsc --noEmit
status=0
npx vitest run "$@" || status=$?
if kill -0 "$kube_build" 2>/dev/null; then
  echo "test.sh: stopping the unfinished background build (its Go build cache keeps what it compiled)"
elif ! wait "$kube_build"; then
  # The cluster fixtures ran the build again and reported any failure as theirs.
  echo "test.sh: the background Kubernetes build failed; last lines of $kube_log:" >&2
  tail -n 20 "$kube_log" >&2
else
  rm -f "$kube_log"
fi
exit "$status"
