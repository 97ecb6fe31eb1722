#!/bin/sh
# Fetches Debian's Prometheus server, promtool, node exporter, Alertmanager and amtool into DIR
# without installing them (installing the packages would start servers listening on every
# interface).
#
#   tests/tools/fetch-prometheus.sh DIR
#
# Afterwards DIR/bin holds `prometheus`, `promtool`, `prometheus-node-exporter`,
# `prometheus-alertmanager` and `amtool`; point the
# tests at it with COLDSPRAY_PROMETHEUS_DIR=DIR. Idempotent: does nothing when the binaries are
# already there. Needs apt package lists; as root it runs `apt-get update` when they are missing.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
packages="prometheus prometheus-node-exporter prometheus-alertmanager"

if [ -x "$dir/bin/prometheus" ] && [ -x "$dir/bin/promtool" ] && [ -x "$dir/bin/prometheus-node-exporter" ] \
    && [ -x "$dir/bin/amtool" ]; then
    echo "fetch-prometheus: already present in $dir/bin"
    exit 0
fi

mkdir -p "$dir/debs" "$dir/root" "$dir/bin"
dir=$(cd "$dir" && pwd)
cd "$dir/debs"
# apt-get download drops privileges to _apt when it can; a root-owned folder only warns.
if ! apt-get download $packages; then
    # A fresh machine may have no package lists yet: refresh them once when we may.
    if [ "$(id -u)" -eq 0 ] && apt-get update -qq && apt-get download $packages; then
        :
    else
        echo "fetch-prometheus: 'apt-get download $packages' failed; run 'apt-get update' first" >&2
        exit 1
    fi
fi
for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dir/root"
done
ln -sf "$dir/root/usr/bin/prometheus" "$dir/bin/prometheus"
ln -sf "$dir/root/usr/bin/promtool" "$dir/bin/promtool"
ln -sf "$dir/root/usr/bin/prometheus-node-exporter" "$dir/bin/prometheus-node-exporter"
ln -sf "$dir/root/usr/bin/prometheus-alertmanager" "$dir/bin/prometheus-alertmanager"
ln -sf "$dir/root/usr/bin/amtool" "$dir/bin/amtool"
"$dir/bin/promtool" --version | head -n 1
"$dir/bin/prometheus-node-exporter" --version 2>&1 | head -n 1
"$dir/bin/amtool" --version 2>&1 | head -n 1
echo "fetch-prometheus: ready in $dir/bin (export COLDSPRAY_PROMETHEUS_DIR=$dir)"
