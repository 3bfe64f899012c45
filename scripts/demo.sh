#!/usr/bin/env bash
# The main job, end to end on this host: git push → a running VM.
#
#   scripts/demo.sh            set up the host, build the test guest, start a local registry,
#                              pack virtops (npm pack) and install the tarball as a user would,
#                              create a VMs-as-code repo with `virtops init` (pushed to a bare
#                              origin in the demo dir), start `virtops up` on it, push, and show
#                              the VM reach Running with its serial console output. Leaves
#                              everything running.
#   scripts/demo.sh --down     stop the demo VM(s), `virtops up` and the registry; remove the
#                              demo dir. Nothing is left behind (domains, disks, sockets, processes).
#
# Environment:
#   VIRTOPS_DEMO_DIR        demo dir (default /var/lib/virtops-demo; keep it short: unix
#                           socket paths under it are limited to 107 bytes)
#   VIRTOPS_DEMO_EMULATION  auto | kvm | tcg (default auto: TCG when KVM is unusable)
#
# The CLI talks to `virtops up` over its unix socket, $DEMO/state/up.sock (mode 0600, root's
# only): VIRTOPS_STATE_DIR tells the CLI where it is. No TCP port is opened.
#
# The registry listens on 127.0.0.1:5000 because the example VM (vms/test-guest.ts) boots
# the image localhost:5000/virtops/test-guest:latest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO="${VIRTOPS_DEMO_DIR:-/var/lib/virtops-demo}"
EMULATION="${VIRTOPS_DEMO_EMULATION:-auto}"
REGISTRY=localhost:5000
IMAGE="$REGISTRY/virtops/test-guest:latest"
# Every `virtops` call below finds the API socket through this (no --server needed).
export VIRTOPS_STATE_DIR="$DEMO/state"
SOCK="$VIRTOPS_STATE_DIR/up.sock"
VM=test-guest

