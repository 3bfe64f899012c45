#!/usr/bin/env bash
# Builds the local test control plane (virtops testenv) from Go modules, no Docker, no
# release downloads: `kube` (kube-apiserver, kube-scheduler, kube-controller-manager in one
# binary), `etcd` and the real node's `kubelet`, into a cache directory keyed by the versions
# (never inside the repo), and containerd v2 + its runc shim beside it:
#   ${VIRTOPS_CACHE:-$HOME/.cache/virtops}/kube/<k8s>-<etcd>/{kube,etcd,kubelet}
#   ${VIRTOPS_CACHE:-$HOME/.cache/virtops}/containerd/<containerd>/{containerd,containerd-shim-runc-v2}
# Idempotent: a binary that is already there is not rebuilt. Cold: tens of minutes on
# 2 cores; the Go build cache makes a rebuild take about a minute.
#
#   bash tools/kube/build.sh            build what is missing, print progress
#   bash tools/kube/build.sh --bin-dir  only print the cache directory
#   bash tools/kube/build.sh --containerd-dir  only print containerd's cache directory
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

bin_dir="${VIRTOPS_CACHE:-$HOME/.cache/virtops}/kube/${K8S_VERSION}-${ETCD_VERSION}"
containerd_dir="${VIRTOPS_CACHE:-$HOME/.cache/virtops}/containerd/${CONTAINERD_VERSION}"
if [[ "${1:-}" == "--bin-dir" ]]; then echo "$bin_dir"; exit 0; fi
if [[ "${1:-}" == "--containerd-dir" ]]; then echo "$containerd_dir"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: Go is not installed (need go >= 1.26 on PATH)" >&2; exit 3; }
# -mod=mod: tolerate a go.sum that lacks a line for this platform; GOTOOLCHAIN=local: never
# download another Go toolchain. -p: parallel compile jobs (the machines are shared).
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
jobs="${VIRTOPS_BUILD_JOBS:-2}"
mkdir -p "$bin_dir" "$containerd_dir"
# One build at a time per cache dir (a test run and `virtops testenv up` may race).
exec 9>"$bin_dir/.lock"
flock 9

log() { printf '[kube-build %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

build() { # name module-dir ldflags [package [out-dir [tags]]]
  local name="$1" dir="$2" ldflags="$3" pkg="${4:-.}" out="${5:-$bin_dir}/$1" tags="${6:-}"
  if [[ -x "$out" ]]; then log "$name: present ($out)"; return; fi
  local start=$SECONDS
  log "$name: downloading modules ..."
  (cd "$dir" && go mod download)
  local total; total="$(cd "$dir" && go list -tags "$tags" -deps "$pkg" | wc -l)"
  log "$name: compiling up to $total packages with -p $jobs (cold: tens of minutes) ..."
  # Build to a temporary name and rename, so an interrupted build never leaves a binary
  # that looks complete. `go build -v` names each package as it compiles: count them for
  # progress, pass every other line (compiler errors) through untouched.
  (cd "$dir" && go build -v -p "$jobs" -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out.partial" "$pkg" 2>&1) |
    awk -v name="$name" -v total="$total" '
      /^[^ \t:]+$/ { n++; if (n % 100 == 0) { printf "[kube-build %s] %s: %d/%d packages compiled (%s)\n", strftime("%H:%M:%S"), name, n, total, $0; fflush() } next }
      { print; fflush() }'
  mv "$out.partial" "$out"
  log "$name: built in $((SECONDS - start)) s → $out"
}

major="${K8S_VERSION#v}"; major="${major%%.*}"
minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"

log "control plane $K8S_VERSION + etcd $ETCD_VERSION → $bin_dir"
build etcd "$here/etcd" "-s -w"
build kube "$here/kube" "$kube_ldflags"
# The real node (virtops testenv up --kubelet): kubelet from the same module as the control
# plane; containerd without the snapshotters that need cgo or kernel features we do not use.
build kubelet "$here/kube" "$kube_ldflags" k8s.io/kubernetes/cmd/kubelet
ctrd=github.com/containerd/containerd/v2
ctrd_ldflags="-s -w -X $ctrd/version.Version=$CONTAINERD_VERSION -X $ctrd/version.Revision=virtops"
ctrd_tags="no_btrfs no_devmapper no_zfs no_aufs"
build containerd "$here/containerd" "$ctrd_ldflags" "$ctrd/cmd/containerd" "$containerd_dir" "$ctrd_tags"
build containerd-shim-runc-v2 "$here/containerd" "$ctrd_ldflags" "$ctrd/cmd/containerd-shim-runc-v2" "$containerd_dir" "$ctrd_tags"
log "done"
echo "$bin_dir"
