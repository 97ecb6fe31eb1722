#!/usr/bin/env bash
# Prints the path of the cached Debian bookworm base system (debootstrap --variant=minbase
# with systemd, systemd-sysv, dbus, procps) as an uncompressed tarball, building it on the
# first run (about 70-140 s). Used by vm-test.sh (as the VM's root) and piuparts.sh (as the
# chroot's base, gzipped). Cache: $COLDSPRAY_VM_CACHE, default target/pkg-vm-cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${COLDSPRAY_VM_CACHE:-$root/target/pkg-vm-cache}"
base="$cache/bookworm-minbase-systemd.v2.tar"
mkdir -p "$cache"
if [ ! -f "$base" ]; then
  command -v debootstrap >/dev/null || { echo "base-rootfs: debootstrap missing" >&2; exit 2; }
  # The mirror the host's apt already uses, if it is written in deb822 form.
  mirror="${COLDSPRAY_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
  rm -rf "$cache/rootfs.tmp"
  t0=$(date +%s)
  echo "== debootstrap bookworm (cached after this run)" >&2
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps \
    bookworm "$cache/rootfs.tmp" ${mirror:+"$mirror"} >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$cache/rootfs.tmp"/var/cache/apt/archives/*.deb
  tar -C "$cache/rootfs.tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$cache/rootfs.tmp"
  echo "debootstrap took $(( $(date +%s) - t0 )) s" >&2
fi
echo "$base"
