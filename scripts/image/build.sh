#!/usr/bin/env bash
# `npm run image -- [flags]`: builds the virtops OCI image (scripts/image/build.ts; --help for
# the flags). Holds a lock on the image cache so concurrent builds (tests, users) take turns:
# the second finds the first's result cached.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${VIRTOPS_CACHE:-$HOME/.cache/virtops}/image"
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9
exec node --import tsx scripts/image/build.ts "$@"