# virtops as a user has it: installed from the packed tarball (step 5); before that, and for
# --down of a demo that never got that far, this checkout's CLI.
VIRTOPS_BIN="$DEMO/virtops/node_modules/.bin/virtops"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
virtops() { if [ -x "$VIRTOPS_BIN" ]; then "$VIRTOPS_BIN" "$@"; else node "$ROOT/cli/bin.js" "$@"; fi; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# GET URL succeeds (node is the one tool every step needs anyway; curl may be missing).
http_ok() { node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1"; }
# The up API answers /healthz on its unix socket.
api_ok() { node -e 'require("http").get({socketPath:process.argv[1],path:"/healthz"},r=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))' "$SOCK"; }

# Processes whose command line mentions the demo dir (launchers, their monitors).
demo_launchers() { pgrep -f -- "--kubevirt-share-dir $DEMO/" || true; }

down() {
  say "tearing down the demo in $DEMO"
  if alive "$DEMO/up.pid"; then
    # Stop every VM through virtops itself (recorded as overrides), so each launcher shuts its
    # guest down within the grace period and removes domain, disks and sockets.
    for vm in $(virtops get vms -o json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const v of JSON.parse(s).vms)console.log(`${v.namespace}/${v.name}`)})'); do
      virtops stop "$vm" || true
    done
    for _ in $(seq 1 240); do [ -z "$(demo_launchers)" ] && break; sleep 0.5; done
    kill -TERM "$(cat "$DEMO/up.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$DEMO/up.pid" || break; sleep 0.1; done
  fi
  # Whatever is left (virtops up was not running): SIGTERM makes each launcher monitor stop
  # its guest and clean up after itself.
  local left; left="$(demo_launchers)"
  if [ -n "$left" ]; then
    say "stopping launchers left running: $(echo $left)"
    kill -TERM $left 2>/dev/null || true
    for _ in $(seq 1 240); do [ -z "$(demo_launchers)" ] && break; sleep 0.5; done
    left="$(demo_launchers)"; [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
  fi
  if alive "$DEMO/registry.pid"; then kill -TERM "$(cat "$DEMO/registry.pid")"; sleep 0.5; fi
  for d in $(virsh -c qemu:///system list --all --name 2>/dev/null | grep -x "default_$VM" || true); do
    die "domain $d still exists; it was not created by this demo's launchers or their cleanup failed: see $DEMO/state/pods/*/launcher.log"
  done
  rm -rf "$DEMO"
  say "done: demo dir removed, no demo processes or domains left"
}

if [ "${1:-}" = "--down" ]; then down; exit 0; fi
[ $# -eq 0 ] || die "unknown argument '$1': use no argument to start the demo, or --down to tear it down"
[ "$(id -u)" -eq 0 ] || die "run as root: the demo installs Debian packages and uses qemu:///system"
if alive "$DEMO/up.pid"; then
  say "the demo is already running (virtops up pid $(cat "$DEMO/up.pid")); showing it"
  virtops get vms
  exit 0
fi

say "1/7 host: Debian packages, libvirtd (scripts/setup-host.sh)"
bash "$ROOT/scripts/setup-host.sh"
command -v git >/dev/null || { apt-get install -y -qq --no-install-recommends git >/dev/null; }

say "2/7 npm dependencies"
if [ ! -d "$ROOT/node_modules" ]; then (cd "$ROOT" && npm ci --no-audit --no-fund); else echo "node_modules present"; fi

say "3/7 test guest (busybox initramfs + Debian cloud kernel)"
GUEST_DIR="$(bash "$ROOT/scripts/build-test-guest.sh" | tail -n1)"
OCI="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).ociKernelBoot)' "$GUEST_DIR/info.json")"

mkdir -p "$DEMO"
say "4/7 local registry on $REGISTRY with $IMAGE"
if http_ok "http://$REGISTRY/v2/"; then
  alive "$DEMO/registry.pid" || die "something else serves $REGISTRY; stop it (the example VM pulls from localhost:5000)"
else
  mkdir -p "$DEMO/registry"
  cat > "$DEMO/registry/config.yml" <<EOF
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $DEMO/registry/data } }
http: { addr: "127.0.0.1:5000" }
EOF
  setsid docker-registry serve "$DEMO/registry/config.yml" >"$DEMO/registry.log" 2>&1 < /dev/null &
  echo $! > "$DEMO/registry.pid"
  for _ in $(seq 1 100); do http_ok "http://$REGISTRY/v2/" && break; sleep 0.1; done
  http_ok "http://$REGISTRY/v2/" || die "docker-registry did not start; see $DEMO/registry.log"
fi
skopeo copy --quiet --dest-tls-verify=false "oci:$OCI:latest" "docker://$IMAGE"

say "5/7 virtops as a package (npm pack → $DEMO/virtops), and a VMs-as-code repository made by virtops init: $DEMO/work"
WORK="$DEMO/work"
if [ ! -x "$VIRTOPS_BIN" ]; then
  TARBALL="$DEMO/$(cd "$ROOT" && npm pack --pack-destination "$DEMO" --loglevel=warn | tail -n1)"
  mkdir -p "$DEMO/virtops"
  printf '{ "name": "virtops-demo-tools", "private": true }\n' > "$DEMO/virtops/package.json"
  (cd "$DEMO/virtops" && npm install --prefer-offline --no-audit --no-fund --loglevel=error "$TARBALL")
fi
if [ ! -d "$DEMO/repo.git" ]; then
  TARBALL="$(ls "$DEMO"/virtops-*.tgz | tail -n1)"
  git init -q --bare -b main "$DEMO/repo.git"
  rm -rf "$WORK"
  virtops init "$WORK" --name demo-vms --virtops-from "$TARBALL"
  # The example VM: the tiny test guest (this checkout's vms/test-guest.ts, importing the DSL
  # from the package as any user's VM does) instead of the scaffold's hello VM.
  rm "$WORK/vms/hello.ts"
  sed "s#from '../dsl/index.js'#from 'virtops/dsl'#" "$ROOT/vms/test-guest.ts" > "$WORK/vms/test-guest.ts"
  cat > "$WORK/vms/app.ts" <<'EOF'
// The demo's charts: one VM, the tiny test guest, booted from localhost:5000.
import { VirtopsApp, type VirtopsAppProps } from 'virtops/synth';
import { TestGuest } from './test-guest.js';

export function buildApp(props?: VirtopsAppProps): VirtopsApp {
  const app = new VirtopsApp(props);
  new TestGuest(app);
  return app;
}
EOF
  # What a user does: install (writes the lockfile), test (writes the snapshot), synth.
  (cd "$WORK" && npm install --prefer-offline --no-audit --no-fund --loglevel=error && npm test && npm run --silent synth)
  git -C "$WORK" add -A
  git -C "$WORK" -c user.name=demo -c user.email=demo@virtops commit -q -m "test-guest: a tiny VM, synthesized into dist/"
  git -C "$WORK" remote add origin "$DEMO/repo.git"
fi

say "6/7 virtops up (API on unix:$SOCK, state in $DEMO/state, log in $DEMO/up.log)"
setsid "$VIRTOPS_BIN" up --repo "$DEMO/repo.git" --state-dir "$DEMO/state" \
  --emulation "$EMULATION" --interval 30s --insecure-registry "$REGISTRY" >"$DEMO/up.log" 2>&1 < /dev/null &
echo $! > "$DEMO/up.pid"
for _ in $(seq 1 300); do api_ok && break; alive "$DEMO/up.pid" || break; sleep 0.1; done
api_ok || { tail -n 20 "$DEMO/up.log" >&2; die "virtops up did not start; see $DEMO/up.log"; }

say "7/7 git push → running VM"
started=$(date +%s.%N)
git -C "$WORK" push -q -u origin main
last=""
for _ in $(seq 1 1200); do
  line="$(virtops get vms 2>/dev/null | awk -v vm="$VM" '$1==vm' || true)"
  if [ -n "$line" ] && [ "$line" != "$last" ]; then
    printf '  [%5.1fs] %s\n' "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$line"; last="$line"
  fi
  case "$line" in *" Running "*) break ;; esac
  alive "$DEMO/up.pid" || { tail -n 20 "$DEMO/up.log" >&2; die "virtops up exited; see $DEMO/up.log"; }
  sleep 0.25
