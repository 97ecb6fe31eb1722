#!/usr/bin/env bash
# piuparts install/purge test of a coldspray .deb in a bookworm chroot built from the cached
# base system (tests/pkg/base-rootfs.sh). piuparts installs the .deb and its dependencies,
# purges it and checks that nothing is left behind and no other package's file changed.
#   bash tests/pkg/piuparts.sh target/debian/coldspray_*_amd64.deb
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
deb="${1:?usage: piuparts.sh path/to/coldspray_*_amd64.deb}"
command -v piuparts >/dev/null || { echo "piuparts.sh: piuparts missing" >&2; exit 2; }
base="$(bash "$root/tests/pkg/base-rootfs.sh")"
tgz="${base%.tar}.tgz"
[ -f "$tgz" ] || gzip -1 -c "$base" > "$tgz"
mirror="${COLDSPRAY_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
log="$root/target/piuparts.log"
t0=$(date +%s)
# --no-upgrade-test: there is no earlier coldspray in any archive to upgrade from (the VM
# test covers an in-place upgrade with a locally edited conffile).
if timeout 900 piuparts --basetgz="$tgz" --distribution=bookworm ${mirror:+--mirror="$mirror"} \
     --no-upgrade-test --log-file="$log" "$deb" >/dev/null 2>&1; then
  echo "piuparts: PASS ($(( $(date +%s) - t0 )) s, log $log)"
else
  grep -E "ERROR|FAIL" "$log" | tail -20
  echo "piuparts: FAIL (log $log)"; exit 1
fi
