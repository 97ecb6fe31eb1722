#!/usr/bin/env bash
# Prints the path of the cached Debian bookworm base system (debootstrap --variant=minbase
# with systemd, systemd-sysv, dbus, procps) as an uncompressed tarball, building it on the
# first run (about 70-140 s on amd64; arm64 runs debootstrap's second stage under
# qemu-user-static and takes several minutes). Used by vm-test.sh (as the VM's root),
# piuparts.sh (as the chroot's base, gzipped) and powercut.sh (arm64).
#
#   bash tests/pkg/base-rootfs.sh [amd64|arm64]      (default amd64)
#
# arm64 needs binfmt_misc with Debian's qemu-user-static + binfmt-support: this script mounts
# binfmt_misc and enables qemu-aarch64 when they are missing (root).
# Cache: $COLDSPRAY_VM_CACHE, default target/pkg-vm-cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${COLDSPRAY_VM_CACHE:-$root/target/pkg-vm-cache}"
arch="${1:-amd64}"
case "$arch" in
  amd64) base="$cache/bookworm-minbase-systemd.v2.tar" ;;
  arm64) base="$cache/bookworm-minbase-systemd-arm64.v2.tar" ;;
  *) echo "base-rootfs: unknown arch $arch (amd64 or arm64)" >&2; exit 2 ;;
esac
mkdir -p "$cache"
if [ ! -f "$base" ]; then
  command -v debootstrap >/dev/null || { echo "base-rootfs: debootstrap missing" >&2; exit 2; }
  foreign=()
  if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    # The second stage runs the target's binaries: binfmt_misc must hand them to QEMU.
    command -v update-binfmts >/dev/null && [ -x /usr/bin/qemu-aarch64-static ] \
      || { echo "base-rootfs: apt-get install qemu-user-static binfmt-support" >&2; exit 2; }
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
      || { echo "base-rootfs: qemu-aarch64 is not registered with binfmt_misc" >&2; exit 2; }
    foreign=(--arch="$arch")
  fi
  # The mirror the host's apt already uses, if it is written in deb822 form.
  mirror="${COLDSPRAY_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
  rm -rf "$cache/rootfs-$arch.tmp"
  t0=$(date +%s)
  echo "== debootstrap bookworm $arch (cached after this run)" >&2
  debootstrap "${foreign[@]}" --variant=minbase --include=systemd,systemd-sysv,dbus,procps \
    bookworm "$cache/rootfs-$arch.tmp" ${mirror:+"$mirror"} >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$cache/rootfs-$arch.tmp"/var/cache/apt/archives/*.deb
  tar -C "$cache/rootfs-$arch.tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$cache/rootfs-$arch.tmp"
  echo "debootstrap took $(( $(date +%s) - t0 )) s" >&2
fi
echo "$base"
