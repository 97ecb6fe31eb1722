#!/usr/bin/env bash
# End-to-end run of the real kiosk binary in a real X window (Xvfb) against the real daemon on
# the simulated unit, on a private D-Bus bus: one screenshot per screen at 800x480 and
# 1280x800 into docs/screenshots/, plus the daemon going away and coming back (the kiosk must
# say so, show no value, and reconnect by itself). Needs xvfb, x11-apps (xwd), netpbm and
# dbus (tests/tools/setup.sh installs them).
#
#   tests/kiosk/screenshots.sh            # debug build, screenshots into docs/screenshots
#   OUT=/tmp/shots tests/kiosk/screenshots.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/docs/screenshots}
profile=${PROFILE:-debug}
cd "$root"
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p coldsprayd -p coldspray-kiosk --bins
bin=$root/target/$profile
mkdir -p "$out"

work=$(mktemp -d /tmp/coldspray-kiosk-shots.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A private bus (session-bus semantics: the test runs the daemon and the kiosk as one user).
dbus-daemon --session --nofork --nopidfile --address="unix:path=$work/bus.sock" \
  --print-address=1 >"$work/bus.addr" 2>"$work/bus.log" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/bus.addr" ] && break; sleep 0.1; done
address=$(head -1 "$work/bus.addr")
[ -n "$address" ] || { echo "dbus-daemon printed no address" >&2; exit 1; }
export COLDSPRAY_BUS_ADDRESS=$address

mkdir -p "$work/state"
cat >"$work/coldspray.toml" <<TOML
[unit]
backend = "sim"
state_dir = "$work/state"

[sim]
speed = 1.0
# Start near the 4 °C setpoint: the precool is not what the screenshots show, and a restart
# (the sim does not keep its water temperature) is ready again within seconds.
initial_reservoir_c = 4.3

[dbus]
address = "$address"

[metrics]
enabled = false
TOML
daemon_pid=
start_daemon() {
  # Real time, so a session's curve is drawn at its pace.
  "$bin/coldsprayd" --config "$work/coldspray.toml" --sim 2>>"$work/coldsprayd.log" &
  daemon_pid=$!
  pids+=("$daemon_pid")
}
ctl() { "$bin/coldsprayctl" --address "$address" "$@"; }
state() { ctl --json status | sed -n 's/.*"State":"\([a-z]*\)".*/\1/p'; }
wait_state() {
  for _ in $(seq "${2:-600}"); do [ "$(state 2>/dev/null)" = "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for state $1 (now: $(state 2>/dev/null || echo none))" >&2
  tail -20 "$work/coldsprayd.log" >&2
  exit 1
}

# One X display per size, each on a display number the server picks free (-displayfd): no
# fixed number that another run or another user could hold.
for size in 800x480 1280x800; do
  Xvfb -displayfd 3 -screen 0 "${size}x24" -nolisten tcp 3>"$work/display-$size" \
    >"$work/xvfb-$size.log" 2>&1 &
  pids+=($!)
done
for size in 800x480 1280x800; do
  for _ in $(seq 100); do [ -s "$work/display-$size" ] && break; sleep 0.1; done
  [ -s "$work/display-$size" ] || { echo "Xvfb $size did not start" >&2; cat "$work/xvfb-$size.log" >&2; exit 1; }
done
display_for() { echo ":$(head -1 "$work/display-$1")"; }

# shot SIZE NAME: a PNG of the whole display.
shot() {
  local pnm=$work/shot.pnm colours
  xwd -root -silent -display "$(display_for "$1")" | xwdtopnm 2>/dev/null >"$pnm"
  # A blank or single-colour screen means the kiosk drew nothing.
  colours=$(ppmhist -noheader "$pnm" | wc -l)
  [ "$colours" -gt 20 ] || { echo "$2 at $1: only $colours colours on screen" >&2; exit 1; }
  pnmtopng <"$pnm" >"$out/$2-$1.png"
  echo "  $out/$2-$1.png ($colours colours)"
}
# kiosk SIZE SCREEN [ARGS]: runs the kiosk full-screen on that display; prints its pid.
kiosk() {
  local size=$1 screen=$2; shift 2
  DISPLAY=$(display_for "$size") "$bin/coldspray-kiosk" --screen "$screen" \
    --width "${size%x*}" --height "${size#*x}" --fullscreen "$@" >>"$work/kiosk.log" 2>&1 &
  echo $!
}
# show SIZE SCREEN NAME [WAIT]: starts the kiosk on SCREEN, waits, takes NAME, ends it.
show() {
  local k; k=$(kiosk "$1" "$2"); pids+=("$k")
  sleep "${4:-4}"
  kill -0 "$k" || { echo "kiosk exited:" >&2; tail -20 "$work/kiosk.log" >&2; exit 1; }
  shot "$1" "$3"
  kill "$k"; wait "$k" 2>/dev/null || true
}

start_daemon
wait_state ready

for size in 800x480 1280x800; do
  echo "$size:"
  show "$size" home home
  # A session with its curve: the kiosk watches it from the start.
  k=$(kiosk "$size" session); pids+=("$k")
  sleep 3
  ctl sim laser 2 >/dev/null
  ctl start pico >/dev/null
  sleep 8
  shot "$size" session
  kill "$k"; wait "$k" 2>/dev/null || true
  ctl stop >/dev/null 2>&1 || true
  wait_state ready
  show "$size" history history 5
  show "$size" protocols protocols
  show "$size" service maintenance
  ctl sim fault water_low >/dev/null
  ctl sim fault sensor_silent skin >/dev/null
  sleep 4
  show "$size" alarms alarms
  ctl sim clear-all >/dev/null
  ctl ack >/dev/null
  wait_state ready
done

# The daemon goes away and comes back: the kiosk says so, then reconnects by itself.
size=800x480
k=$(kiosk "$size" home); pids+=("$k")
sleep 4
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
sleep 2
shot "$size" daemon-gone
start_daemon
wait_state ready
sleep 2
shot "$size" reconnected
kill -0 "$k" || { echo "kiosk exited while the daemon was away" >&2; exit 1; }
kill "$k"; wait "$k" 2>/dev/null || true
echo "screenshots in $out"
