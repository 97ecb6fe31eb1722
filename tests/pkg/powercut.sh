#!/usr/bin/env bash
# Power cuts on a real kernel: the arm64 coldspray .deb installed into a booted arm64 Debian
# bookworm (systemd PID 1, Debian's arm64 kernel under qemu-system-aarch64 -M virt, TCG), the
# daemon started by its unit on the simulated backend, its treatment log on ext4 on a virtio
# disk. Sessions are driven over D-Bus inside the guest (tests/pkg/vm/powercut-guest.sh prints
# every acknowledged start/stop to the serial console); the host kills QEMU with SIGKILL at a
# random moment while sessions run, boots the same disk again, and the guest checks that the
# store opens, that every record acknowledged before the cut is present with the right outcome
# (the session open at the cut: `aborted`), and that no id is reused. Boot 0 also checks that
# `systemctl restart` and a reinstall of the .deb during a session close it as `shutdown` with
# SessionEnded/StateChanged seen on the bus.
#
#   bash tests/pkg/powercut.sh [--cuts N] [--seed S] [path/to/coldspray_*_arm64.deb]
#
# Default: 5 cuts (the CI form); the full campaign is --cuts 30 (or COLDSPRAY_POWERCUTS=30).
# Prints the figures (cuts, acknowledged, lost, boot-to-ready) and exits non-zero on any loss.
# Cache: $COLDSPRAY_VM_CACHE (default target/pkg-vm-cache): the arm64 base tarball
# (tests/pkg/base-rootfs.sh arm64), Debian's arm64 kernel and busybox-static. Work files
# (disk image, serial logs): target/powercut. Needs (root): debootstrap, qemu-system-arm,
# qemu-user-static, binfmt-support, e2fsprogs, kmod, cpio (tests/tools/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${COLDSPRAY_VM_CACHE:-$root/target/pkg-vm-cache}"
work="$root/target/powercut"
cuts="${COLDSPRAY_POWERCUTS:-5}"
seed="${COLDSPRAY_SEED:-$(date +%s)}"
deb=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cuts) shift; cuts="$1" ;;
    --seed) shift; seed="$1" ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) deb="$1" ;;
  esac
  shift
done
deb="${deb:-$(ls -t "$root"/target/debian/coldspray_*_arm64.deb 2>/dev/null | head -1)}"
[ -f "$deb" ] || { echo "powercut: no arm64 .deb (bash tests/pkg/build-debs.sh --arch arm64)" >&2; exit 2; }
for t in qemu-system-aarch64 mkfs.ext4 depmod modprobe cpio; do
  command -v "$t" >/dev/null || { echo "powercut: $t missing (tests/tools/setup.sh)" >&2; exit 2; }
done
boot_timeout="${COLDSPRAY_PC_BOOT_TIMEOUT:-600}"  # s until the guest drives sessions
max_cut_ms="${COLDSPRAY_PC_MAX_CUT_MS:-12000}"     # the cut comes 0..this after DRIVE BEGIN
RANDOM=$seed
mkdir -p "$cache" "$work"
t_start=$(date +%s)
echo "== power-cut campaign: $cuts cuts, seed $seed, $(basename "$deb")"

