#!/usr/bin/env bash
# Builds the OCI images the testenv's real kubelet node needs, locally (no image may come
# from outside these machines):
#   pause     the Pod sandbox image containerd runs first in every Pod: a tiny static C
#             program that reaps children, exits on TERM/INT and otherwise pause()s
#   busybox   a tiny image for tests of the node (busybox-static + applet links)
# packed with umoci into OCI layouts (tag "latest") in
#   ${VIRTOPS_CACHE:-$HOME/.cache/virtops}/node-images/{pause,busybox}  (+ key)
# The node pushes them to its own registry with skopeo when it starts.
# Idempotent: keyed by this script's hash, the C compiler and busybox versions; skipped when
# the cache holds that key. Concurrent callers serialise on a lock file.
# The last line on stdout is the output directory.
set -euo pipefail

CACHE="${VIRTOPS_CACHE:-$HOME/.cache/virtops}"
OUT="$CACHE/node-images"
log() { printf '[build-pause-image] %s\n' "$*" >&2; }

for tool in gcc umoci busybox; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run bash scripts/setup-host.sh"; exit 3; }
done
mkdir -p "$CACHE"
exec 9>"$CACHE/node-images.lock"
flock 9

key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)-$(gcc -dumpfullversion)-$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)"
if [ -f "$OUT/key" ] && [ "$(cat "$OUT/key")" = "$key" ]; then
  log "up to date ($key)"
  echo "$OUT"; exit 0
fi

log "building pause and busybox images (key $key)"
work="$(mktemp -d "$CACHE/node-images.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat >"$work/pause.c" <<'C'
/* The Pod sandbox's process: holds the Pod's namespaces open and reaps zombies (it is pid 1
 * of the Pod when the Pod shares its pid namespace). Exits 0 on SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) { puts("pause (virtops)"); return 0; }
  if (getpid() != 1) fputs("pause: warning: not pid 1\n", stderr);
  struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP };
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 || sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
C
gcc -static -Os -s -o "$work/pause" "$work/pause.c"

# image <name> <rootfs-filler> <umoci config args...>: one layer, tag "latest".
image() {
  local name="$1" fill="$2"; shift 2
  local layout="$work/out/$name" bundle="$work/bundle-$name"
  umoci init --layout "$layout"
  umoci new --image "$layout:latest"
  umoci unpack --image "$layout:latest" "$bundle" >/dev/null
  "$fill" "$bundle/rootfs"
  umoci repack --image "$layout:latest" "$bundle"
  umoci config --image "$layout:latest" "$@"
  umoci gc --layout "$layout"
}
fill_pause() { install -m 0755 "$work/pause" "$1/pause"; }
fill_busybox() {
  install -D -m 0755 "$(command -v busybox)" "$1/bin/busybox"
  local applet
  for applet in $(busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$1/bin/$applet"; done
  mkdir -p "$1/tmp" "$1/etc"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"
}
mkdir -p "$work/out"
image pause fill_pause --config.entrypoint /pause --config.user 65535:65535
image busybox fill_busybox --config.cmd /bin/sh --config.env PATH=/bin

rm -rf "$OUT.new"
mv "$work/out" "$OUT.new"
echo "$key" >"$OUT.new/key"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
log "done → $OUT"
echo "$OUT"
