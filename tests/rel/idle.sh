#!/usr/bin/env bash
# Idle cost of the daemon on the simulated unit: starts BIN (default the release coldsprayd)
# with `--sim`-equivalent configuration on a private dbus-daemon, waits until Unit.Ready is
# true, then samples /proc for IDLE_SECS (default 60) seconds and prints
#   IDLE cpu_pct=… daemon_cpu_pct=… twin_cpu_pct=… ctxsw_per_s=… daemon_ctxsw_per_s=… threads=… daemon_threads=…
#   IDLE thread NAME cpu_pct=… ctxsw_per_s=…      (one line per thread)
# "daemon" leaves out the simulated unit's twin thread (`coldspray-sim`), which stands for the
# hardware and does not exist on a unit. CPU is utime+stime in % of one core; context
# switches are voluntary+nonvoluntary summed over /proc/PID/task/*/status (each is a wake-up).
# Usage: bash tests/rel/idle.sh [BIN]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-$PWD/target/release/coldsprayd}
SECS=${IDLE_SECS:-60}
TMP=$(mktemp -d)
DPID= BPID=
trap '[ -n "$DPID" ] && kill "$DPID" 2>/dev/null; [ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"' EXIT
. tests/rel/private-bus.sh
start_private_bus "$TMP" || exit 1
mkdir -p "$TMP/state"
printf '[unit]\nbackend = "sim"\nstate_dir = "%s/state"\n\n[sim]\nspeed = 1.0\ninitial_reservoir_c = 4.0\n\n[dbus]\naddress = "%s"\n\n[metrics]\nlisten = "127.0.0.1:%d"\n' "$TMP" "$ADDR" $((20000 + RANDOM % 40000)) >"$TMP/c.toml"
"$BIN" --config "$TMP/c.toml" 2>"$TMP/d.log" & DPID=$!
ready=
for _ in $(seq 1200); do
  if busctl --address="$ADDR" get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
      org.coldspray.ColdSpray1.Unit Ready 2>/dev/null | grep -q true; then ready=1; break; fi
  kill -0 "$DPID" 2>/dev/null || break
  sleep 0.25
done
[ -n "$ready" ] || { echo "IDLE FAILED: the unit did not reach ready" >&2; tail -n 20 "$TMP/d.log" >&2; exit 1; }
sleep 2
T=$(getconf CLK_TCK)
# One line per thread: tid name ticks switches
sample() {
  for t in /proc/"$DPID"/task/*; do
    local tid=${t##*/} name ticks sw
    name=$(tr ' ' '_' <"$t/comm" 2>/dev/null) || continue
    ticks=$(awk '{print $14+$15}' "$t/stat" 2>/dev/null) || continue
    sw=$(awk '/ctxt_switches/{s+=$2} END{print s+0}' "$t/status" 2>/dev/null) || continue
    echo "$tid $name $ticks $sw"
  done
}
p0=$(awk '{print $14+$15}' /proc/"$DPID"/stat)
sample >"$TMP/s0"
sleep "$SECS"
sample >"$TMP/s1"
p1=$(awk '{print $14+$15}' /proc/"$DPID"/stat)
STATE=$(busctl --address="$ADDR" get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
  org.coldspray.ColdSpray1.Unit State 2>/dev/null | awk '{print $2}')
# Per thread, over the threads alive at both ends (a thread born or gone mid-way counts from 0).
awk -v T="$T" -v S="$SECS" -v P0="$p0" -v P1="$p1" -v state="$STATE" '
  FNR == NR { t0[$1] = $3; w0[$1] = $4; next }
  { name[$1] = $2; dt = $3 - t0[$1]; dw = $4 - w0[$1]; tick[$1] = dt; sw[$1] = dw
    all_sw += dw; n++
    if ($2 != "coldspray-sim") { d_tick += dt; d_sw += dw; dn++ } else { s_tick += dt } }
  END {
    printf "IDLE state=%s secs=%d cpu_pct=%.2f daemon_cpu_pct=%.2f twin_cpu_pct=%.2f ctxsw_per_s=%.1f daemon_ctxsw_per_s=%.1f threads=%d daemon_threads=%d\n",
      state, S, (P1 - P0) / T / S * 100, d_tick / T / S * 100, s_tick / T / S * 100, all_sw / S, d_sw / S, n, dn
    for (t in name)
      printf "IDLE thread %-16s cpu_pct=%.2f ctxsw_per_s=%.1f\n", name[t], tick[t] / T / S * 100, sw[t] / S | "sort"
  }' "$TMP/s0" "$TMP/s1"