done
case "$last" in *" Running "*) ;; *) die "the VM did not reach Running; see VIRTOPS_STATE_DIR=$VIRTOPS_STATE_DIR virtops describe vm $VM and $DEMO/up.log" ;; esac

serial="$(virtops describe vm "$VM" | awk '/Serial log:/{print $3}')"
say "console output of $VM (the guest's serial port, $serial)"
for _ in $(seq 1 600); do grep -q VIRTOPS-GUEST-READY "$serial" 2>/dev/null && break; sleep 0.25; done
grep -a 'VIRTOPS-' "$serial" | sed 's/^/  | /' || true
grep -q VIRTOPS-GUEST-READY "$serial" || die "the guest did not print VIRTOPS-GUEST-READY; see $serial"

virtops get vms
cat >&2 <<EOF

The VM runs from git. Try:
  export VIRTOPS_STATE_DIR=$VIRTOPS_STATE_DIR   # the CLI finds the API socket there (as root)
  export PATH=$DEMO/virtops/node_modules/.bin:\$PATH   # virtops, installed from the tarball
  virtops describe vm $VM
  virtops console $VM                         # serial console, Ctrl-] detaches
  cd $WORK && \$EDITOR vms/test-guest.ts && npm run synth && npx vitest run -u && git commit -am change && git push
  scripts/demo.sh --down                      # stop everything and remove $DEMO
EOF
