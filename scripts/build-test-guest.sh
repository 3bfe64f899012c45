#!/usr/bin/env bash
# Builds virtops' test guest: a tiny Linux (Debian's cloud kernel + a busybox initramfs)
# that boots in seconds under TCG and reports what it sees on its serial console, so tests
# can check the domain they built (disks, cloud-init, shutdown) against a real guest.
#
# Output (in ${VIRTOPS_CACHE:-$HOME/.cache/virtops}/test-guest/, never committed):
#   vmlinuz, initrd.img      direct kernel boot (kernel args: "console=ttyS0")
#   disk.qcow2               a tiny disk whose first sector reads "virtops-disk-label: test-disk"
#   oci/kernel-boot          OCI layout, tag "latest": /boot/vmlinuz, /boot/initrd.img
#                            (KubeVirt kernelBoot.container style)
#   oci/disk                 OCI layout, tag "latest": /disk/disk.qcow2 (KubeVirt containerDisk)
#   info.json                the paths above + kernel version + build key
# The last line on stdout is the output directory.
#
# Serial protocol of the guest (one line each, on ttyS0 whatever the console= argument):
#   VIRTOPS-GUEST-BOOTED                    /init started
#   VIRTOPS-INSTANCE-ID <id>                cloud-init ISO found (instance-id from meta-data)
#   VIRTOPS-USERDATA <value>                one per user-data line "virtops-marker: <value>"
#   VIRTOPS-DISKS vda=<bytes> vdb=<bytes>   virtio disks and their sizes
#   VIRTOPS-DISK-LABEL <dev> <label>        disks whose first line is "virtops-disk-label: <label>"
#   VIRTOPS-GUEST-READY                     idle; an ACPI power-button press now powers off
#   VIRTOPS-GUEST-SHUTDOWN                  power button pressed, powering off
#
# Idempotent: the build is keyed by kernel version + this script's hash and skipped when
# the cache already holds that key. Concurrent callers serialise on a lock file.
set -euo pipefail

CACHE="${VIRTOPS_CACHE:-$HOME/.cache/virtops}"
OUT="$CACHE/test-guest"
log() { printf '[build-test-guest] %s\n' "$*" >&2; }

# Modules the guest needs; their dependencies come from the kernel package's modules.dep.
# virtio (disks), ahci/ata_piix + sr_mod + isofs (cloud-init ISO on a SATA/IDE cdrom),
# button + evdev (ACPI power button as an input device, for acpid).
WANTED_MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk
  ahci ata_piix sr_mod cdrom isofs button evdev)

mkdir -p "$CACHE"
exec 9>"$CACHE/test-guest.lock"
flock 9

newest_kernel_package() {
  apt-cache pkgnames linux-image- 2>/dev/null | grep -E '^linux-image-[0-9][^ ]*-cloud-amd64$' | sort -V | tail -n1
}

pkg="$(newest_kernel_package || true)"
if [ -z "$pkg" ]; then
  log "no linux-image-*-cloud-amd64 in the apt lists; running apt-get update"
  apt-get update -qq >&2 || true
  pkg="$(newest_kernel_package || true)"
fi
if [ -z "$pkg" ]; then
  if [ -f "$OUT/info.json" ]; then
    log "apt has no cloud kernel; keeping the cached guest"
    echo "$OUT"; exit 0
  fi
  log "no linux-image-*-cloud-amd64 package available from apt"; exit 1
fi
kver="${pkg#linux-image-}"
script_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
key="$kver-$script_hash"

if [ -f "$OUT/key" ] && [ "$(cat "$OUT/key")" = "$key" ] && [ -f "$OUT/info.json" ]; then
  log "up to date ($key)"
  echo "$OUT"; exit 0
fi

log "building test guest for $pkg (key $key)"
work="$(mktemp -d "$CACHE/test-guest.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- kernel ------------------------------------------------------------------------
(cd "$work" && apt-get download "$pkg" >/dev/null 2>&1) || {
  log "apt-get download failed; running apt-get update and retrying"
  apt-get update -qq >&2
  (cd "$work" && apt-get download "$pkg" >&2)
}
dpkg -x "$work"/"$pkg"_*.deb "$work/kpkg"
moddir="$work/kpkg/lib/modules/$kver"
# The package ships modules but not modules.dep (depmod runs at install time): generate it
# from the package's own modules. Compressed modules are unpacked first so busybox's
# insmod in the guest needs no decompressor.
find "$moddir" -name '*.ko.xz' -print0 | xargs -0 -r xz -d
find "$moddir" -name '*.ko.zst' -print0 | xargs -0 -r -n1 sh -c 'zstd -q -d --rm "$0"'
busybox depmod -b "$work/kpkg" "$kver"

