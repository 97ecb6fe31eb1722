#!/usr/bin/env bash
# Builds the `coldspray` and `coldspray-kiosk` .debs for amd64 and arm64 into target/debian/ —
# the one documented
# packaging command:
#
#   bash tests/pkg/build-debs.sh [--placeholders] [--arch amd64|arm64|all]
#
# Needs: cargo-deb (`cargo install --locked cargo-deb`), the Rust target
# aarch64-unknown-linux-gnu (`rustup target add`), Debian's gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross, and dpkg-dev. The host must be x86_64.
#
# --placeholders: files that other branches add (packaging/dbus/, packaging/grafana/,
# packaging/prometheus/) may be missing from a feature branch. With this flag the build runs
# from a scratch copy of the tree (target/pkg-scratch/src) in which EMPTY placeholder files
# stand in for the missing ones, and says so loudly. Such a .deb is for testing the
# packaging only. Without the flag a missing file is an error. Placeholders are never
# written into the checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

placeholders=0
arches="amd64 arm64"
while [ $# -gt 0 ]; do
  case "$1" in
    --placeholders) placeholders=1 ;;
    --arch) shift; arches="${1:?--arch needs amd64, arm64 or all}"; [ "$arches" = all ] && arches="amd64 arm64" ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-debs.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

[ "$(uname -m)" = x86_64 ] || { echo "build-debs.sh: the build host must be x86_64" >&2; exit 2; }
command -v cargo-deb >/dev/null || { echo "build-debs.sh: cargo-deb missing: cargo install --locked cargo-deb" >&2; exit 2; }

# Every file the package ships that this tree must provide (globs: at least one match).
required=(
  packaging/coldspray.toml
  packaging/hardware/rpi-rev-a.toml
  packaging/debian/copyright
  packaging/debian/changelog
  packaging/debian/coldspray.udev
  packaging/debian/man/coldsprayd.8
  packaging/debian/man/coldsprayctl.1
  systemd/coldsprayd.service
  systemd/coldspray.sysusers
  systemd/coldspray-kiosk.service
  systemd/coldspray-kiosk.sysusers
  packaging/debian/coldspray-kiosk.copyright
  packaging/debian/coldspray-kiosk.changelog
  packaging/debian/pam/coldspray-kiosk
  packaging/debian/man/coldspray-kiosk.1
  packaging/dbus/org.coldspray.ColdSpray1.conf
  'packaging/dbus/*.xml'
  'packaging/grafana/*'
  'packaging/prometheus/*'
)
missing=()
for f in "${required[@]}"; do
  # shellcheck disable=SC2086 # the glob must expand
  compgen -G "$f" >/dev/null || missing+=("$f")
done

src="$root"
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$placeholders" = 0 ]; then
    printf 'build-debs.sh: missing from the tree: %s\n' "${missing[@]}" >&2
    echo "(on a feature branch: --placeholders builds a test package from a scratch copy)" >&2
    exit 1
  fi
  src="$root/target/pkg-scratch/src"
  rm -rf "$src"
  mkdir -p "$src"
  # The tracked and untracked-but-not-ignored files: what the commit would contain.
  git ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$src")
  for f in "${missing[@]}"; do
    p="${f//\*/placeholder}"
    case "$f" in *.xml) p="${f%\*.xml}org.coldspray.ColdSpray1.Placeholder.xml" ;; esac
    mkdir -p "$src/$(dirname "$p")"
    : > "$src/$p"
    echo "build-debs.sh: WARNING: EMPTY PLACEHOLDER for $f (test package only)" >&2
  done
fi

mkdir -p "$root/target/debian"
export CARGO_TARGET_DIR="$root/target"
for arch in $arches; do
  case "$arch" in
    amd64) target=x86_64-unknown-linux-gnu ;;
    arm64)
      target=aarch64-unknown-linux-gnu
      command -v aarch64-linux-gnu-gcc >/dev/null || { echo "build-debs.sh: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross" >&2; exit 2; }
      rustup target list --installed | grep -qx "$target" || rustup target add "$target"
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
      # cargo-deb reads the binaries' shared-library needs ($auto) with dpkg-shlibdeps,
      # which looks for the cross libc here.
      ;;
    *) echo "build-debs.sh: unknown arch $arch" >&2; exit 2 ;;
  esac
  echo "== coldspray .deb for $arch ($target)"
  (cd "$src" && cargo deb --locked -p coldsprayd --target "$target" -o "$root/target/debian/")
  echo "== coldspray-kiosk .deb for $arch ($target)"
  (cd "$src" && cargo deb --locked -p coldspray-kiosk --target "$target" -o "$root/target/debian/")
done
ls -l "$root"/target/debian/*.deb
