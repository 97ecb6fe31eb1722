#!/bin/sh
# Runs INSIDE the test VM (systemd as PID 1), started by coldspray-vmtest.service after
# coldsprayd.service. Prints "COLDSPRAY-VM:" markers to the serial console, then powers off.
# The host side (tests/pkg/vm-test.sh) reads the markers.
exec >/dev/ttyS0 2>&1
fails=0
say() { echo "COLDSPRAY-VM: $*"; }
ok() { say "PASS $*"; }
bad() { say "FAIL $*"; fails=$((fails + 1)); }
prop() { systemctl show -P "$1" coldsprayd.service; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Waits (up to $2 s) for coldsprayd to be active/running with a main PID other than $1;
# prints the milliseconds it took.
wait_restarted() {
    old=$1 limit=$(( $2 * 1000 )) t0=$(now_ms)
    while :; do
        pid=$(prop MainPID); st="$(prop ActiveState)/$(prop SubState)"
        if [ "$pid" != 0 ] && [ "$pid" != "$old" ] && [ "$st" = active/running ]; then
            echo $(( $(now_ms) - t0 )); return 0
        fi
        [ $(( $(now_ms) - t0 )) -gt "$limit" ] && { echo -1; return 1; }
        sleep 0.05
    done
}

say "BEGIN $(uname -r)"
# Wait for the first start (the unit starts in parallel with this one).
i=0
while [ "$(prop ActiveState)" != active ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done

# 1. The service is active, and how long from kernel start to READY=1 (Type=notify: the unit
#    becomes active when READY=1 arrives).
if [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; then ok "service active"; else bad "service not active: $(prop ActiveState)/$(prop SubState) $(prop Result)"; fi
ready_us=$(prop ActiveEnterTimestampMonotonic)
start_us=$(prop ExecMainStartTimestampMonotonic)
say "FIGURE boot_to_ready_ms=$(( ready_us / 1000 )) exec_to_ready_ms=$(( (ready_us - start_us) / 1000 ))"
say "INFO status: $(prop StatusText)"
say "INFO user: $(ps -o user= -p "$(prop MainPID)" 2>/dev/null || stat -c %U /proc/$(prop MainPID))"
[ "$(stat -c %U /proc/"$(prop MainPID)")" = _coldspray ] && ok "runs as _coldspray" || bad "not running as _coldspray"
[ "$(stat -c %U:%a /var/lib/coldspray)" = _coldspray:750 ] && ok "state dir _coldspray 0750" || bad "state dir: $(stat -c %U:%a /var/lib/coldspray)"
[ -d /var/lib/coldspray/log ] && ok "treatment log in /var/lib/coldspray/log" || bad "no /var/lib/coldspray/log"

# 2. The D-Bus name, once the D-Bus branch ships a policy that names it.
policy=/usr/share/dbus-1/system.d/org.coldspray.ColdSpray1.conf
if grep -q org.coldspray.ColdSpray1 "$policy" 2>/dev/null; then
    if busctl --system status org.coldspray.ColdSpray1 >/dev/null 2>&1; then ok "busctl sees org.coldspray.ColdSpray1"
    else bad "org.coldspray.ColdSpray1 not on the system bus"; fi
else
    say "SKIP busctl: $policy does not name org.coldspray.ColdSpray1 (D-Bus branch not merged)"
fi

safeoffs() { journalctl -q -o cat -u coldsprayd.service | grep -c "safe-off"; }

# 3. SIGKILL: ExecStopPost= runs, Restart= brings it back and it is ready again.
s0=$(safeoffs); pid=$(prop MainPID); n0=$(prop NRestarts)
systemctl kill -s SIGKILL --kill-whom=main coldsprayd.service
ms=$(wait_restarted "$pid" 30) && ok "restarted and ready after SIGKILL" || bad "not back after SIGKILL"
say "FIGURE sigkill_to_ready_ms=$ms"
[ "$(prop NRestarts)" -gt "$n0" ] && ok "NRestarts counted" || bad "NRestarts $(prop NRestarts)"
[ "$(safeoffs)" -gt "$s0" ] && ok "ExecStopPost safe-off ran after SIGKILL" || bad "no safe-off after SIGKILL"

# 4. SIGSTOP: the loop stops pinging, the watchdog (WatchdogSec=5s) aborts it, it restarts.
s0=$(safeoffs); pid=$(prop MainPID)
systemctl kill -s SIGSTOP --kill-whom=main coldsprayd.service
ms=$(wait_restarted "$pid" 40) && ok "watchdog killed the stopped daemon and it restarted" || bad "not back after SIGSTOP"
say "FIGURE sigstop_to_ready_ms=$ms (watchdog 5 s + restart)"
journalctl -q -o cat -u coldsprayd.service | grep -q "Watchdog timeout" && ok "journal: watchdog timeout" || bad "no watchdog timeout in the journal"
[ "$(safeoffs)" -gt "$s0" ] && ok "ExecStopPost safe-off ran after the watchdog" || bad "no safe-off after the watchdog"

# 5. Clean stop: STOPPING=1, exit 0, safe-off; then start again.
s0=$(safeoffs)
systemctl stop coldsprayd.service
[ "$(prop Result)" = success ] && ok "clean stop: Result=success" || bad "stop: Result=$(prop Result)"
[ "$(safeoffs)" -gt "$s0" ] && ok "ExecStopPost safe-off ran after stop" || bad "no safe-off after stop"
systemctl start coldsprayd.service && ok "started again" || bad "start failed"

# 6. A bad configuration: exit 78 from ExecStartPre=, no restart loop.
cp /etc/coldspray/sim.toml /tmp/sim.toml.good
echo 'no_such_key = 1' >> /etc/coldspray/sim.toml
n0=$(prop NRestarts)
systemctl restart coldsprayd.service 2>/dev/null
sleep 4
st="$(prop ActiveState) $(prop Result) restarts=$(( $(prop NRestarts) - n0 ))"
say "INFO bad config: $st"
journalctl -q -o cat -u coldsprayd.service | grep -m1 "configuration error" | sed 's/^/COLDSPRAY-VM: INFO /'
[ "$(prop ActiveState)" = failed ] && ok "bad config: unit failed, not running" || bad "bad config: $st"
# Known systemd behaviour: RestartPreventExitStatus= covers the main process only, so an
# ExecStartPre= failure may be retried (measured here: once), bounded by StartLimitBurst=.
# Outputs stay safe throughout (the daemon never runs). Bounded, not zero: assert that.
i=0; while [ "$(prop Result)" != start-limit-hit ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
say "FIGURE bad_config_restarts=$(( $(prop NRestarts) - n0 )) final=$(prop ActiveState)/$(prop Result)"
[ "$(prop ActiveState)" = failed ] && ok "bad config: retries bounded, unit failed" || bad "bad config: still $(prop ActiveState)"
cp /tmp/sim.toml.good /etc/coldspray/sim.toml
systemctl reset-failed coldsprayd.service; systemctl start coldsprayd.service

# 7. Operator vs unprivileged user, through the installed policy on the system bus.
useradd --system --no-create-home --groups coldspray-operator cs-operator 2>/dev/null || true
useradd --system --no-create-home cs-visitor 2>/dev/null || true
i=0
until busctl get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
        org.coldspray.ColdSpray1.Unit Ready 2>/dev/null | grep -q true || [ $i -gt 300 ]; do
    sleep 0.1; i=$((i + 1))
done
runuser -u cs-visitor -- coldsprayctl --system start co2_fractional >/tmp/visitor.out 2>&1
rc=$?
[ $rc = 4 ] && ok "unprivileged user refused (exit 4: $(head -c 120 /tmp/visitor.out))" || bad "unprivileged start: exit $rc $(head -c 200 /tmp/visitor.out)"
# Treatment data is health data (docs/REQUIREMENTS.md R2.5): an account outside the operator
# and admin groups may not even read the unit's properties; an operator may.
runuser -u cs-visitor -- coldsprayctl --system status >/tmp/visitor-status.out 2>&1
rc=$?
[ $rc = 4 ] && ok "unprivileged user may not read status (exit 4)" || bad "unprivileged status: exit $rc $(head -c 200 /tmp/visitor-status.out)"
runuser -u cs-operator -- coldsprayctl --system status >/dev/null 2>&1 && ok "operator may read status" || bad "operator status refused"
runuser -u cs-operator -- coldsprayctl --system start co2_fractional >/tmp/operator.out 2>&1
rc=$?
[ $rc = 0 ] && ok "operator started a session ($(head -c 80 /tmp/operator.out))" || bad "operator start: exit $rc $(head -c 200 /tmp/operator.out)"
runuser -u cs-operator -- coldsprayctl --system stop >/dev/null 2>&1 || true

# 8. Upgrade keeps a local config edit and restarts; purge keeps the log and the user.
echo '# local edit kept across upgrade' >> /etc/coldspray/coldspray.toml
pid=$(prop MainPID)
dpkg -i /root/coldspray.deb >/tmp/dpkg-up.log 2>&1 && ok "reinstall/upgrade" || { bad "upgrade failed"; cat /tmp/dpkg-up.log; }
grep -q 'local edit kept' /etc/coldspray/coldspray.toml && ok "upgrade kept the edited conffile" || bad "conffile edit lost"
ms=$(wait_restarted "$pid" 30) && ok "service restarted by the upgrade" || bad "not restarted by upgrade"
s0=$(safeoffs)
dpkg --purge coldspray >/tmp/dpkg-purge.log 2>&1 && ok "purge" || { bad "purge failed"; cat /tmp/dpkg-purge.log; }
[ "$(systemctl show -P ActiveState coldsprayd.service)" != active ] && ok "service stopped by remove" || bad "still active after purge"
[ "$(safeoffs)" -gt "$s0" ] && ok "safe-off ran on remove" || bad "no safe-off on remove"
[ ! -e /etc/coldspray/coldspray.toml ] && ok "purge removed the conffile" || bad "conffile left"
[ -d /var/lib/coldspray/log ] && ok "purge kept the treatment log" || bad "treatment log removed"
getent passwd _coldspray >/dev/null && ok "purge kept _coldspray" || bad "user removed"
[ ! -e /usr/bin/coldsprayd ] && ok "binaries removed" || bad "binary left"

say "RESULT $([ $fails = 0 ] && echo PASS || echo FAIL) failures=$fails"
systemctl poweroff --no-block
