#!/usr/bin/env bash
# Cold start: process start to exit for the hello guest, hv's KVM engine against QEMU with KVM on
# the same guest (multiboot), measured by hyperfine in the same run. QEMU boots SeaBIOS first,
# which takes seconds on a PVM host, so it gets fewer runs (QEMU_RUNS).
# Usage: bench/cold_start.sh [build-dir]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-200}
qemu_runs=${QEMU_RUNS:-10}
hello=$build/guests/hello.elf
[[ -x $build/hv ]] || { echo "build hv first: cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C $build" >&2; exit 1; }
# Both exit with status 1 (the guest writes 0 to the debug-exit port): -i accepts it.
hyperfine -N --warmup 20 --runs "$runs" -i --export-json /tmp/hv-cold-start-hv.json \
  -n "hv run --engine kvm (hello.elf)" "$build/hv run --engine kvm --kernel $hello --memory 128M"
hyperfine -N --warmup 1 --runs "$qemu_runs" -i --export-json /tmp/hv-cold-start-qemu.json \
  -n "qemu-system-x86_64 -accel kvm (hello.elf)" \
  "qemu-system-x86_64 -accel kvm -M pc -m 128 -display none -no-reboot -nodefaults -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel $hello"
# Where hv's time goes: wall time of each KVM setup/teardown system call in one run.
echo "== hv system calls slower than 0.2 ms in one run (strace -T)"
strace -f -T -e trace=ioctl,close,mmap,munmap,exit_group "$build/hv" run --engine kvm \
  --kernel "$hello" --memory 128M </dev/null 2>&1 >/dev/null |
  awk -F'<' '/</ { t = $NF; sub(">", "", t); if (t + 0 > 0.0002) print }' | cut -c1-150
