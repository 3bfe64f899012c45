#!/usr/bin/env bash
# `npm run guest-image`: builds a small Debian 12 (bookworm) guest from Debian packages and
# publishes it as a KubeVirt containerDisk (OCI layout, the disk at /disk/debian-12.qcow2).
# Nothing is downloaded but Debian packages: mmdebstrap makes the root filesystem,
# `mkfs.ext4 -d` puts it on a partition of a raw disk (no mount, no loop device) and
# GRUB's BIOS boot code is written into the same file (no grub-install).
#
# The guest: Debian's cloud kernel, systemd, cloud-init (datasources NoCloud, ConfigDrive,
# None), openssh-server, qemu-guest-agent, sudo, ifupdown + isc-dhcp-client (the renderer
# cloud-init 22.4 picks first on Debian, and the DHCP client its package already depends
# on). BIOS boot, one ext4 partition; console on tty0 and ttyS0 (serial). No users and no
# passwords: cloud-init creates them from user-data. Host keys and machine-id are made at
# first boot.
#
# Output: ${VIRTOPS_CACHE:-~/.cache/virtops}/guest-image/<key>/
#   debian-12.qcow2   the disk (qcow2, compressed)
#   oci/              OCI layout, tag "latest": /disk/debian-12.qcow2 (KubeVirt containerDisk)
#   info.json         paths, sizes (root filesystem, qcow2, containerDisk layer), kernel version, key
# key = this script's and customize.sh's hashes + the package list + mmdebstrap's version.
# A cached key is never rebuilt (the mirror's daily updates do not change it; delete the
# directory to rebuild). Concurrent callers serialise on a lock. Logs go to stderr; the
# last line on stdout is the output directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${VIRTOPS_CACHE:-$HOME/.cache/virtops}/guest-image"
MIRROR="${VIRTOPS_IMAGE_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${VIRTOPS_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
DISK_NAME=debian-12.qcow2
DISK_SIZE_MIB=2048   # virtual size; unused space costs nothing in the qcow2
PART_START=2048      # sectors: 1 MiB before the partition holds GRUB's core image

PACKAGES=(linux-image-cloud-amd64 systemd systemd-sysv udev dbus cloud-init python3
  openssh-server qemu-guest-agent sudo ifupdown isc-dhcp-client iproute2 netbase e2fsprogs
  iperf3)  # bench:guest: host ↔ guest throughput
