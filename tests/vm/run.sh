#!/usr/bin/env bash
# Boot Debian's bookworm kernel under QEMU TCG with gpio-sim + i2c-stub, run the probe (and the
# daemon if BINARY is given), capture the serial console, and judge the markers.
#
# Usage: tests/vm/run.sh ARCH [BINARY]
#   ARCH   x86_64 | aarch64
#   BINARY the unmodified release coldsprayd for ARCH (omit for the stand-in run)
# Env: COLDSPRAY_VM_CACHE (build cache dir), COLDSPRAY_VM_TIMEOUT (seconds, default 240),
#      COLDSPRAY_STRICT_LATENCY=1 (latency goals fail the run instead of being reported),
#      COLDSPRAY_VM_READY_S (how long the probe waits for lamp_ready, default 90),
#      COLDSPRAY_VM_EDGES (laser edges, default 200), COLDSPRAY_VM_ESTOP_EDGES (E-stop edges,
#      each acknowledged over D-Bus, default 205, at least 200 samples needed). These reach the
#      probe via the kernel command line.
# Exit status 0 only if the VM printed `VMINIT DONE rc=0` and the probe's RESULT has 0 failed.
set -euo pipefail

ARCH=${1:?usage: run.sh x86_64|aarch64 [BINARY]}
BINARY=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${COLDSPRAY_VM_CACHE:-$HERE/work}
TIMEOUT=${COLDSPRAY_VM_TIMEOUT:-240}
# Kernel command-line words of the form NAME=VALUE that the kernel does not know become
# environment variables of /init, hence of the probe.
STRICT="COLDSPRAY_STRICT_LATENCY=${COLDSPRAY_STRICT_LATENCY:-0} $(env | grep -oE '^(COLDSPRAY_VM_(READY_S|EDGES|ESTOP_EDGES|FLOW_HZ|HOLD_MS)=[0-9]+|COLDSPRAY_LOG=[a-z_:,=]+)' | tr '\n' ' ' || true)"

"$HERE/build.sh" "$ARCH" ${BINARY:+"$BINARY"}
CACHE=$(cd "$CACHE" && pwd)
A=$CACHE/$ARCH
LOG=$A/console.log

case "$ARCH" in
  x86_64)
    QEMU=(qemu-system-x86_64 -M q35 -cpu max -smp "${COLDSPRAY_VM_SMP:-1}" -m 512M
          -append "console=ttyS0 panic=-1 loglevel=4 $STRICT") ;;
  aarch64)
    QEMU=(qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "${COLDSPRAY_VM_SMP:-1}" -m 512M
          -append "console=ttyAMA0 panic=-1 loglevel=4 $STRICT") ;;
esac
QEMU+=(-accel tcg -nographic -no-reboot -nodefaults -serial stdio -monitor none
       -kernel "$A/vmlinuz" -initrd "$A/initramfs.cpio.gz")

echo "[vm-run $ARCH] booting (timeout ${TIMEOUT}s), console -> $LOG"
T0=$(date +%s.%N)
set +e
timeout --kill-after=10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$LOG" 2>&1
QRC=$?
set -e
T1=$(date +%s.%N)
WALL=$(echo "$T1 - $T0" | bc)

# Serial output has CRs and firmware escape codes: keep only the marker lines, from the marker on.
tr -d '\r' <"$LOG" | grep -aoE '(VMINIT|VMPROBE|VMDAEMON) .*' >"$LOG.txt" || true
sed "s/^/[vm $ARCH] /" "$LOG.txt"
BOOT=$(sed -n 's/^VMINIT boot .*uptime=\([0-9.]*\)s.*/\1/p' "$LOG.txt" | head -1)
READY=$(sed -n 's/^VMINIT ready uptime=\([0-9.]*\)s.*/\1/p' "$LOG.txt" | head -1)
echo "[vm-run $ARCH] qemu exit=$QRC wall=${WALL}s kernel-to-init=${BOOT:-?}s init-ready=${READY:-?}s"

fail() { echo "[vm-run $ARCH] FAIL: $*"; echo "[vm-run $ARCH] last console lines:"; tr -d '\r' <"$LOG" | tail -n 40; exit 1; }
[ "$QRC" -ne 124 ] && [ "$QRC" -ne 137 ] || fail "QEMU timed out after ${TIMEOUT}s"
grep -q '^VMINIT DONE' "$LOG.txt" || fail "no VMINIT DONE marker"
RESULT=$(grep '^VMPROBE RESULT:' "$LOG.txt" | tail -1)
[ -n "$RESULT" ] || fail "no probe RESULT line"
grep -q '^VMINIT DONE rc=0' "$LOG.txt" || fail "VM reported failure: $RESULT"
echo "$RESULT" | grep -q ' 0 failed' || fail "$RESULT"
echo "[vm-run $ARCH] PASS $RESULT"
