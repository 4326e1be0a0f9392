#!/bin/sh
# /init of hv's Linux test initramfs (busybox-static). What it does after mounting the kernel's
# file systems is chosen on the kernel command line:
#   hv.run=shell     (default) an interactive shell on the console, with job control and Ctrl-C
#   hv.run=selftest  the end-to-end checks below, then poweroff -f
#   hv.run=poweroff  poweroff -f at once (boot-time benchmark)
#   hv.run=reboot    reboot -f at once (restart test)
#   hv.run=rng       report the kernel's hardware RNG and 32 bytes read from it, poweroff -f
#   hv.run=iobench   run /bin/iobench on hv.disk=DEV (default /dev/sda; destroys its contents)
#                    with hv.iobench=MIB, then poweroff -f (bench/disk_io.sh)
#   hv.run=disk      mount the ext4 disk hv.disk=DEV (default /dev/sda) read-write, report its
#                    greeting file, count this boot in it, write 64 KiB of random data and print
#                    their sha256, unmount, poweroff -f (the persistence test)
#   hv.run=kallsyms  print the kernel's symbol table, then poweroff -f (Debian's System.map is a
#                    stub; bench/linux_profile.sh names profiled addresses with this)
#   hv.run=net       bring up eth0 as hv.ip=ADDR/LEN (default 10.0.2.15/24), ping hv.peer=ADDR
#                    (default 10.0.2.1), fetch what the peer serves on TCP port 5555 and send
#                    256 KiB of random data to its port 5556, printing sha256 sums; poweroff -f
#   hv.run=console   report which terminal the shell's console is, then poweroff -f
#   hv.run=consolebench  write 1 MiB of text lines to the console terminal (hvc0 with a
#                    virtio-console, else ttyS0) and report the time it took, poweroff -f
# Kernel modules (from the same package) are loaded with modprobe: virtio_mmio and the virtio
# drivers when the ACPI tables announce virtio-mmio devices (LNRO0005) or the command line does
# (virtio_mmio.device=...), and those named in hv.modules=a,b,c (pata_legacy for the IDE disk).
# When a virtio-console is there (hv run --console virtio), init's input and output and the
# shell move to it (hvc0); the kernel's own messages stay where console= sends them.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname hv-guest
echo "hv-init: started"

run=shell
modules=""
disk=""
iobench_mib=""
ip_address=10.0.2.15/24
peer=10.0.2.1
for arg in $(cat /proc/cmdline); do
  case $arg in
  hv.run=*) run=${arg#hv.run=} ;;
  hv.disk=*) disk=${arg#hv.disk=} ;;
  hv.iobench=*) iobench_mib=${arg#hv.iobench=} ;;
  hv.ip=*) ip_address=${arg#hv.ip=} ;;
  hv.peer=*) peer=${arg#hv.peer=} ;;
  hv.modules=*) modules="$modules $(echo "${arg#hv.modules=}" | tr , ' ')" ;;
  virtio_mmio.device=*) modules="$modules virtio_mmio virtio_blk virtio_net virtio_console virtio-rng" ;;
  esac
done
if ls /sys/bus/acpi/devices/ 2>/dev/null | grep -q '^LNRO0005:'; then
  modules="$modules virtio_mmio virtio_blk virtio_net virtio_console virtio-rng"
fi
for module in $(echo "$modules" | tr ' ' '\n' | awk 'NF && !seen[$0]++'); do
  modprobe "$module" || echo "hv-init: cannot load module $module"
done

