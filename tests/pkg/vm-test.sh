#!/usr/bin/env bash
# systemd install test: installs the coldspray .deb into a Debian bookworm system, boots it
# under QEMU (TCG) with systemd as PID 1, and checks from inside (tests/pkg/vm/vmcheck.sh):
# the service is active, READY time, D-Bus name (when the policy names it), SIGKILL and
# SIGSTOP (watchdog) recovery with ExecStopPost= safe-off, bad config, upgrade and purge.
#
#   bash tests/pkg/vm-test.sh [path/to/coldspray_*_amd64.deb]
#
# Default .deb: the newest target/debian/coldspray_*_amd64.deb (tests/pkg/build-debs.sh).
# Cache (debootstrap tarball, kernel): $COLDSPRAY_VM_CACHE, default target/pkg-vm-cache.
# Needs (root): debootstrap, qemu-system-x86, cpio, and apt access to Debian's archive.
# The rootfs is the initramfs itself (no disk, no kernel modules needed): the kernel unpacks
# it into a tmpfs and runs systemd from it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${COLDSPRAY_VM_CACHE:-$root/target/pkg-vm-cache}"
work="$root/target/pkg-vm-work"
deb="${1:-$(ls -t "$root"/target/debian/coldspray_*_amd64.deb 2>/dev/null | head -1)}"
[ -f "$deb" ] || { echo "vm-test: no .deb (run tests/pkg/build-debs.sh first)" >&2; exit 2; }
for t in debootstrap qemu-system-x86_64 cpio; do
  command -v "$t" >/dev/null || { echo "vm-test: $t missing" >&2; exit 2; }
done
mkdir -p "$cache" "$work"
t_start=$(date +%s)

# --- 1. base system, cached: minbase + systemd + dbus ----------------------------------
base="$(bash "$root/tests/pkg/base-rootfs.sh")"

# --- 2. Debian's kernel, cached ----------------------------------------------------------
kernel="$cache/vmlinuz"
if [ ! -f "$kernel" ]; then
  echo "== Debian kernel"
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
  (cd "$cache" && rm -f linux-image-*.deb && apt-get download -q "$pkg" >/dev/null)
  rm -rf "$cache/kx" && dpkg-deb -x "$cache"/linux-image-*.deb "$cache/kx"
  cp "$cache"/kx/boot/vmlinuz-* "$kernel"
  rm -rf "$cache/kx"
fi

# --- 3. this run's system: base + the .deb + the sim drop-in + the check unit --------------
rfs="$work/rootfs"
rm -rf "$rfs" && mkdir -p "$rfs"
tar -C "$rfs" -xf "$base"
# Smaller initramfs: no docs, man pages, locales, apt lists.
rm -rf "$rfs"/usr/share/{doc,man,info,locale}/* "$rfs"/var/lib/apt/lists/*
cp "$deb" "$rfs/root/coldspray.deb"
echo "== dpkg -i $(basename "$deb") (in a chroot)"
chroot "$rfs" dpkg -i /root/coldspray.deb
# Simulated unit: the service reads a config with [unit] backend = "sim" (a systemd drop-in,
# so the shipped conffile stays untouched and upgrades in the VM see it pristine).
# The sim starts with a cold reservoir so it is ready at once, and serves on the system bus
# (on the sim, "auto" would pick the session bus).
printf '[unit]\nbackend = "sim"\nstate_dir = "/var/lib/coldspray"\n[sim]\ninitial_reservoir_c = 4.0\n[dbus]\nbus = "system"\n' > "$rfs/etc/coldspray/sim.toml"
mkdir -p "$rfs/etc/systemd/system/coldsprayd.service.d"
cat > "$rfs/etc/systemd/system/coldsprayd.service.d/10-sim.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/coldsprayd --check-config --config /etc/coldspray/sim.toml
ExecStart=
ExecStart=/usr/bin/coldsprayd --config /etc/coldspray/sim.toml
ExecStopPost=
ExecStopPost=/usr/bin/coldsprayd --safe-off --config /etc/coldspray/sim.toml
UNIT
install -m 755 "$root/tests/pkg/vm/vmcheck.sh" "$rfs/usr/local/bin/vmcheck.sh"
cat > "$rfs/etc/systemd/system/coldspray-vmtest.service" <<'UNIT'
[Unit]
Description=ColdSpray VM test
After=coldsprayd.service dbus.service
[Service]
Type=oneshot
ExecStart=/usr/local/bin/vmcheck.sh
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/coldspray-vmtest.service "$rfs/etc/systemd/system/multi-user.target.wants/coldspray-vmtest.service"
# Nothing else to do at boot.
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
         fstrim.timer getty@tty1.service serial-getty@ttyS0.service systemd-timesyncd.service; do
  ln -sf /dev/null "$rfs/etc/systemd/system/$u"
done
: > "$rfs/etc/machine-id"
echo coldspray-vm > "$rfs/etc/hostname"
(cd "$rfs" && find . -print0 | cpio --null -o -H newc --quiet) > "$work/initrd.cpio"
echo "initramfs: $(( $(stat -c %s "$work/initrd.cpio") / 1048576 )) MiB"

# --- 4. boot ------------------------------------------------------------------------------
echo "== boot (QEMU TCG, q35)"
log="$work/serial.log"
t0=$(date +%s)
set +e
timeout "${COLDSPRAY_VM_TIMEOUT:-420}" qemu-system-x86_64 -M q35 -accel tcg -smp 2 -m 1536 \
  -kernel "$kernel" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 rdinit=/sbin/init loglevel=4 systemd.show_status=0 panic=-1" \
  -display none -no-reboot -nic none -serial "file:$log" -monitor none </dev/null
rc=$?
set -e
echo "qemu exit $rc after $(( $(date +%s) - t0 )) s (whole test $(( $(date +%s) - t_start )) s)"
grep -a "COLDSPRAY-VM:" "$log" || true
if grep -aq "COLDSPRAY-VM: RESULT PASS" "$log"; then
  echo "vm-test: PASS"
  exit 0
fi
echo "vm-test: FAIL (serial log: $log)"; tail -40 "$log"
exit 1
