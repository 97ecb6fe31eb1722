#!/usr/bin/env bash
# Build everything the real-kernel VM test needs for one architecture:
#   - Debian bookworm's own kernel (image + matching headers, ABI pinned from apt-cache),
#   - gpio-sim + irq_sim (and i2c-stub on arm64) built out of tree from linux-source-6.1,
#   - the static musl probe (tests/vm/probe),
#   - a busybox-static initramfs with the modules, /init, the probe, the binary under test and
#     its shared libraries.
#
# Usage: tests/vm/build.sh ARCH [BINARY]
#   ARCH   x86_64 | aarch64
#   BINARY the coldsprayd to put in the VM (default: none, the VM then runs the probe against a
#          busybox stand-in; see init.sh). It is copied as /bin/coldsprayd, unmodified.
#
# Everything lands in $COLDSPRAY_VM_CACHE (default tests/vm/work/, git-ignored). A second run
# reuses the downloads, the unpacked trees and the built modules; only the initramfs (cheap) is
# re-assembled. Needs (installed by .ci/run): qemu-system-x86 qemu-system-arm
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross cpio busybox-static make gcc-12 bc flex bison
# libelf-dev xz-utils; rustup targets x86_64-unknown-linux-musl aarch64-unknown-linux-musl.
set -euo pipefail

ARCH=${1:?usage: build.sh x86_64|aarch64 [BINARY]}
BINARY=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${COLDSPRAY_VM_CACHE:-$HERE/work}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

case "$ARCH" in
  x86_64)  DEBARCH=amd64; KARCH=x86;   CROSS=;                    MUSL=x86_64-unknown-linux-musl ;;
  aarch64) DEBARCH=arm64; KARCH=arm64; CROSS=aarch64-linux-gnu-;  MUSL=aarch64-unknown-linux-musl ;;
  *) echo "build.sh: unknown ARCH $ARCH" >&2; exit 2 ;;
esac

log() { echo "[vm-build $ARCH] $*" >&2; }
T0=$(date +%s)

DEBS=$CACHE/debs
A=$CACHE/$ARCH
mkdir -p "$DEBS" "$A"

# ---------------------------------------------------------------- apt for the target arch
# amd64 uses the host's package lists. arm64 uses a private apt state (lists under the cache,
# APT::Architecture=arm64) so the host's dpkg configuration is never changed.
APT_OPTS=()
if [ "$DEBARCH" != "$(dpkg --print-architecture)" ]; then
  AS=$CACHE/apt-$DEBARCH
  mkdir -p "$AS/lists/partial" "$AS/cache/archives/partial"
  : > "$AS/status"
  APT_OPTS=(-o "APT::Architecture=$DEBARCH" -o "APT::Architectures::=$DEBARCH"
            -o "Dir::State::Lists=$AS/lists" -o "Dir::Cache=$AS/cache"
            -o "Dir::State::status=$AS/status")
  if ! ls "$AS/lists/"*_Packages* >/dev/null 2>&1; then
    log "apt-get update (private $DEBARCH lists)"
    apt-get "${APT_OPTS[@]}" update -qq
  fi
fi
aptc() { apt-cache "${APT_OPTS[@]}" "$@"; }

