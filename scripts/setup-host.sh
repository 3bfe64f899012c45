#!/usr/bin/env bash
# Prepares this host for virtops: Debian packages for libvirt/QEMU and image tooling,
# the users, groups and config libvirtd needs when no systemd set it up, and a running
# libvirtd. Idempotent: every step checks before it acts, so it is cheap to re-run.
set -euo pipefail

PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  libvirt-dev busybox-static xorriso genisoimage skopeo umoci docker-registry cpio ovmf libxml2-utils build-essential python3
  bubblewrap util-linux  # bwrap, prlimit, setpriv: the sandbox of the opt-in synth verifier (--verify-synth)
  runc containernetworking-plugins iptables)  # the testenv's real kubelet node (containerd is built from Go modules)
PACKAGES+=(mmdebstrap binutils)  # npm run image: the root filesystem from Debian packages; strip
PACKAGES+=(grub-pc-bin fdisk e2fsprogs)  # npm run guest-image: BIOS GRUB core image, partition table, ext4 filled from a directory
PACKAGES+=(openssl)  # the testenv: kubelet-client CA and node serving certificates for the agents' console endpoint
PACKAGES+=(chromium)  # the dashboard's browser tests and bench:dashboard (playwright-core drives /usr/bin/chromium)
PACKAGES+=(iperf3)  # bench:guest: host ↔ guest throughput through the port forward and user networking

log() { printf '[setup-host] %s\n' "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Without libvirt-daemon-system nothing creates these; libvirtd looks them up before it
# even reads qemu.conf.
for g in kvm libvirt libvirt-qemu; do getent group "$g" >/dev/null || groupadd -r "$g"; done
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
mkdir -p /etc/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/lib/libvirt/images /run/libvirt
if [ ! -s /etc/libvirt/qemu.conf ]; then
  log "writing /etc/libvirt/qemu.conf"
  cat > /etc/libvirt/qemu.conf <<'CONF'
# Written by virtops scripts/setup-host.sh (no libvirt-daemon-system on this host).
user = "root"
group = "root"
dynamic_ownership = 1
remember_owner = 0
CONF
fi

# This host's daemons, by their pid files: a libvirtd that a test runs in its own sandbox
# (another pid and mount namespace, its own /run) is not this host's and must not count.
running() { local pid; pid=$(cat "/run/$1.pid" 2>/dev/null) && [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; }
running virtlogd || { log "starting virtlogd"; virtlogd -d; }
if ! running libvirtd; then
  log "starting libvirtd"
  rm -f /run/libvirt/libvirt-sock
  libvirtd -d
fi
for _ in $(seq 1 100); do
  [ -S /run/libvirt/libvirt-sock ] && virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 0.1
done
log "libvirtd did not become ready (no /run/libvirt/libvirt-sock); see /var/log/libvirt/libvirtd.log"
exit 1
