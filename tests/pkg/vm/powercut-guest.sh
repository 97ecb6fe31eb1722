#!/bin/sh
# Runs INSIDE the arm64 power-cut VM on every boot (coldspray-powercut.service), as root, with
# systemd as PID 1 and the root file system (so /var/lib/coldspray, the treatment log) on ext4
# on a virtio disk. The host side is tests/pkg/powercut.sh. Everything goes to the serial
# console as "PC: ..." lines, which the host parses:
#
#   PC: BOOT n=N                       which boot this is (from the host's plan, /dev/vdb)
#   PC: INSTALLED arch=arm64 ...       the .deb was installed into this booted system (boot 0)
#   PC: FIGURE ready ...               kernel start -> READY=1 / -> D-Bus Ready=true
#   PC: CHECK id=I outcome=O ok|LOST|BAD   one record acknowledged before the previous cut
#   PC: CHECK RESULT ...               the sum of the checks
#   PC: PASS ... / PC: FAIL ...        the service-stop checks (boot 0)
#   PC: DRIVE BEGIN                    sessions run from here on; the host cuts at random
#   PC: ACK start I                    Start returned session id I over D-Bus
#   PC: SEND stop I / SEND estop I     a Stop / an E-stop press is about to be sent
#   PC: ACK end I O                    the daemon answered: session I ended with outcome O
#
# The host's plan is a text file on the raw disk /dev/vdb: "boot N", "mode drive|final", and
# one "expect ID OUTCOME[|OUTCOME]" line per session acknowledged in an earlier boot.
exec >/dev/ttyAMA0 2>&1
say() { echo "PC: $*"; }
ctl() { coldsprayctl --system --timeout 30 "$@"; }
prop() { systemctl show -P "$1" coldsprayd.service; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
rnd() { # rnd N: a random integer in 0..N-1
    echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1 ))
}
msleep() { sleep "$(( $1 / 1000 )).$(printf %03d $(( $1 % 1000 )))"; }

plan=/run/powercut.plan
tr -d '\000' </dev/vdb >"$plan" 2>/dev/null || : >"$plan"
boot=$(awk '$1 == "boot" {print $2}' "$plan")
mode=$(awk '$1 == "mode" {print $2}' "$plan")
say "BOOT n=${boot:-?} mode=${mode:-?} kernel=$(uname -r) machine=$(uname -m) uptime=$(uptime_s)"

# --- 1. boot 0: install the package into this booted system ------------------------------
if ! dpkg-query -W -f='${Status}' coldspray 2>/dev/null | grep -q "install ok installed"; then
    if dpkg -i /root/coldspray.deb >/tmp/dpkg.log 2>&1; then
        say "INSTALLED arch=$(dpkg-query -W -f='${Architecture}' coldspray) version=$(dpkg-query -W -f='${Version}' coldspray) dpkg=$(dpkg --print-architecture)"
    else
        say "FAIL dpkg -i: $(tail -5 /tmp/dpkg.log | tr '\n' ' ')"
        say "DONE"
        systemctl poweroff --no-block
        exit 1
    fi
fi

# --- 2. the daemon comes up on its own (its unit), the store opens -----------------------
ready_at=""
i=0
while [ $i -lt 1200 ]; do
    if busctl --system get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
        org.coldspray.ColdSpray1.Unit Ready 2>/dev/null | grep -q true; then
        ready_at=$(uptime_s)
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$ready_at" ]; then
    say "FAIL daemon not ready after 120 s: $(prop ActiveState)/$(prop SubState) $(prop StatusText)"
    journalctl -q -o cat -u coldsprayd.service | tail -20 | sed 's/^/PC: JOURNAL /'
    say "DONE"
    exit 1
fi
say "FIGURE ready notify_s=$(awk "BEGIN {printf \"%.1f\", $(prop ActiveEnterTimestampMonotonic) / 1e6}") dbus_ready_s=$ready_at"
features=$(busctl --system get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
    org.coldspray.ColdSpray1.Unit Features 2>/dev/null)
alarms=$(busctl --system get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
    org.coldspray.ColdSpray1.Unit ActiveAlarms 2>/dev/null)
if echo "$features" | grep -q '"log_store"' && ! echo "$alarms" | grep -q store_unavailable; then
    say "STORE open"
else
    say "STORE FAILED features=$features alarms=$alarms"
fi
findmnt -no SOURCE,FSTYPE --target /var/lib/coldspray | sed 's/^/PC: STATEDIR on /'
dmesg | grep -E "EXT4-fs \(vda\)" | sed 's/^/PC: KERNEL /'
journalctl -q -b -o cat -u coldsprayd.service | grep -E "left open by a crash|lost|damaged" | sed 's/^/PC: DAEMON /'

# --- 3. every record acknowledged before the previous cut --------------------------------
ctl --json sessions list >/tmp/list.json 2>/tmp/list.err || say "FAIL sessions list: $(cat /tmp/list.err)"
sed 's/^\[//; s/\]$//; s/},{/}\n{/g' /tmp/list.json >/tmp/records
checked=0 lost=0 bad=0
while read -r word id want; do
    [ "$word" = expect ] || continue
    checked=$((checked + 1))
    rec=$(grep -E "\"id\":$id[,}]" /tmp/records | head -1)
    if [ -z "$rec" ]; then
        lost=$((lost + 1)); say "CHECK id=$id outcome=- LOST (want $want)"; continue
    fi
    got=$(echo "$rec" | sed -n 's/.*"outcome":"\([a-z_]*\)".*/\1/p')
    if echo "|$want|" | grep -q "|$got|"; then
        say "CHECK id=$id outcome=$got ok"
    else
        bad=$((bad + 1)); say "CHECK id=$id outcome=$got BAD (want $want) record=$rec"
    fi
