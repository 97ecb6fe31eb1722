#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test of the workspace.
# Run from anywhere inside the checkout. Tools it needs: see tests/tools/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo build (binaries used by the end-to-end tests)"
cargo build --workspace --bins --quiet
echo "== cargo test"
export COLDSPRAY_PROMETHEUS_DIR=${COLDSPRAY_PROMETHEUS_DIR:-$PWD/target/prometheus-tools}
rm -rf target/debug/rel-summary
cargo test --workspace --quiet 2>&1 | tee target/test-output.txt
echo "== kiosk: the real binary in a real X window (Xvfb) against coldsprayd --sim"
OUT=target/kiosk-screenshots bash tests/kiosk/screenshots.sh
echo "== reliability suite, bounded form (full form: bash tests/rel/full.sh)"
for f in target/debug/rel-summary/*.txt; do
  [ -s "$f" ] || continue
  echo "-- $(basename "$f" .txt)"; cat "$f"
done
echo "== summary"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f > "target/test-summary.txt" }' target/test-output.txt
cat target/test-summary.txt
