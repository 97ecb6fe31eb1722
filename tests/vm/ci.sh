#!/usr/bin/env bash
# The VM stage of .ci/run: builds the release coldsprayd for x86_64 and aarch64 (unmodified,
# as shipped) and runs each in its real-kernel VM (tests/vm/run.sh). Exits non-zero on any
# failure. COLDSPRAY_VM_STANDIN=1 runs the harness with the probe alone (no daemon).
# Needs the packages and rustup targets listed in tests/vm/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T0=$(date +%s)
rc=0
for ARCH in x86_64 aarch64; do
  BIN=
  if [ "${COLDSPRAY_VM_STANDIN:-0}" != 1 ]; then
    if [ "$ARCH" = x86_64 ]; then
      (cd "$ROOT" && cargo build -q --release -p coldsprayd --bin coldsprayd)
      BIN=$ROOT/target/release/coldsprayd
    else
      (cd "$ROOT" && CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        cargo build -q --release -p coldsprayd --bin coldsprayd --target aarch64-unknown-linux-gnu)
      BIN=$ROOT/target/aarch64-unknown-linux-gnu/release/coldsprayd
    fi
  fi
  "$HERE/run.sh" "$ARCH" ${BIN:+"$BIN"} || rc=1
done
echo "[vm-ci] VM stage took $(( $(date +%s) - T0 )) s, rc=$rc"
exit $rc