# Ordered insmod list: dependencies first, each module once; built-in modules skipped.
declare -A seen=()
ordered=()
resolve() {
  local name="$1" line path dep
  line="$(grep -E "(^|/)${name}\.ko:" "$moddir/modules.dep" || true)"
  if [ -z "$line" ]; then
    if grep -qE "(^|/)${name}\.ko$" "$moddir/modules.builtin"; then return 0; fi
    log "module $name is neither in modules.dep nor built in"; exit 1
  fi
  path="${line%%:*}"
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  for dep in ${line#*:}; do resolve "$(basename "$dep" .ko)"; done
  ordered+=("$path")
}
for m in "${WANTED_MODULES[@]}"; do resolve "$m"; done

# ---- initramfs ---------------------------------------------------------------------
root="$work/initramfs"
mkdir -p "$root"/{bin,dev,proc,sys,mnt,etc/acpi/PWRF,lib/modules}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
for path in "${ordered[@]}"; do
  install -D -m 0644 "$moddir/$path" "$root/lib/modules/$(basename "$path")"
  basename "$path" >>"$root/lib/modules/load-order"
done

cat >"$root/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

# Markers go to the first serial port whatever console= says, so they are always in the
# domain's serial log.
say() {
  if [ -c /dev/ttyS0 ]; then echo "$*" >/dev/ttyS0; else echo "$*" >/dev/console; fi
}
say VIRTOPS-GUEST-BOOTED

while read -r mod; do insmod "/lib/modules/$mod" 2>/dev/null || say "VIRTOPS-MODULE-FAILED $mod"; done </lib/modules/load-order

# Disk drivers probe asynchronously: wait (briefly) for a cloud-init ISO to show up.
find_cidata() {
  for label in cidata CIDATA config-2 CONFIG-2; do
    dev="$(findfs "LABEL=$label" 2>/dev/null)" && { echo "$dev"; return 0; }
  done
  return 1
}
i=0; dev=""
while [ $i -lt 30 ]; do
  dev="$(find_cidata)" && break
  i=$((i + 1)); sleep 0.1
done
if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /mnt 2>/dev/null; then
  if [ -f /mnt/meta-data ]; then
    id="$(sed -n 's/^instance-id:[[:space:]]*//p' /mnt/meta-data | head -n1)"
    ud=/mnt/user-data
  else
    id="$(sed -n 's/.*"uuid"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' /mnt/openstack/latest/meta_data.json 2>/dev/null | head -n1)"
    ud=/mnt/openstack/latest/user_data
  fi
  say "VIRTOPS-INSTANCE-ID $id"
  [ -f "$ud" ] && sed -n 's/^virtops-marker:[[:space:]]*//p' "$ud" | while read -r v; do say "VIRTOPS-USERDATA $v"; done
  umount /mnt
fi

disks=""
for d in /sys/block/vd*; do
  [ -e "$d" ] || continue
  n="${d##*/}"
  disks="$disks $n=$(( $(cat "$d/size") * 512 ))"
  label="$(head -c 512 "/dev/$n" 2>/dev/null | head -n1 | sed -n 's/^virtops-disk-label:[[:space:]]*//p')"
  [ -n "$label" ] && say "VIRTOPS-DISK-LABEL $n $label"
done
say "VIRTOPS-DISKS$disks"

# busybox acpid maps the power button (KEY_POWER on the ACPI button's input device) to
# ./PWRF/00000080 under its config dir.
acpid -c /etc/acpi -l /dev/null
say VIRTOPS-GUEST-READY
while :; do sleep 3600; done
INIT
chmod 0755 "$root/init"

cat >"$root/etc/acpi/PWRF/00000080" <<'PWR'
#!/bin/sh
if [ -c /dev/ttyS0 ]; then echo VIRTOPS-GUEST-SHUTDOWN >/dev/ttyS0; else echo VIRTOPS-GUEST-SHUTDOWN >/dev/console; fi
sync
poweroff -f
PWR
chmod 0755 "$root/etc/acpi/PWRF/00000080"

stage="$work/out"
mkdir -p "$stage"
cp "$work/kpkg/boot/vmlinuz-$kver" "$stage/vmlinuz"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --owner=0:0 --reproducible) | gzip -9 -n >"$stage/initrd.img"

# ---- tiny disk ---------------------------------------------------------------------
truncate -s 8M "$work/disk.raw"
printf 'virtops-disk-label: test-disk\n' | dd of="$work/disk.raw" conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$stage/disk.qcow2"

# ---- OCI images (hand-made layout: deterministic digests, no daemon) ---------------
# oci_image <layout-dir> <rootfs-dir>: one gzip layer, tag "latest".
oci_image() {
  local layout="$1" rootfs="$2" layer diff_id layer_digest config config_digest manifest manifest_digest
  mkdir -p "$layout/blobs/sha256"
  layer="$work/layer.tar"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$layer" .
  diff_id="$(sha256sum "$layer" | cut -d' ' -f1)"
  gzip -9 -n -c "$layer" >"$layer.gz"
  layer_digest="$(sha256sum "$layer.gz" | cut -d' ' -f1)"
  mv "$layer.gz" "$layout/blobs/sha256/$layer_digest"
  rm -f "$layer"
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]}}"
  config_digest="$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
  printf '%s' "$config" >"$layout/blobs/sha256/$config_digest"
  manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":${#config}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_digest\",\"size\":$(stat -c %s "$layout/blobs/sha256/$layer_digest")}]}"
  manifest_digest="$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"
  printf '%s' "$manifest" >"$layout/blobs/sha256/$manifest_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest_digest" "${#manifest}" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
}
mkdir -p "$work/kb/boot" "$work/cd/disk"
cp "$stage/vmlinuz" "$work/kb/boot/vmlinuz"
cp "$stage/initrd.img" "$work/kb/boot/initrd.img"
cp "$stage/disk.qcow2" "$work/cd/disk/disk.qcow2"
oci_image "$stage/oci/kernel-boot" "$work/kb"
oci_image "$stage/oci/disk" "$work/cd"

cat >"$stage/info.json" <<JSON
{
  "key": "$key",
  "kernelVersion": "$kver",
  "vmlinuz": "$OUT/vmlinuz",
  "initrd": "$OUT/initrd.img",
  "disk": "$OUT/disk.qcow2",
  "ociKernelBoot": "$OUT/oci/kernel-boot",
  "ociDisk": "$OUT/oci/disk",
  "kernelArgs": "console=ttyS0"
}
JSON
echo "$key" >"$stage/key"

rm -rf "$OUT"
mv "$stage" "$OUT"
log "built $OUT (initrd $(stat -c %s "$OUT/initrd.img") bytes, kernel $(stat -c %s "$OUT/vmlinuz") bytes)"
echo "$OUT"