# Documentation, man pages and translations are not installed (copyright files stay).
DPKG_OPTS=(path-exclude=/usr/share/doc/* path-include=/usr/share/doc/*/copyright
  path-exclude=/usr/share/man/* path-exclude=/usr/share/info/* path-exclude=/usr/share/locale/*
  path-include=/usr/share/locale/locale.alias path-exclude=/usr/share/lintian/*)

log() { printf '[guest-image] %s\n' "$*" >&2; }

for tool in mmdebstrap mkfs.ext4 sfdisk grub-mkimage qemu-img; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run 'npm run setup-host' (bash scripts/setup-host.sh)"; exit 1; }
done
[ -f /usr/lib/grub/i386-pc/boot.img ] || { log "/usr/lib/grub/i386-pc is missing (package grub-pc-bin): run 'npm run setup-host'"; exit 1; }

key="$( {
  sha256sum "${BASH_SOURCE[0]}" "$HERE/customize.sh" | cut -d' ' -f1
  printf '%s\n' "${PACKAGES[@]}" "${DPKG_OPTS[@]}"
  mmdebstrap --version
} | sha256sum | cut -c1-16)"
OUT="$CACHE/$key"

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9

if [ -f "$OUT/info.json" ]; then
  log "cached ($key)"
  echo "$OUT"; exit 0
fi

[ "$(id -u)" -eq 0 ] || { log "building needs root (mmdebstrap --mode=root, file ownership in the image)"; exit 1; }
# Mounts mmdebstrap may have left in a killed build's root filesystem go first, so that
# removing a build directory can never reach the host's /proc, /sys or /dev.
clean_build_dir() {
  findmnt -rn -o TARGET | grep -F "$1/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$1"
}
for stale in "$CACHE"/build.*; do [ -e "$stale" ] && clean_build_dir "$stale"; done   # from a killed build (we hold the lock)
log "building Debian 12 guest (key $key)"
started=$SECONDS
work="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'clean_build_dir "$work"' EXIT

# A UUID derived from the key: same inputs, same fstab/grub.cfg.
ROOT_UUID="$(printf '%s' "$key" | sha256sum | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/')"
export ROOT_UUID

# ---- root filesystem ---------------------------------------------------------------
rootfs="$work/rootfs"
log "mmdebstrap (${#PACKAGES[@]} packages and their dependencies)"
mmdebstrap --mode=root --variant=minbase --format=directory \
  "${DPKG_OPTS[@]/#/--dpkgopt=}" \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --customize-hook="sh '$HERE/customize.sh' \"\$1\"" \
  bookworm "$rootfs" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY_MIRROR bookworm-security main" >&2
kver="$(basename "$(readlink "$rootfs/boot/vmlinuz")")"; kver="${kver#vmlinuz-}"

# ---- raw disk: MBR, one bootable ext4 partition, GRUB in the gap before it --------------
raw="$work/disk.raw"
truncate -s "${DISK_SIZE_MIB}M" "$raw"
printf 'label: dos\nstart=%d, type=83, bootable\n' "$PART_START" | sfdisk --quiet "$raw" >&2
part_bytes=$(( DISK_SIZE_MIB * 1024 * 1024 - PART_START * 512 ))
# GRUB 2.06 cannot read metadata_csum_seed; orphan_file is new enough to leave out too.
mkfs.ext4 -q -F -L root -U "$ROOT_UUID" -O ^metadata_csum_seed,^orphan_file \
  -E offset=$((PART_START * 512)),lazy_itable_init=1,lazy_journal_init=1 \
  -d "$rootfs" "$raw" "$((part_bytes / 1024))k" >&2
rootfs_bytes=$(du -sb "$rootfs" | cut -f1)
rm -rf "$rootfs"

# GRUB for BIOS without grub-bios-setup: boot.img's code (not the partition table) in the
# MBR, core.img right after it; grub-mkimage already fills core.img's own block list, and
# boot.img's default says "core.img starts at sector 1".
grub-mkimage -O i386-pc -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 normal linux serial terminal configfile
core_sectors=$(( ($(stat -c %s "$work/core.img") + 511) / 512 ))
(( core_sectors < PART_START - 1 )) || { log "core.img ($core_sectors sectors) does not fit before the partition"; exit 1; }
dd if=/usr/lib/grub/i386-pc/boot.img of="$raw" bs=440 count=1 conv=notrunc status=none
# The drive-number check (a 2-byte jmp at 0x66) is skipped for hard disks, as
# grub-bios-setup does: some BIOSes pass a wrong boot drive.
printf '\x90\x90' | dd of="$raw" bs=1 seek=$((0x66)) conv=notrunc status=none
dd if="$work/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none

stage="$work/out"
mkdir -p "$stage"
qemu-img convert -q -c -f raw -O qcow2 "$raw" "$stage/$DISK_NAME"
rm -f "$raw"

# ---- containerDisk: OCI layout by hand (as scripts/build-test-guest.sh), one layer ------
# /disk/<name>.qcow2 owned by 107:107 (the qemu user of KubeVirt's virt-launcher).
layout="$stage/oci"
mkdir -p "$layout/blobs/sha256" "$work/cd/disk"
cp "$stage/$DISK_NAME" "$work/cd/disk/$DISK_NAME"
chmod 0644 "$work/cd/disk/$DISK_NAME"
layer="$work/layer.tar"
tar --sort=name --mtime=@0 --owner=107 --group=107 --numeric-owner -C "$work/cd" -cf "$layer" .
diff_id="$(sha256sum "$layer" | cut -d' ' -f1)"
gzip -1 -n -c "$layer" >"$layer.gz"   # the qcow2 is compressed already: fast gzip suffices
layer_digest="$(sha256sum "$layer.gz" | cut -d' ' -f1)"
layer_size=$(stat -c %s "$layer.gz")
mv "$layer.gz" "$layout/blobs/sha256/$layer_digest"
rm -f "$layer"; rm -rf "$work/cd"
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]}}"
config_digest="$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
printf '%s' "$config" >"$layout/blobs/sha256/$config_digest"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":${#config}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_digest\",\"size\":$layer_size}]}"
manifest_digest="$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"
printf '%s' "$manifest" >"$layout/blobs/sha256/$manifest_digest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest_digest" "${#manifest}" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

qcow2_bytes=$(stat -c %s "$stage/$DISK_NAME")
cat >"$stage/info.json" <<JSON
{
  "key": "$key",
  "kernelVersion": "$kver",
  "disk": "$OUT/$DISK_NAME",
  "diskPath": "/disk/$DISK_NAME",
  "ociDisk": "$OUT/oci",
  "qcow2Bytes": $qcow2_bytes,
  "virtualBytes": $((DISK_SIZE_MIB * 1024 * 1024)),
  "containerDiskBytes": $layer_size,
  "rootfsBytes": $rootfs_bytes,
  "rootUuid": "$ROOT_UUID",
  "packages": [$(printf '"%s",' "${PACKAGES[@]}" | sed 's/,$//')],
  "buildSeconds": $((SECONDS - started))
}
JSON

mv "$stage" "$OUT"
# Older builds are superseded: keep only this key.
for old in "$CACHE"/*/; do
  [ "${old%/}" = "$OUT" ] || [ ! -f "$old/info.json" ] || rm -rf "$old"
done
log "built $OUT in $((SECONDS - started)) s: root filesystem $rootfs_bytes bytes, qcow2 $qcow2_bytes bytes, containerDisk layer $layer_size bytes (kernel $kver)"
echo "$OUT"
