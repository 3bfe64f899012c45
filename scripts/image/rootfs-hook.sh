#!/bin/sh
# mmdebstrap --customize-hook for the virtops image's root filesystem ($1): drops what
# nothing in the image runs and configures libvirt the way scripts/setup-host.sh does on a
# host without libvirt-daemon-system. Its content is part of the rootfs cache key.
set -eu
root="$1"

# containernetworking-plugins come with skopeo (via containers-common); qemu-system-i386 and
# the microvm build with qemu-system-x86; perl's modules with git (the git commands virtops
# runs, clone/fetch/rev-parse/cat-file/ls-tree, are C; perl-base stays, dpkg scripts use it).
rm -rf "$root/usr/lib/cni" \
  "$root/usr/libexec/qemu-system-i386" "$root/usr/bin/qemu-system-i386" "$root/usr/bin/qemu-system-x86_64-microvm" \
  "$root/usr/share/iso-codes" "$root/usr/share/gnupg" \
  "$root/usr/share/perl" "$root/usr/lib/x86_64-linux-gnu/perl" "$root"/usr/lib/x86_64-linux-gnu/libperl.so.5.36* \
  "$root"/var/cache/debconf/*-old "$root"/var/log/apt "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin

# Groups and the user libvirtd looks up before it reads qemu.conf (Debian's libvirt is built
# with qemu user libvirt-qemu); QEMU itself runs as root inside the container.
add_group() { grep -q "^$1:" "$root/etc/group" || echo "$1:x:$2:" >> "$root/etc/group"; }
add_group kvm 990
add_group libvirt 991
add_group libvirt-qemu 64055
grep -q '^libvirt-qemu:' "$root/etc/passwd" ||
  echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin' >> "$root/etc/passwd"
mkdir -p "$root/etc/libvirt" "$root/var/log/libvirt/qemu" "$root/var/lib/libvirt/qemu" "$root/run/libvirt"
cat > "$root/etc/libvirt/qemu.conf" <<'CONF'
# Written by virtops scripts/image/rootfs-hook.sh: QEMU runs as the container's root; the
# container (its cgroup, its limits) is the boundary, as in KubeVirt's virt-launcher.
user = "root"
group = "root"
dynamic_ownership = 1
remember_owner = 0
# No cgroups of libvirt's own: QEMU stays in the container's cgroup, so the launcher Pod's
# memory limit bounds the guest (and a container's /sys/fs/cgroup is read-only anyway).
cgroup_controllers = [ ]
CONF
