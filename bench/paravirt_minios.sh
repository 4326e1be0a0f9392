#!/usr/bin/env bash
# The project's mini OS with emulated devices (minios.elf: 16550 UART for its console, the PIT
# for its scheduler tick) against its para-virtual build (minios-pv.elf: CONSOLE_WRITE and
# SET_TIMER hypercalls, docs/hypercalls.md) on hv's software CPU. Both print the same output.
#
#   bench/paravirt_minios.sh [build-dir]      (default build/release; RUNS=21)
#
# Gives the median wall time of a whole run (hv start to exit) and, from one --trace-exits run,
# how often the guest touched the UART (ports 0x3f8-0x3ff) and the PIT (0x40-0x43) and how many
# hypercalls it made: on KVM every one of those is a VM exit. The wall time is bound by the
# guest's 100 Hz scheduler tick (its programs wait for about eight ticks), not by the devices.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-21}

echo "== hv $(git rev-parse --short HEAD), $(nproc) CPUs, $runs runs each, --engine emulate"
echo "| guest | median ms | UART accesses | PIT accesses | hypercalls |"
echo "|---|---|---|---|---|"
for guest in minios minios-pv; do
  image=$build/guests/$guest.elf
  times=()
  for ((i = 0; i < runs; i++)); do
    start=$(date +%s%N)
    "$build/hv" run --engine emulate --kernel "$image" --timeout 60 >/dev/null 2>&1 || true
    times+=($((($(date +%s%N) - start) / 1000)))
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }')
  report=$("$build/hv" run --engine emulate --kernel "$image" --timeout 60 --trace-exits 2>&1 >/dev/null || true)
  awk -v g="$guest" -v m="$median" '
    $2 ~ /^0x03f[89a-f]$/ && ($3 == "in" || $3 == "out") { uart += $1 }
    $2 ~ /^0x004[0-3]$/ && ($3 == "in" || $3 == "out") { pit += $1 }
    $2 ~ /^[0-9]+$/ && $3 ~ /^[A-Z_]+$/ { hypercalls += $1 }
    END { printf "| %s | %s | %d | %d | %d |\n", g, m, uart, pit, hypercalls }' <<<"$report"
done

# The peer: QEMU TCG running the emulated build (the para-virtual one falls back to the UART and
# the PIT there, hv's hypercalls being absent), machine as in guests/qemu-check.sh.
if command -v qemu-system-x86_64 >/dev/null; then
  times=()
  for ((i = 0; i < runs; i++)); do
    start=$(date +%s%N)
    timeout 60 qemu-system-x86_64 -accel tcg -M pc -m 128 -display none -no-reboot -serial null \
      -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$build/guests/minios.elf" \
      >/dev/null 2>&1 || true
    times+=($((($(date +%s%N) - start) / 1000)))
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }')
  echo "| minios on $(qemu-system-x86_64 --version | head -1 | awk '{ print "QEMU", $4 }') TCG | $median | - | - | - |"
fi