# Pin the kernel ABI once (first run) so image, headers and source always match.
PIN=$A/pinned.env
if [ ! -s "$PIN" ]; then
  img=$(aptc depends "linux-image-$DEBARCH" | awk '/Depends: linux-image-6\.1\./{print $2; exit}')
  [ -n "$img" ] || { echo "cannot resolve linux-image-$DEBARCH" >&2; exit 1; }
  abi=${img#linux-image-}; abi=${abi%-$DEBARCH}          # e.g. 6.1.0-56
  kver=$(aptc show --no-all-versions "$img" | awk '/^Version:/{print $2; exit}')
  bbver=$(aptc show --no-all-versions busybox-static | awk '/^Version:/{print $2; exit}')
  { echo "ABI=$abi"; echo "KVER=$kver"; echo "BBVER=$bbver"; } > "$PIN.tmp"
  mv "$PIN.tmp" "$PIN"
fi
# shellcheck disable=SC1090
. "$PIN"
KREL=$ABI-$DEBARCH
log "kernel $KREL ($KVER), busybox $BBVER"

fetch() { # fetch PKG VERSION ARCH-SUFFIX (uses the right apt lists)
  local pkg=$1 ver=$2 a=$3 opts=()
  local f=$DEBS/${pkg}_${ver/:/%3a}_$a.deb   # apt-get download spells an epoch %3a
  [ -s "$f" ] && { echo "$f"; return; }
  if [ "$a" = "$DEBARCH" ]; then opts=("${APT_OPTS[@]}"); fi
  (cd "$DEBS" && apt-get "${opts[@]}" download -q "$pkg=$ver" >&2)
  [ -s "$f" ] || { echo "download of $pkg=$ver failed ($f)" >&2; exit 1; }
  echo "$f"
}

HOSTARCH=$(dpkg --print-architecture)
D_IMG=$(fetch "linux-image-$KREL" "$KVER" "$DEBARCH")
D_HDR=$(fetch "linux-headers-$KREL" "$KVER" "$DEBARCH")
D_COM=$(fetch "linux-headers-$ABI-common" "$KVER" all)
# kbuild (fixdep, modpost, ...) must run on the build host: always the host's arch.
D_KB=$(fetch "linux-kbuild-6.1" "$KVER" "$HOSTARCH")
D_SRC=$(fetch "linux-source-6.1" "$KVER" all)
D_BB=$(fetch busybox-static "$BBVER" "$DEBARCH")

# The D-Bus broker for the daemon's API inside the VM (a private bus, like the e2e tests):
# dbus-daemon and the shared libraries it needs, from the target architecture's packages at
# the version apt resolves today. Unpacked once per set of versions.
DBUS_PKGS="dbus-daemon libdbus-1-3 libexpat1 libsystemd0 libapparmor1 libaudit1 libcap-ng0
  libselinux1 libpcre2-8-0 libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1"
DBUS_DEBS=()
for pkg in $DBUS_PKGS; do
  ver=$(aptc show --no-all-versions "$pkg:$DEBARCH" 2>/dev/null | awk '/^Version:/{print $2; exit}')
  [ -n "$ver" ] || { echo "cannot resolve $pkg:$DEBARCH" >&2; exit 1; }
  DBUS_DEBS+=("$(fetch "$pkg" "$ver" "$DEBARCH")")
done
DR=$A/dbus-root
DBUS_STAMP=$(printf '%s\n' "${DBUS_DEBS[@]}" | md5sum | cut -c1-12)
if [ ! -e "$DR/.done-$DBUS_STAMP" ]; then
  log "unpacking dbus-daemon and its libraries"
  rm -rf "$DR"; mkdir -p "$DR"
  for d in "${DBUS_DEBS[@]}"; do dpkg-deb -x "$d" "$DR"; done
  touch "$DR/.done-$DBUS_STAMP"
fi

# ---------------------------------------------------------------- unpack
R=$A/root
if [ ! -e "$R/.done-$KVER" ]; then
  log "unpacking kernel debs"
  rm -rf "$R"; mkdir -p "$R"
  for d in "$D_IMG" "$D_HDR" "$D_COM" "$D_KB" "$D_BB"; do dpkg-deb -x "$d" "$R"; done
  # The headers' Makefile includes the common tree by absolute path: point it into $R.
  sed -i "s#/usr/src/linux-headers-#$R/usr/src/linux-headers-#" \
    "$R/usr/src/linux-headers-$KREL/Makefile"
  touch "$R/.done-$KVER"
fi
KDIR=$R/usr/src/linux-headers-$KREL
VMLINUZ=$R/boot/vmlinuz-$KREL
MODDIR=$R/lib/modules/$KREL/kernel

S=$CACHE/src-$KVER
if [ ! -e "$S/.done" ]; then
  log "extracting gpio-sim / irq_sim / i2c-stub from linux-source-6.1"
  rm -rf "$S"; mkdir -p "$S"
  dpkg-deb --fsys-tarfile "$D_SRC" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
    tar -xJ -C "$S" --strip-components=1 \
      linux-source-6.1/drivers/gpio/gpio-sim.c linux-source-6.1/drivers/gpio/gpiolib.h \
      linux-source-6.1/kernel/irq/irq_sim.c linux-source-6.1/drivers/i2c/i2c-stub.c
  touch "$S/.done"
fi

# ---------------------------------------------------------------- out-of-tree modules
M=$A/mod
MODREV=2   # bump when the module patches change
if [ ! -e "$M/.done-$KVER-$MODREV" ]; then
  log "building modules against $KREL"
  rm -rf "$M"; mkdir -p "$M"
  cp "$S/drivers/gpio/gpio-sim.c" "$S/drivers/gpio/gpiolib.h" "$M/"
  cp "$S/kernel/irq/irq_sim.c" "$M/"
  # irq_to_desc() is not exported to modules; generic_handle_irq() runs the same flow handler
  # (handle_simple_irq, installed by irq_sim_domain_map) and is exported.
  sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$M/irq_sim.c"
  # The loop resumes find_next_bit() from the last offset, so a lower line raised while the
  # work runs (two lines moving at once: flow pulses during a pedal press) is found only past
  # the end, and its edge is lost (measured: 7 of 80 pedal edges). Rescan from bit 0 each time.
  sed -i 's/offset = find_next_bit(work_ctx->pending,/offset = find_first_bit(work_ctx->pending,/' "$M/irq_sim.c"
  sed -i 's/work_ctx->irq_count, offset);/work_ctx->irq_count);/' "$M/irq_sim.c"
  grep -q 'generic_handle_irq(irqnum);' "$M/irq_sim.c" &&
    grep -q 'offset = find_first_bit(work_ctx->pending,' "$M/irq_sim.c" &&
    ! grep -q 'work_ctx->irq_count, offset);' "$M/irq_sim.c" || { echo "irq_sim.c patch failed" >&2; exit 1; }
  # irq_sim is built-in only upstream; as a module it needs a licence tag.
  printf '\n#include <linux/module.h>\nMODULE_LICENSE("GPL");\n' >> "$M/irq_sim.c"
  objs="irq_sim.o gpio-sim.o"
  if [ "$ARCH" = aarch64 ]; then           # Debian's arm64 kernel lacks CONFIG_I2C_STUB
    cp "$S/drivers/i2c/i2c-stub.c" "$M/"
    objs="$objs i2c-stub.o"
  fi
  echo "obj-m := $objs" > "$M/Kbuild"
  make -s -C "$KDIR" M="$M" ARCH="$KARCH" ${CROSS:+CROSS_COMPILE=$CROSS} \
    -j"$(nproc)" modules >"$M/build.log" 2>&1 || { cat "$M/build.log" >&2; exit 1; }
  touch "$M/.done-$KVER-$MODREV"
fi

# ---------------------------------------------------------------- probe (static musl)
PT=$CACHE/probe-target
log "building probe for $MUSL"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
cargo build -q --release --manifest-path "$HERE/probe/Cargo.toml" --target "$MUSL" \
  --target-dir "$PT"
PROBE=$PT/$MUSL/release/coldspray-vm-probe

# ---------------------------------------------------------------- initramfs
I=$A/initramfs
rm -rf "$I"
mkdir -p "$I"/{bin,sbin,etc,proc,sys,dev,tmp,run,var/lib/coldspray,lib/modules,usr/bin}
cp "$R/bin/busybox" "$I/bin/busybox"
ln -s busybox "$I/bin/sh"           # /init runs `busybox --install -s` for the other applets
for ko in "$MODDIR/fs/configfs/configfs.ko" "$MODDIR/drivers/i2c/i2c-dev.ko" \
          "$M/irq_sim.ko" "$M/gpio-sim.ko"; do
  cp "$ko" "$I/lib/modules/"
done
if [ "$ARCH" = aarch64 ]; then cp "$M/i2c-stub.ko" "$I/lib/modules/"
else cp "$MODDIR/drivers/i2c/i2c-stub.ko" "$I/lib/modules/"; fi
cp "$HERE/init.sh" "$I/init"; chmod +x "$I/init"
cp "$HERE/coldspray-vm.toml" "$I/etc/coldspray-vm.toml"
cp "$PROBE" "$I/bin/coldspray-vm-probe"

# Copy an ELF and, recursively, the shared libraries it needs (from the host, or from the
# aarch64 cross sysroot), so a dynamically linked release binary runs unmodified.
# The C library comes from the host (or the cross sysroot); dbus-daemon's other libraries
# from the packages unpacked above.
if [ "$ARCH" = aarch64 ]; then LIBROOTS="/usr/aarch64-linux-gnu/lib /usr/aarch64-linux-gnu/lib64"
else LIBROOTS="/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64"; fi
TRIPLET=$ARCH-linux-gnu
LIBROOTS="$LIBROOTS $DR/lib/$TRIPLET $DR/usr/lib/$TRIPLET"
copy_libs() {
  local elf=$1 interp lib p found
  interp=$(readelf -lW "$elf" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  if [ -n "$interp" ] && [ ! -e "$I$interp" ]; then
    mkdir -p "$I$(dirname "$interp")"
    found=
    for p in $LIBROOTS; do
      if [ -e "$p/$(basename "$interp")" ]; then cp -L "$p/$(basename "$interp")" "$I$interp"; found=1; break; fi
    done
    [ -n "$found" ] || { echo "interpreter $interp not found" >&2; exit 1; }
  fi
  for lib in $(readelf -dW "$elf" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    [ -e "$I/lib/$lib" ] && continue
    found=
    for p in $LIBROOTS; do
      if [ -e "$p/$lib" ]; then cp -L "$p/$lib" "$I/lib/$lib"; found=1; copy_libs "$p/$lib"; break; fi
    done
    [ -n "$found" ] || { echo "shared library $lib (needed by $elf) not found in $LIBROOTS" >&2; exit 1; }
  done
}
if [ -n "$BINARY" ]; then
  [ -x "$BINARY" ] || { echo "binary $BINARY not found" >&2; exit 1; }
  # vm_halcheck (tests crate) is the harness self-check that runs in the daemon's place.
  case "$(basename "$BINARY")" in
    vm_halcheck) cp "$BINARY" "$I/bin/vm-halcheck" ;;
    *)
      cp "$BINARY" "$I/bin/coldsprayd"
      # The daemon serves its D-Bus API on a private bus in the VM: the broker, and the
      # product's own client (built beside the daemon) for the probe's start/ack commands.
      CTL=$(dirname "$BINARY")/coldsprayctl
      [ -x "$CTL" ] || { echo "coldsprayctl not found beside $BINARY" >&2; exit 1; }
      cp "$CTL" "$I/bin/coldsprayctl"
      copy_libs "$CTL"
      cp "$DR/usr/bin/dbus-daemon" "$I/bin/dbus-daemon"
      copy_libs "$DR/usr/bin/dbus-daemon"
      cp "$HERE/vm-bus.conf" "$I/etc/vm-bus.conf"
      cp "$HERE/../../packaging/dbus/org.coldspray.ColdSpray1.conf" "$I/etc/coldspray-dbus-policy.conf"
      # dbus-daemon resolves the policy's user and group names through /etc/passwd and /etc/group.
      printf 'root:x:0:0:root:/root:/bin/sh\n' > "$I/etc/passwd"
      printf 'root:x:0:\n' > "$I/etc/group"
      ;;
  esac
  copy_libs "$BINARY"
  # The dynamic loader searches /lib and /usr/lib by default; the arch dirs make it explicit.
  mkdir -p "$I/etc"; printf '/lib\n/usr/lib\n' > "$I/etc/ld.so.conf"
fi
echo "$ARCH" > "$I/etc/coldspray-vm-arch"

(cd "$I" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$A/initramfs.cpio.gz.tmp"
mv "$A/initramfs.cpio.gz.tmp" "$A/initramfs.cpio.gz"
ln -sf "$VMLINUZ" "$A/vmlinuz"
log "done in $(( $(date +%s) - T0 )) s: $A/vmlinuz $A/initramfs.cpio.gz"
