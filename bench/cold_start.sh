#!/usr/bin/env bash
# Cold start: process start to exit for the hello guest, hv's KVM engine against QEMU with KVM on
# the same guest (multiboot), measured by hyperfine in the same run.
# Usage: bench/cold_start.sh [build-dir]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-200}
hello=$build/guests/hello.elf
[[ -x $build/hv ]] || { echo "build hv first: cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C $build" >&2; exit 1; }
qemu=(qemu-system-x86_64 -accel kvm -M pc -m 128 -display none -no-reboot -nodefaults
      -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$hello")
# Both exit with status 1 (the guest writes 0 to the debug-exit port).
hyperfine -N --warmup 20 --runs "$runs" -i --export-json "${OUT_JSON:-/tmp/hv-cold-start.json}" \
  -n "hv run --engine kvm (hello.elf)" "$build/hv run --engine kvm --kernel $hello --memory 128M" \
  -n "qemu-system-x86_64 -accel kvm (hello.elf)" "${qemu[*]}"
