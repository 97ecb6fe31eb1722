#!/bin/sh
# /init of the ColdSpray real-kernel VM (PID 1, busybox sh). Built into the initramfs by
# tests/vm/build.sh. Prints markers that tests/vm/run.sh greps:
#   VMINIT ...                 progress and facts (boot time, bus numbers)
#   VMPROBE ...                the probe's checks, latency rows, and its RESULT line
#   VMINIT DONE rc=N           the end (then power off)
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t tmpfs state /var/lib/coldspray
ARCH=$(cat /etc/coldspray-vm-arch)
echo; echo "VMINIT boot arch=$ARCH kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)s"

die() { echo "VMINIT FAIL $*"; echo "VMINIT DONE rc=1"; poweroff -f; sleep 5; exit 1; }

M=/lib/modules
insmod $M/configfs.ko || die "insmod configfs"
mount -t configfs none /sys/kernel/config || die "mount configfs"
insmod $M/irq_sim.ko || die "insmod irq_sim"
insmod $M/gpio-sim.ko || die "insmod gpio-sim"
insmod $M/i2c-dev.ko || die "insmod i2c-dev"
# The five sensor addresses of BRIEF §3 (TMP117 x2, MCP9808, MLX90614, ADS1115).
insmod $M/i2c-stub.ko chip_addr=0x48,0x49,0x18,0x5a,0x4a || die "insmod i2c-stub"

# ---- gpio-sim chip, one bank, lines named after the signals (found by name, never number).
G=/sys/kernel/config/gpio-sim/coldspray
mkdir $G $G/bank0 || die "configfs gpio-sim"
echo coldspray > $G/bank0/label
LINES="pump spray_valve chiller chiller_fan buzzer lamp_ready lamp_fault estop trigger laser_emission water_low flow_pulse"
n=0
for name in $LINES; do
  mkdir $G/bank0/line$n
  echo "$name" > $G/bank0/line$n/name
  n=$((n + 1))
done
echo $n > $G/bank0/num_lines
echo 1 > $G/live || die "gpio-sim live"
DEV=$(cat $G/dev_name); CHIP=$(cat $G/bank0/chip_name)
echo "VMINIT gpio-sim $DEV $CHIP label=coldspray lines=$n"

# Preset input pulls BEFORE the daemon starts. gpio-sim's default pull is down (0).
# estop is configured active_low (NC contact to ground is not how gpio-sim models it; we model
# the logical convention): physical 1 = not pressed, so pull it UP = E-stop released.
# trigger, laser_emission, water_low, flow_pulse are active high and stay pulled down
# (= released / not emitting / water ok / no pulse).
line_dir() { # line_dir NAME -> sysfs dir of that named line
  i=0
  for l in $LINES; do
    [ "$l" = "$1" ] && { echo /sys/devices/platform/$DEV/$CHIP/sim_gpio$i; return; }
    i=$((i + 1))
  done
}
echo pull-up > "$(line_dir estop)/pull" || die "preset estop pull"

# ---- i2c-stub registers: plausible constant readings. i2c-stub is SMBus only; a word
# written with `i2cset ... w` goes on the wire LOW byte first, so a big-endian chip register
# (TMP117, MCP9808, ADS1115) is written byte-swapped; the MLX90614 is little-endian SMBus.
BUS=
for a in /sys/class/i2c-adapter/i2c-*; do
  [ "$(cat $a/name)" = "SMBus stub driver" ] && BUS=${a##*-}
done
[ -n "$BUS" ] || die "no i2c-stub adapter"
echo "VMINIT i2c-stub bus=$BUS (/dev/i2c-$BUS)"
w() { i2cset -y "$BUS" "$1" "$2" "$3" w || die "i2cset $*"; }
# TMP117 reservoir 0x48: 3.5 °C = 448 * 7.8125 m°C = 0x01C0 -> word 0xC001; at/below the VM
# setpoint (4 °C) so precooling finishes at once. Config 0x01 = 0x2220 (data ready), ID 0x0117.
w 0x48 0x00 0xC001; w 0x48 0x01 0x2022; w 0x48 0x0F 0x1701
# TMP117 mist 0x49: 4.0 °C = 512 = 0x0200 -> word 0x0002.
w 0x49 0x00 0x0002; w 0x49 0x01 0x2022; w 0x49 0x0F 0x1701
# MCP9808 heatsink 0x18: 30 °C = 480/16 = 0x01E0 -> word 0xE001; manufacturer 0x0054, device 0x0400.
w 0x18 0x05 0xE001; w 0x18 0x06 0x5400; w 0x18 0x07 0x0004
# MLX90614 skin 0x5A (RAM, little-endian, 0.02 K/LSB): Tobj1 0x07 = 34 °C = 15358 = 0x3BFE
# (above the co2_fractional skin target 26 °C, so a session is not over at once);
# Ta 0x06 = 25 °C = 0x3A3C.
w 0x5a 0x07 0x3BFE; w 0x5a 0x06 0x3A3C
# ADS1115 pressure 0x4A: conversion 0x00 = 1.3 V at ±4.096 V FS (125 µV/LSB) = 10400 = 0x28A0
# -> word 0xA028 (2 bar on a 0.5-4.5 V / 0-10 bar transducer); config 0x01 = 0x8583 -> 0x8385.
w 0x4a 0x00 0xA028; w 0x4a 0x01 0x8385
echo "VMINIT ready uptime=$(cut -d' ' -f1 /proc/uptime)s"

# ---- run the daemon (unmodified release binary) and the probe
RC=0
if [ -x /bin/coldsprayd ]; then
  sed -e "s#@I2C_BUS@#/dev/i2c-$BUS#g" -e "s#@GPIOCHIP@#$CHIP#g" /etc/coldspray-vm.toml > /etc/coldspray.toml
  echo "VMINIT starting coldsprayd $(/bin/coldsprayd --version 2>/dev/null)"
  /bin/coldsprayd --config /etc/coldspray.toml >/tmp/coldsprayd.log 2>&1 &
  DPID=$!
  /bin/coldspray-vm-probe daemon || RC=1
  if kill -0 $DPID 2>/dev/null; then
    echo "VMINIT coldsprayd still running (pid $DPID)"
    kill $DPID; sleep 1
  else
    echo "VMINIT FAIL coldsprayd exited early"; RC=1
  fi
  echo "VMINIT ---- coldsprayd log (last 60 lines)"
  tail -n 60 /tmp/coldsprayd.log | sed 's/^/VMDAEMON /'
else
  echo "VMINIT no /bin/coldsprayd: stand-in run"
  # Stand-in shell check: busybox alone reads every named line through sysfs.
  for l in $LINES; do
    v=$(cat "$(line_dir $l)/value") || die "read $l"
    printf '%s=%s ' "$l" "$v"
  done; echo
  /bin/coldspray-vm-probe standin || RC=1
fi
echo "VMINIT DONE rc=$RC uptime=$(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
sleep 10
