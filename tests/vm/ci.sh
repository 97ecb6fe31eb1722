#!/usr/bin/env bash
# The VM stage of .ci/run. For x86_64 and aarch64:
#   1. vm_halcheck (tests crate): the Linux backend against gpio-sim + i2c-stub, proving the
#      VM's [hardware] config, polarity and sensor presets;
#   2. the unmodified release coldsprayd with the probe: safe start, pedal, laser-end
#      auto-start and E-stop latency over 200 edges each, water low (skipped with
#      COLDSPRAY_VM_DAEMON=0; COLDSPRAY_VM_STANDIN=1 runs the probe's stand-in checks instead).
# Both architectures boot at once (each QEMU TCG guest uses one host core); their logs are
# printed one after the other. Exits non-zero on any failure. Needs the packages and targets
# listed in tests/vm/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
T0=$(date +%s)
OUT=$ROOT/target/vm-ci
mkdir -p "$OUT"

bins=(--bin vm_halcheck)
daemon=0
if [ "${COLDSPRAY_VM_DAEMON:-1}" != 0 ] && [ "${COLDSPRAY_VM_STANDIN:-0}" != 1 ]; then daemon=1; fi
for ARCH in x86_64 aarch64; do
  if [ "$ARCH" = x86_64 ]; then TGT=(); else TGT=(--target aarch64-unknown-linux-gnu); fi
  (cd "$ROOT" && cargo build -q --release -p coldspray-e2e "${bins[@]}" "${TGT[@]}")
  if [ $daemon = 1 ]; then
    (cd "$ROOT" && cargo build -q --release -p coldsprayd --bin coldsprayd --bin coldsprayctl "${TGT[@]}")
  fi
done
# Kernel packages, module builds and the probe, one architecture after the other: the two
# share the download and source directories of the cache.
"$HERE/build.sh" x86_64
"$HERE/build.sh" aarch64
echo "[vm-ci] binaries and VM images built in $(( $(date +%s) - T0 )) s"

one_arch() { # one_arch ARCH: halcheck, then the daemon phase; returns non-zero on failure
  local ARCH=$1 DIR rc=0
  if [ "$ARCH" = x86_64 ]; then DIR=$ROOT/target/release
  else DIR=$ROOT/target/aarch64-unknown-linux-gnu/release; fi
  # From here on each architecture touches only its own cache subdirectory.
  "$HERE/run.sh" "$ARCH" "$DIR/vm_halcheck" || rc=1
  if [ $daemon = 1 ]; then
    COLDSPRAY_VM_TIMEOUT=${COLDSPRAY_VM_TIMEOUT:-900} "$HERE/run.sh" "$ARCH" "$DIR/coldsprayd" || rc=1
  elif [ "${COLDSPRAY_VM_STANDIN:-0}" = 1 ]; then
    "$HERE/run.sh" "$ARCH" || rc=1
  else
    echo "[vm-ci] $ARCH: daemon phase skipped (COLDSPRAY_VM_DAEMON=0)"
  fi
  echo "[vm-ci] $ARCH finished after $(( $(date +%s) - T0 )) s, rc=$rc"
  return $rc
}

one_arch x86_64 >"$OUT/x86_64.log" 2>&1 & P1=$!
one_arch aarch64 >"$OUT/aarch64.log" 2>&1 & P2=$!
rc=0
wait $P1 || rc=1
wait $P2 || rc=1
cat "$OUT/x86_64.log" "$OUT/aarch64.log"
echo
echo "[vm-ci] latency summary (probe edge -> output line, 1 vCPU under TCG; goals are for the Pi):"
grep -h -E 'VMPROBE (LATENCY|GOAL)|VMPROBE INFO .*(pedal|E-stop runs)' "$OUT/x86_64.log" "$OUT/aarch64.log" || true
echo "[vm-ci] VM stage took $(( $(date +%s) - T0 )) s, rc=$rc"
exit $rc
