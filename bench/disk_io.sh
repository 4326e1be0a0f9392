#!/usr/bin/env bash
# Disk throughput and IOPS seen by Debian's stock kernel on hv's software CPU, side by side with
# QEMU TCG running the same kernel, initramfs, driver and guest program in the same run.
#
#   bench/disk_io.sh [build-dir]      (default build/release; RUNS=3, MIB=32)
#
# The guest runs /bin/iobench (guests/linux/iobench.c, O_DIRECT) on its first disk: sequential
# 1 MiB writes then reads over MIB MiB, then about a second each of random 4 KiB reads and
# writes. Each configuration boots RUNS times on a fresh sparse raw image; the table gives the
# median of each figure.
#
# Configurations:
#   hv-ide    hv --disk IMG,if=ide: the emulated legacy ATA disk, PIO, Linux's pata_legacy
#   qemu-ide  QEMU's IDE disk driven by the same pata_legacy driver (pata_legacy.all=1 makes it
#             take the ports that QEMU's PIIX PCI function also decodes), PIO
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-3}
mib=${MIB:-32}
images=$(guests/linux/build-images.sh)
kernel=$images/vmlinuz
initrd=$images/initrd.img
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmdline="console=ttyS0 quiet hv.run=iobench hv.iobench=$mib hv.modules=pata_legacy,sd_mod"
cmdline+=" pata_legacy.probe_mask=1"

run_config() { # $1: name; prints "name test value unit" lines for one boot
  local name=$1 image=$work/disk.img
  rm -f "$image"
  truncate -s $((mib * 2))M "$image"
  local output
  case $name in
  hv-ide)
    output=$("$build/hv" run --engine emulate --memory 256M --kernel "$kernel" --initrd "$initrd" \
      --cmdline "$cmdline" --disk "$image,if=ide" --timeout 600 </dev/null 2>&1)
    ;;
  qemu-ide)
    output=$(qemu-system-x86_64 -accel tcg -M pc -m 256 -display none -no-reboot -serial stdio \
      -kernel "$kernel" -initrd "$initrd" -append "$cmdline pata_legacy.all=1" \
      -drive "file=$image,format=raw,if=ide" </dev/null 2>&1)
    ;;
  esac
  if ! grep -q '^iobench: rand-write' <<<"$output"; then
    echo "disk_io: $name did not finish its benchmark:" >&2
    tail -20 <<<"$output" >&2
    exit 1
  fi
  grep '^iobench: ' <<<"$output" | tr -d '\r' | awk -v n="$name" '{ print n, $2, $3, $4 }'
}

configs=(hv-ide qemu-ide)
echo "== hv $(git rev-parse --short HEAD), $(qemu-system-x86_64 --version | head -1), $(nproc) CPUs"
echo "== $runs boots per configuration, $mib MiB, kernel $(cat "$images/kernel-release")"
for ((run = 1; run <= runs; run++)); do
  for config in "${configs[@]}"; do
    run_config "$config"
  done
done >"$work/results"

echo "| configuration | seq-write MiB/s | seq-read MiB/s | rand-read IOPS | rand-write IOPS |"
echo "|---|---|---|---|---|"
for config in "${configs[@]}"; do
  row="| $config"
  for test in seq-write seq-read rand-read rand-write; do
    median=$(awk -v c="$config" -v t="$test" '$1 == c && $2 == t { print $3 }' "$work/results" |
      sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    row+=" | $median"
  done
  echo "$row |"
done