done <"$plan"
ids=$(sed -n 's/.*"id":\([0-9]*\)[,}].*/\1/p' /tmp/records)
dup=$(echo "$ids" | sort -n | uniq -d | grep -c . || true)
maxid=$(echo "$ids" | sort -n | tail -1)
say "CHECK RESULT checked=$checked lost=$lost bad=$bad duplicate_ids=$dup records=$(echo "$ids" | grep -c .) max_id=${maxid:-0}"

if [ "$mode" = final ]; then
    say "DONE"
    systemctl poweroff --no-block
    exit 0
fi

ctl protocols create name=pc_long title=PowerCut goal=protect spray_s=120 >/dev/null 2>&1 || true
wait_ready() {
    i=0
    until busctl --system get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 \
        org.coldspray.ColdSpray1.Unit Ready 2>/dev/null | grep -q true || [ $i -gt 1200 ]; do
        sleep 0.1; i=$((i + 1))
    done
}
start_session() { ctl --json start pc_long 2>/dev/null | sed -n 's/.*"session_id":\([0-9]*\).*/\1/p'; }
outcome_of() { ctl --json sessions show "$1" 2>/dev/null | sed -n 's/.*"outcome":"\([a-z_]*\)".*/\1/p'; }

# --- 4. boot 0: systemctl restart and a package reinstall during a session ---------------
# The daemon must close the session as `shutdown` and send SessionEnded (and StateChanged to
# stopping) before it exits; a D-Bus monitor stands in for the kiosk.
if [ "$boot" = 0 ]; then
    for how in restart reinstall; do
        busctl --system monitor --match "type='signal',interface='org.coldspray.ColdSpray1.Unit'" \
            >/tmp/mon-$how.txt 2>&1 &
        mon=$!
        sleep 1
        id=$(start_session)
        [ -n "$id" ] && say "ACK start $id"
        sleep 1
        pid=$(prop MainPID)
        if [ $how = restart ]; then
            systemctl restart coldsprayd.service
        else
            dpkg -i /root/coldspray.deb >/tmp/dpkg-re.log 2>&1 || say "FAIL reinstall: $(tail -3 /tmp/dpkg-re.log)"
        fi
        wait_ready
        sleep 1
        kill $mon 2>/dev/null; wait $mon 2>/dev/null
        [ "$(prop MainPID)" != "$pid" ] && say "PASS $how: a new daemon process" || say "FAIL $how: same main PID $pid"
        got=$(outcome_of "$id")
        [ -n "$id" ] && [ -n "$got" ] && say "ACK end $id $got"
        [ "$got" = shutdown ] && say "PASS $how: session $id recorded as shutdown" \
            || say "FAIL $how: session $id recorded as '$got'"
        # busctl prints the member, then the body (UINT64 id STRING "shutdown" BOOLEAN false).
        if grep -A12 'Member=SessionEnded' /tmp/mon-$how.txt | grep -q "UINT64 $id"; then
            say "PASS $how: the monitor saw SessionEnded($id, shutdown)"
        else
            say "FAIL $how: no SessionEnded($id) on the bus"; sed 's/^/PC: MON /' /tmp/mon-$how.txt | tail -40
        fi
        if grep -A12 'Member=StateChanged' /tmp/mon-$how.txt | grep -q 'STRING "stopping"'; then
            say "PASS $how: the monitor saw StateChanged to stopping ($(grep -A12 'Member=StateChanged' /tmp/mon-$how.txt | grep -o 'STRING "SIGTERM[^"]*"' | head -1))"
        else
            say "FAIL $how: no StateChanged to stopping on the bus"
        fi
    done
fi

# --- 5. drive sessions until the host cuts the power -------------------------------------
say "DRIVE BEGIN uptime=$(uptime_s)"
while :; do
    id=$(start_session)
    if [ -z "$id" ]; then
        say "INFO start refused: state $(busctl --system get-property org.coldspray.ColdSpray1 /org/coldspray/ColdSpray1 org.coldspray.ColdSpray1.Unit State 2>/dev/null)"
        ctl ack >/dev/null 2>&1 || true
        wait_ready
        continue
    fi
    say "ACK start $id"
    msleep "$(rnd 1500)"
    if [ "$(rnd 5)" = 0 ]; then
        # An interlock ends it: the E-stop, latched until released and acknowledged.
        say "SEND estop $id"
        ctl sim estop on >/dev/null 2>&1
        i=0
        until [ "$(outcome_of "$id")" = interlock ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
        got=$(outcome_of "$id")
        [ "$got" = interlock ] && say "ACK end $id interlock"
        ctl sim estop off >/dev/null 2>&1
        ctl ack >/dev/null 2>&1
        wait_ready
    else
        say "SEND stop $id"
        ctl stop >/dev/null 2>&1 && say "ACK end $id stopped"
    fi
    msleep "$(rnd 500)"
done
