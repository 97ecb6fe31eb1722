#!/usr/bin/env bash
# The whole packaging check, in order:
#   1. build the amd64 and arm64 .debs of coldspray and coldspray-kiosk (tests/pkg/build-debs.sh),
#   2. lintian on all four: no error, no warning (infos are listed in the report),
#   3. piuparts install/purge of the amd64 .deb in a bookworm chroot,
#   4. the systemd install test under QEMU (tests/pkg/vm-test.sh),
#   5. power cuts on arm64 (tests/pkg/powercut.sh, bounded form: COLDSPRAY_POWERCUTS, default 5).
# COLDSPRAY_PKG_PLACEHOLDERS=1 passes --placeholders to build-debs.sh (feature branches).
# Tools: see tests/pkg/README.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
t0=$(date +%s)
args=()
[ "${COLDSPRAY_PKG_PLACEHOLDERS:-0}" = 1 ] && args+=(--placeholders)
rm -f target/debian/coldspray_*.deb target/debian/coldspray-kiosk_*.deb
bash tests/pkg/build-debs.sh "${args[@]}"
for deb in target/debian/coldspray_*_{amd64,arm64}.deb target/debian/coldspray-kiosk_*_{amd64,arm64}.deb; do
  echo "== lintian $(basename "$deb") ($(stat -c %s "$deb") bytes)"
  lintian --fail-on error,warning --display-info "$deb"
done
bash tests/pkg/piuparts.sh target/debian/coldspray_*_amd64.deb
bash tests/pkg/vm-test.sh target/debian/coldspray_*_amd64.deb
bash tests/pkg/powercut.sh --cuts "${COLDSPRAY_POWERCUTS:-5}" target/debian/coldspray_*_arm64.deb
echo "packaging check passed in $(( $(date +%s) - t0 )) s"