# --- 1. arm64 base system, kernel, busybox (cached) ------------------------------------
base="$(bash "$root/tests/pkg/base-rootfs.sh" arm64)"
k="$cache/arm64-k"
mkdir -p "$k"
if [ ! -f "$k/vmlinuz" ] || [ ! -f "$k/busybox" ]; then
  as="$cache/apt-arm64"
  mkdir -p "$as/lists/partial" "$as/cache/archives/partial"
  : > "$as/status"
  apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
            -o "Dir::State::Lists=$as/lists" -o "Dir::Cache=$as/cache" -o "Dir::State::status=$as/status")
  ls "$as/lists/"*_Packages* >/dev/null 2>&1 || apt-get "${apt_opts[@]}" update -qq
  img=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64 | awk '/Depends: linux-image-6\.1\./{print $2; exit}')
  [ -n "$img" ] || { echo "powercut: cannot resolve linux-image-arm64" >&2; exit 1; }
  rm -rf "$k" && mkdir -p "$k"
  (cd "$k" && apt-get "${apt_opts[@]}" download -q "$img" busybox-static >/dev/null 2>&1)
  dpkg-deb -x "$k"/linux-image-*.deb "$k/kx"
  dpkg-deb -x "$k"/busybox-static_*.deb "$k/bb"
  cp "$k"/kx/boot/vmlinuz-* "$k/vmlinuz"
  krel=$(ls "$k/kx/lib/modules")
  depmod -b "$k/kx" "$krel"
  # Debian builds virtio-blk, virtio-pci/mmio and ext4 as modules: the small initramfs loads
  # them (dependencies first) and switches to the root file system on the virtio disk.
  mkdir -p "$k/mods"
  : > "$k/mods/order"
  for m in virtio_mmio virtio_pci virtio_blk ext4 crc32c_generic; do
    modprobe -d "$k/kx" -S "$krel" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$k/mods/" && basename "$ko" >> "$k/mods/order"
  done
  cp "$k/bb/bin/busybox" "$k/busybox"
  rm -rf "$k/kx" "$k/bb" "$k"/*.deb
fi

# --- 2. initramfs: busybox, the modules, /init that mounts /dev/vda and switches root --
ird="$work/initrd"
rm -rf "$ird" && mkdir -p "$ird"/{bin,dev,proc,sys,newroot,mods}
cp "$k/busybox" "$ird/bin/busybox"
cp "$k"/mods/* "$ird/mods/"
cat > "$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod "/mods/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; sleep 2; poweroff -f; }
umount /proc /sys
exec switch_root /newroot /sbin/init
INIT
chmod 755 "$ird/init"
(cd "$ird" && find . -print0 | cpio --null -o -H newc --quiet) > "$work/initrd.cpio"

# --- 3. the disk: base system + the .deb to install at boot 0 + the guest driver -------
rfs="$work/rootfs"
rm -rf "$rfs" && mkdir -p "$rfs"
tar -C "$rfs" -xf "$base"
rm -rf "$rfs"/usr/share/{doc,man,info,locale}/* "$rfs"/var/lib/apt/lists/*
cp "$deb" "$rfs/root/coldspray.deb"
# The simulated unit, on the system bus, state on the root file system (the virtio disk).
mkdir -p "$rfs/etc/coldspray" "$rfs/etc/systemd/system/coldsprayd.service.d"
printf '[unit]\nbackend = "sim"\nstate_dir = "/var/lib/coldspray"\n[sim]\ninitial_reservoir_c = 4.0\n[dbus]\nbus = "system"\n' > "$rfs/etc/coldspray/sim.toml"
cat > "$rfs/etc/systemd/system/coldsprayd.service.d/10-sim.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/coldsprayd --check-config --config /etc/coldspray/sim.toml
ExecStart=
ExecStart=/usr/bin/coldsprayd --config /etc/coldspray/sim.toml
ExecStopPost=
ExecStopPost=/usr/bin/coldsprayd --safe-off --config /etc/coldspray/sim.toml
UNIT
install -m 755 "$root/tests/pkg/vm/powercut-guest.sh" "$rfs/usr/local/bin/powercut-guest.sh"
cat > "$rfs/etc/systemd/system/coldspray-powercut.service" <<'UNIT'
[Unit]
Description=ColdSpray power-cut driver
After=dbus.service coldsprayd.service
[Service]
Type=simple
ExecStart=/usr/local/bin/powercut-guest.sh
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/coldspray-powercut.service "$rfs/etc/systemd/system/multi-user.target.wants/coldspray-powercut.service"
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
         fstrim.timer getty@tty1.service serial-getty@ttyAMA0.service systemd-timesyncd.service; do
  ln -sf /dev/null "$rfs/etc/systemd/system/$u"
done
: > "$rfs/etc/machine-id"
echo coldspray-arm64 > "$rfs/etc/hostname"
disk="$work/root.img"
rm -f "$disk"
mkfs.ext4 -q -F -L csroot -d "$rfs" "$disk" 1536M
rm -rf "$rfs"
plan="$work/plan.img"

# --- 4. boot, drive, cut; boot again and check -------------------------------------------
declare -A want=()       # id -> accepted outcomes (a|b) of every session acknowledged so far
max_acked=0
acked_total=0
fails=0
ready_s=()
notify_s=()
drive_ms=()
recoveries=0
cut_power() { # cut_power PID: SIGKILL the QEMU child of that timeout process (the power cut)
  pkill -KILL -P "$1" 2>/dev/null || true
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
boot_once() { # boot_once N MODE: boots the disk; MODE drive (cut it) or final (it powers off)
  local n=$1 mode=$2 log="$work/serial-$1.log" qpid t0 cut_ms
  {
    echo "boot $n"; echo "mode $mode"
    for id in "${!want[@]}"; do echo "expect $id ${want[$id]}"; done
  } > "$plan"
  truncate -s 1M "$plan"
  rm -f "$log"
  t0=$(date +%s%N)
  timeout --kill-after=5 "$boot_timeout" qemu-system-aarch64 -M virt -cpu cortex-a72 \
    -smp "${COLDSPRAY_VM_SMP:-2}" -m 1024 -accel tcg -nographic -no-reboot -nodefaults \
    -kernel "$k/vmlinuz" -initrd "$work/initrd.cpio" \
    -append "console=ttyAMA0 rdinit=/init panic=-1 loglevel=4 systemd.show_status=0" \
    -drive "file=$disk,if=virtio,format=raw" -drive "file=$plan,if=virtio,format=raw" \
    -serial "file:$log" -monitor none </dev/null >/dev/null 2>&1 &
  qpid=$!   # the timeout process; QEMU is its child
  if [ "$mode" = final ]; then
    wait $qpid || true
  else
    # Wait for the guest to drive sessions, then cut at a random moment.
    while kill -0 $qpid 2>/dev/null && ! grep -aqE "PC: (DRIVE BEGIN|DONE)" "$log" 2>/dev/null; do sleep 0.2; done
    if ! grep -aq "PC: DRIVE BEGIN" "$log" 2>/dev/null; then
      cut_power $qpid
      echo "boot $n: QEMU ended before the guest drove sessions"; tr -d '\r' < "$log" | tail -30
      return 1
    fi
    cut_ms=$(( (RANDOM * 32768 + RANDOM) % max_cut_ms ))
    drive_ms+=("$cut_ms")
    sleep "$(( cut_ms / 1000 )).$(printf %03d $(( cut_ms % 1000 )))"
    cut_power $qpid
  fi
  echo "boot $n ($mode): $(( ($(date +%s%N) - t0) / 1000000 )) ms wall${cut_ms:+, cut ${cut_ms} ms after DRIVE BEGIN}"
}
judge_boot() { # judge_boot N: checks of boot N (of the previous cut), then its acknowledgements
  local n=$1 log="$work/serial-$1.log" txt="$work/serial-$1.txt" line id
  tr -d '\r' < "$log" | grep -a -o 'PC: .*' > "$txt" || true
  grep -E '^PC: (BOOT|INSTALLED|FIGURE|STORE|STATEDIR|CHECK RESULT|PASS|FAIL|DAEMON|KERNEL)' "$txt" | sed "s/^/  [$n] /" || true
  grep -q '^PC: STORE open' "$txt" || { echo "  [$n] FAIL: the store did not open"; fails=$((fails + 1)); }
  grep -q '^PC: FAIL' "$txt" && fails=$((fails + $(grep -c '^PC: FAIL' "$txt")))
  grep -E '^PC: CHECK id=.* (LOST|BAD)' "$txt" | sed "s/^/  [$n] /" || true
  line=$(grep '^PC: CHECK RESULT' "$txt" || true)
  [ -n "$line" ] || { echo "  [$n] FAIL: no check result"; fails=$((fails + 1)); return; }
  local checked lost bad dup maxid
  checked=$(echo "$line" | sed -n 's/.*checked=\([0-9]*\).*/\1/p')
  lost=$(echo "$line" | sed -n 's/.*lost=\([0-9]*\).*/\1/p')
  bad=$(echo "$line" | sed -n 's/.*bad=\([0-9]*\).*/\1/p')
  dup=$(echo "$line" | sed -n 's/.*duplicate_ids=\([0-9]*\).*/\1/p')
  maxid=$(echo "$line" | sed -n 's/.*max_id=\([0-9]*\).*/\1/p')
  [ "$checked" = "${#want[@]}" ] || { echo "  [$n] FAIL: checked $checked of ${#want[@]}"; fails=$((fails + 1)); }
  total_lost=$((total_lost + lost)); total_bad=$((total_bad + bad))
  [ "$lost" = 0 ] && [ "$bad" = 0 ] && [ "$dup" = 0 ] || fails=$((fails + 1))
  grep -aq 'EXT4-fs (vda): recovery complete' "$txt" && recoveries=$((recoveries + 1))
  local r nt
  r=$(sed -n 's/^PC: FIGURE ready .*dbus_ready_s=\([0-9.]*\).*/\1/p' "$txt" | head -1)
  nt=$(sed -n 's/^PC: FIGURE ready notify_s=\([0-9.]*\).*/\1/p' "$txt" | head -1)
  [ -n "$r" ] && ready_s+=("$r")
  [ -n "$nt" ] && notify_s+=("$nt")
  # This boot's acknowledgements become the next boot's expectations.
  local first=""
  while read -r _ what verb id outcome; do
    case "$what $verb" in
      "ACK start")
        [ -z "$first" ] && first=$id
        if [ -n "${want[$id]:-}" ] || [ "$id" -le "${max_seen:-0}" ]; then
          echo "  [$n] FAIL: session id $id reused (highest id before: $max_seen)"; fails=$((fails + 1))
        fi
        want[$id]=aborted; acked_total=$((acked_total + 1))
        [ "$id" -gt "$max_acked" ] && max_acked=$id ;;
      "SEND stop") want[$id]="stopped|aborted" ;;
      "SEND estop") want[$id]="interlock|aborted" ;;
      "ACK end") want[$id]=$outcome ;;
    esac
  done < <(sed -n 's/^PC: \(ACK\|SEND\) \([a-z]*\) \([0-9]*\) *\([a-z_]*\).*/x \1 \2 \3 \4/p' "$txt")
  [ -n "$maxid" ] && [ "$maxid" -gt "${max_seen:-0}" ] && max_seen=$maxid
  [ "$max_acked" -gt "${max_seen:-0}" ] && max_seen=$max_acked
  echo "  [$n] acknowledged this boot: $(grep -c '^PC: ACK start' "$txt" || true) sessions (first id ${first:-none}); open at the cut: $(grep '^PC: ACK start' "$txt" | tail -1 | awk '{print $4}')"
}
total_lost=0 total_bad=0 max_seen=0
for ((n = 0; n <= cuts; n++)); do
  if [ $n -lt "$cuts" ]; then
    boot_once $n drive || { fails=$((fails + 1)); judge_boot $n; break; }
  else boot_once $n final; fi
  judge_boot $n
done

# --- 5. figures -----------------------------------------------------------------------
stats() { [ $# -gt 0 ] || { echo "none"; return; }; printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "min %.1f / median %.1f / max %.1f s (n=%d)", a[1], a[int((NR+1)/2)], a[NR], NR}'; }
echo
echo "POWERCUT FIGURES: cuts=$cuts acknowledged=$acked_total lost=$total_lost wrong_outcome=$total_bad" \
     "fs_journal_recoveries=$recoveries failures=$fails seed=$seed"
echo "POWERCUT boot (kernel start) -> READY=1: $(stats "${notify_s[@]}")"
echo "POWERCUT boot (kernel start) -> D-Bus Ready=true: $(stats "${ready_s[@]}")"
echo "POWERCUT whole campaign: $(( $(date +%s) - t_start )) s wall; serial logs in $work"
if [ "$fails" = 0 ] && [ "$total_lost" = 0 ]; then echo "powercut: PASS"; exit 0; fi
echo "powercut: FAIL"; exit 1
