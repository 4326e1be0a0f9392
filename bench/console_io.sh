#!/usr/bin/env bash
# Console output through the emulated 16550 UART against the virtio-console, with Debian's stock
# kernel on hv's software CPU, and the UART under QEMU TCG as the peer.
#
#   bench/console_io.sh [build-dir]      (default build/release; RUNS=3)
#
# The guest (hv.run=consolebench) writes 1 MiB of 64-byte text lines to its console terminal:
# /dev/ttyS0 (Linux's 8250 driver, one port write per byte plus status reads) or /dev/hvc0
# (virtio_console, buffers handed over by reference). It reports the time by its own clock; hv's
# --trace-exits gives how often the guest touched the device: UART ports 0x3f8-0x3ff (each a VM
# exit on KVM) or virtio-console queue notifications that reached the device on a vCPU thread.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-3}
images=$(guests/linux/build-images.sh)
kernel=$images/vmlinuz
initrd=$images/initrd.img
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmdline="console=ttyS0 quiet hv.run=consolebench"

run_config() { # $1: name; prints "name seconds accesses" for one boot
  local name=$1 output
  case $name in
  hv-uart)
    output=$("$build/hv" run --engine emulate --kernel "$kernel" --initrd "$initrd" \
      --cmdline "$cmdline" --timeout 600 --trace-exits </dev/null 2>&1)
    ;;
  hv-virtio-console)
    output=$("$build/hv" run --engine emulate --kernel "$kernel" --initrd "$initrd" \
      --cmdline "$cmdline" --console virtio --timeout 600 --trace-exits </dev/null 2>&1)
    ;;
  qemu-uart)
    output=$(timeout 600 qemu-system-x86_64 -accel tcg -M pc -m 256 -display none -no-reboot \
      -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline" </dev/null 2>&1)
    ;;
  esac
  local line
  line=$(grep -a '^consolebench: ' <<<"$output" | tr -d '\r' | tail -1)
  if [[ -z $line ]]; then
    echo "console_io: $name did not finish its benchmark:" >&2
    tail -20 <<<"$output" >&2
    exit 1
  fi
  awk -v n="$name" -v line="$line" '
    $2 ~ /^0x03f[89a-f]$/ && ($3 == "in" || $3 == "out") { uart += $1 }
    $2 == "virtio-mmio" && $3 ~ /virtio-console/ && $5 == "on" { virtio += $1 }
    END { split(line, f, " "); cs = f[6];
          accesses = n ~ /virtio/ ? virtio : (n ~ /^hv/ ? uart : "-");
          print n, cs / 100, accesses }' <<<"$output"
}

configs=(${CONFIGS:-hv-uart hv-virtio-console qemu-uart})
echo "== hv $(git rev-parse --short HEAD), $(qemu-system-x86_64 --version | head -1), $(nproc) CPUs"
echo "== $runs boots per configuration, 1 MiB to the console, kernel $(cat "$images/kernel-release")"
for ((run = 1; run <= runs; run++)); do
  for config in "${configs[@]}"; do
    run_config "$config"
  done
done >"$work/results"

echo "| configuration | seconds for 1 MiB (guest clock) | MiB/s | device accesses per MiB |"
echo "|---|---|---|---|"
for config in "${configs[@]}"; do
  sort -k2 -n "$work/results" | awk -v c="$config" '$1 == c { s[++n] = $2; a[n] = $3 }
    END { m = int((n + 1) / 2); printf "| %s | %.2f | %.2f | %s |\n", c, s[m],
          (s[m] > 0 ? 1 / s[m] : 0), a[m] }'
done