# A virtio-console (device ID 3) becomes hvc0 once virtio_console has probed it.
console_tty=""
if grep -qx 0x0003 /sys/bus/virtio/devices/*/device 2>/dev/null; then
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ -c /dev/hvc0 ] && break
    sleep 0.2
  done
  if [ -c /dev/hvc0 ]; then
    console_tty=/dev/hvc0
    exec </dev/hvc0 >/dev/hvc0 2>&1
    echo "hv-init: console on hvc0"
  else
    echo "hv-init: a virtio-console is there but /dev/hvc0 did not appear"
  fi
fi

selftest() {
  echo "selftest: uname -r $(uname -r)"
  echo "selftest: cpus online $(grep -c ^processor /proc/cpuinfo)"
  # Work on every CPU: one busy loop pinned to each, reporting where it ran.
  for cpu in $(seq 0 $(($(nproc) - 1))); do
    taskset -c "$cpu" sh -c 'i=0; while [ $i -lt 2000 ]; do i=$((i + 1)); done; echo "selftest: ran on cpu $(awk "{print \$39}" /proc/self/stat)"' &
  done
  wait
  echo "selftest: awk sum $(seq 1 1000 | awk '{ s += $1 * $1 } END { print s }')"
  echo "selftest: sha256 $(sha256sum /etc/hv-known-file | cut -d' ' -f1)"
  echo "selftest: gzip roundtrip $(gzip -c /etc/hv-known-file | gunzip -c | cmp - /etc/hv-known-file && echo ok)"
  echo "hv tmpfs line" >/tmp/written
  echo "selftest: tmpfs read $(cat /tmp/written)"
  # How long `sleep 1` takes by the kernel's clock, in centiseconds from /proc/uptime read by
  # the shell itself (no fork); starting `sleep 0` the same way first measures what starting a
  # process costs, which a loaded host makes large, and is taken off.
  read -r u0 _ </proc/uptime
  sleep 0
  read -r u1 _ </proc/uptime
  sleep 1
  read -r u2 _ </proc/uptime
  c0=${u0%.*}${u0#*.} c1=${u1%.*}${u1#*.} c2=${u2%.*}${u2#*.}
  echo "selftest: sleep 1 took $(((c2 - c1) - (c1 - c0))) cs"
  echo "selftest: epoch seconds $(date +%s)"
  echo "selftest: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
  echo "selftest: done"
}

disktest() {
  dev=${disk:-/dev/sda}
  mkdir -p /mnt
  if [ -r "/sys/block/${dev#/dev/}/serial" ]; then
    echo "disk: serial $(cat "/sys/block/${dev#/dev/}/serial")"
  fi
  if ! mount -t ext4 "$dev" /mnt; then
    echo "disk: cannot mount $dev"
    return
  fi
  echo "disk: greeting $(cat /mnt/greeting)"
  boots=$(($(cat /mnt/boots 2>/dev/null || echo 0) + 1))
  echo "$boots" >/mnt/boots
  echo "disk: boot $boots"
  head -c 65536 /dev/urandom >"/mnt/random-$boots"
  echo "disk: random-$boots $(sha256sum "/mnt/random-$boots" | cut -d' ' -f1)"
  umount /mnt && echo "disk: unmounted"
}

nettest() {
  ip link set lo up
  if ! ip addr add "$ip_address" dev eth0 || ! ip link set eth0 up; then
    echo "net: cannot configure eth0"
    return
  fi
  echo "net: driver $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
  echo "net: mac $(cat /sys/class/net/eth0/address)"
  if ping -c 3 -W 10 "$peer" >/dev/null 2>&1; then
    echo "net: ping ok"
  else
    echo "net: ping failed"
  fi
  echo "net: tcp-in $(nc "$peer" 5555 </dev/null | sha256sum | cut -d' ' -f1)"
  head -c 262144 /dev/urandom >/tmp/sent
  nc "$peer" 5556 </tmp/sent >/dev/null
  echo "net: tcp-out $(sha256sum </tmp/sent | cut -d' ' -f1)"
}

case $run in
net)
  nettest
  poweroff -f
  ;;
consolebench)
  tty=${console_tty:-/dev/ttyS0}
  awk 'BEGIN { for (i = 0; i < 16384; i++) printf "%063d\n", i }' >/tmp/lines
  read -r u0 _ </proc/uptime
  cat /tmp/lines >"$tty"
  read -r u1 _ </proc/uptime
  c0=${u0%.*}${u0#*.} c1=${u1%.*}${u1#*.}
  echo "consolebench: $tty 1048576 bytes in $((c1 - c0)) cs"
  poweroff -f
  ;;
console)
  echo "console: tty $(tty)"
  echo "console: kernel console $(cat /sys/class/tty/console/active)"
  poweroff -f
  ;;
rng)
  echo "rng: current $(cat /sys/class/misc/hw_random/rng_current)"
  echo "rng: bytes $(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
  echo "rng: interrupts $(grep -c virtio /proc/interrupts)"
  poweroff -f
  ;;
iobench)
  iobench "${disk:-/dev/sda}" "${iobench_mib:-32}"
  poweroff -f
  ;;
disk)
  disktest
  poweroff -f
  ;;
selftest)
  selftest
  poweroff -f
  ;;
poweroff) poweroff -f ;;
kallsyms)
  echo "kallsyms: begin"
  grep ' [tT] ' /proc/kallsyms
  echo "kallsyms: end"
  poweroff -f
  ;;
reboot) reboot -f ;;
esac

echo "hv-init: busybox shell on the console; poweroff -f ends the VM, reboot -f restarts it"
while true; do
  if [ -n "$console_tty" ]; then
    # cttyhack would pick the kernel's console (ttyS0); a new session opening hvc0 makes it the
    # controlling terminal instead.
    setsid sh -c "exec sh -l <>$console_tty >&0 2>&1"
  else
    setsid cttyhack sh -l
  fi
done
