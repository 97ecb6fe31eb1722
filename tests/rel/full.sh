#!/usr/bin/env bash
# The reliability suite in full form, one command: the fault matrix with every case, the
# 60 s D-Bus + scrape load, 120 SIGKILLs, the 24-simulated-hour soak and 20,000 fuzz cases
# per property; then the summary tables (parts timed alone: matrix 53 s, load 85 s,
# 120 kills ~2.5 min, 24 h soak ~3 min at speed 500; the fuzz cases take the rest).
# Usage: bash tests/rel/full.sh   (PROPTEST_CASES, COLDSPRAY_KILLS override the sizes)
set -euo pipefail
cd "$(dirname "$0")/../.."
export COLDSPRAY_FULL=1 PROPTEST_CASES=${PROPTEST_CASES:-20000}
cargo build --workspace --bins --quiet
rm -rf target/debug/rel-summary
rc=0
cargo test -p coldspray-e2e --test e2e -- rel_faults:: rel_load:: rel_kill:: rel_soak:: \
  rel_fuzz:: rel_fuzz_store:: rel_starve:: --nocapture --test-threads=1 || rc=$?
echo
echo "######## reliability suite, full form: summary"
for f in target/debug/rel-summary/*.txt; do
  [ -s "$f" ] || continue
  echo "== $(basename "$f" .txt)"; cat "$f"; echo
done
exit $rc
