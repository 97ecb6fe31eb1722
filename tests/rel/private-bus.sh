# Sourced by tests/rel/bench-all.sh and tests/rel/idle.sh: start_private_bus DIR starts a
# dbus-daemon for the current user listening on DIR/bus.sock, sets BPID (its pid) and ADDR
# (its address) and returns once the socket exists.
start_private_bus() {
  local dir=$1
  cat >"$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=$dir/bus.sock</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/><allow send_destination="*"/><allow receive_type="*"/></policy></busconfig>
CONF
  dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile >/dev/null 2>&1 &
  BPID=$!
  ADDR="unix:path=$dir/bus.sock"
  for _ in $(seq 100); do [ -S "$dir/bus.sock" ] && return 0; sleep 0.05; done
  echo "private dbus-daemon did not start in $dir" >&2
  return 1
}
