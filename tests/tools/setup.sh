#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine (run as root).
# Idempotent; every tool comes from Debian's archive, rustup or crates.io.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

export DEBIAN_FRONTEND=noninteractive
packages=(
  # D-Bus tests: a real dbus-daemon, busctl, gdbus, a second uid, test users
  dbus systemd libglib2.0-bin util-linux passwd
  # the kiosk in a real X window (tests/kiosk/screenshots.sh): Xvfb, xwd, xwd -> PNG
  xvfb x11-apps netpbm
  # real-kernel VM tests (tests/vm): QEMU, cross compiler, kernel module build
  qemu-system-x86 qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  cpio gzip xz-utils bc make gcc-12 libelf-dev
  # packaging (tests/pkg): lintian, piuparts, debootstrap, man pages
  lintian piuparts debootstrap dpkg-dev man-db
  # arm64 root file system (debootstrap's second stage under binfmt_misc) and the arm64
  # power-cut VM (tests/pkg/powercut.sh): qemu-user, depmod/modprobe, mkfs.ext4 -d
  qemu-user-static binfmt-support kmod e2fsprogs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl aarch64-unknown-linux-gnu >/dev/null
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb
# promtool, prometheus, node_exporter, alertmanager and amtool from Debian's packages, unpacked (not installed: the
# packages would start servers on all interfaces).
bash "$here/fetch-prometheus.sh" "$root/target/prometheus-tools"
