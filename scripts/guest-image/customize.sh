#!/bin/sh
# mmdebstrap --customize-hook for the Debian guest's root filesystem ($1). Makes one image
# safe to boot as many VMs (no host keys, no machine-id baked in), tells cloud-init where
# to look, and writes the boot files GRUB reads. Its content is part of the cache key.
# Environment from build.sh: ROOT_UUID (the ext4 filesystem's UUID).
set -eu
root="$1"
: "${ROOT_UUID:?build.sh sets ROOT_UUID}"

# Per-instance identity is made at first boot: cloud-init's ssh module generates host keys,
# systemd a machine-id, cloud-init the hostname (from meta-data).
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo localhost >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

cat >"$root/etc/fstab" <<FSTAB
UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1
FSTAB

# ifupdown reads this; cloud-init's eni renderer writes interfaces.d/50-cloud-init.
if [ ! -s "$root/etc/network/interfaces" ]; then
  mkdir -p "$root/etc/network/interfaces.d"
  printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n' >"$root/etc/network/interfaces"
fi

# Only the datasources KubeVirt offers (then None): no probing of EC2/GCE/... metadata
# URLs, each of which would cost seconds to time out under TCG. C.UTF-8 needs no
# locale-gen run at first boot.
cat >"$root/etc/cloud/cloud.cfg.d/90-virtops.cfg" <<'CFG'
# Written by virtops scripts/guest-image/customize.sh
datasource_list: [NoCloud, ConfigDrive, None]
locale: C.UTF-8
CFG

# Boot files: stable names for GRUB (the kernel package's versioned files stay).
kernel="$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n1)"
initrd="initrd.img-${kernel#vmlinuz-}"
[ -f "$root/boot/$initrd" ] || { echo "customize.sh: no /boot/$initrd (did update-initramfs run?)" >&2; exit 1; }
ln -sfn "$kernel" "$root/boot/vmlinuz"
ln -sfn "$initrd" "$root/boot/initrd.img"
mkdir -p "$root/boot/grub"
cat >"$root/boot/grub/grub.cfg" <<GRUB
# Written by virtops scripts/guest-image/customize.sh. The serial console carries GRUB,
# the kernel's log and a login prompt (KubeVirt's serial console is ttyS0).
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry 'Debian GNU/Linux 12 (virtops guest)' {
  linux /boot/vmlinuz root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8
  initrd /boot/initrd.img
}
GRUB

# Nothing a guest needs at run time.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/cache/debconf/*-old "$root"/var/log/apt "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log
