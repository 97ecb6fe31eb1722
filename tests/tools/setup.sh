#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine (run as root).
# Idempotent; every tool the tests use comes from Debian's archive or crates.io.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
need=()
command -v dbus-daemon >/dev/null || need+=(dbus)
command -v busctl >/dev/null || need+=(systemd)
command -v gdbus >/dev/null || need+=(libglib2.0-bin)
command -v setpriv >/dev/null || need+=(util-linux)
command -v useradd >/dev/null || need+=(passwd)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
