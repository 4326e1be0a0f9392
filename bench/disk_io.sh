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
#   hv-virtio hv --disk IMG: virtio-blk over virtio-mmio (found through the DSDT), virtio_blk
# (QEMU's virtio-mmio machine, microvm, printed nothing with this kernel and initramfs within
# minutes; its virtio-blk is not measured yet.)
#
# hv runs with --trace-exits; the second table gives, per MiB moved by the whole benchmark, how
# often the guest touched the disk's registers: for IDE every access to ports 0x1f0-0x1f7 and
# 0x3f6 (each one is a VM exit on KVM), for virtio the queue notifications that reached the
# device model on a vCPU thread (on KVM each is an exit unless it rings an ioeventfd doorbell).
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
virtio_cmdline="console=ttyS0 quiet hv.run=iobench hv.iobench=$mib hv.disk=/dev/vda"

# "name accesses N" from hv's --trace-exits report: the disk's register accesses (see above).
register_accesses() { # $1: name, $2: hv's output
  awk -v n="$1" '
    $2 ~ /^0x0(1f[0-7]|3f6)$/ && ($3 == "in" || $3 == "out") { ide += $1 }
    $2 == "virtio-mmio" && $3 ~ /virtio-blk/ && $5 == "on" { virtio += $1 }
    END { print n, "accesses", (n ~ /ide/ ? ide : virtio), "count" }' <<<"$2"
}

run_config() { # $1: name; prints "name test value unit" lines for one boot
  local name=$1 image=$work/disk.img
  rm -f "$image"
  truncate -s $((mib * 2))M "$image"
  local output
  case $name in
  hv-ide)
    output=$("$build/hv" run --engine emulate --memory 256M --kernel "$kernel" --initrd "$initrd" \
      --cmdline "$cmdline" --disk "$image,if=ide" --timeout 600 --trace-exits </dev/null 2>&1)
    register_accesses "$name" "$output"
    ;;
  hv-virtio)
    output=$("$build/hv" run --engine emulate --memory 256M --kernel "$kernel" --initrd "$initrd" \
      --cmdline "$virtio_cmdline" --disk "$image" --timeout 600 --trace-exits </dev/null 2>&1)
    register_accesses "$name" "$output"
    ;;
  qemu-ide)
    output=$(timeout 600 qemu-system-x86_64 -accel tcg -M pc -m 256 -display none -no-reboot -serial stdio \
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

configs=(${CONFIGS:-hv-ide qemu-ide hv-virtio})
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

# Everything iobench moves: MIB written + MIB read sequentially, plus the random 4 KiB requests
# (IOPS x their run of about one second each).
echo
echo "| configuration | register accesses / notifications per MiB moved |"
echo "|---|---|"
for config in "${configs[@]}"; do
  awk -v c="$config" '
    $1 == c && $2 == "accesses" { a[++na] = $3 }
    $1 == c && $2 == "rand-read" { rr[++nr] = $3 } $1 == c && $2 == "rand-write" { rw[++nw] = $3 }
    END { if (na) { n = int((na + 1) / 2); mib = 2 * m + (rr[n] + rw[n]) * 4 / 1024;
                    printf "| %s | %.0f |\n", c, a[n] / mib } }' m="$mib" "$work/results"
done
