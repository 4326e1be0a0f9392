#!/usr/bin/env bash
# Instruction rate of the software CPU against QEMU TCG on the same CPU-bound guest (cpubench:
# CRC32 + heapsort over a few MiB, once in ring 0 and once in ring 3; integer code only).
# The guest executes the same 391,676,598 instructions on every run: hv --trace-exits counts
# them, and QEMU's count comes from bench/tools/qemu_insn_count.c (a TCG plugin).
# Usage: bench/emulator_mips.sh [build-dir]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-5}
guest=$build/guests/cpubench.elf
qemu=(qemu-system-x86_64 -accel tcg -M pc -m 128 -display none -no-reboot -serial stdio
      -device isa-debug-exit,iobase=0xf4,iosize=0x04)
echo "== guest instructions (hv --trace-exits)"
# hv exits with the guest's status 1: not an error here.
{ "$build/hv" run --engine emulate --kernel "$guest" --memory 128M --trace-exits 2>&1 >/dev/null || true; } |
  grep "instructions executed"
hyperfine -N --warmup 1 --runs "$runs" -i --export-json /tmp/hv-mips.json \
  -n "hv --engine emulate (cpubench)" "$build/hv run --engine emulate --kernel $guest --memory 128M" \
  -n "qemu-system-x86_64 -accel tcg (cpubench)" "${qemu[*]} -kernel $guest" \
  -n "qemu-system-x86_64 -accel tcg (hello64: boot only)" "${qemu[*]} -kernel $build/guests/hello64.elf"
if [[ ${CALLGRIND:-1} == 1 ]]; then
  echo "== callgrind: host instructions for the whole hv run (repeatable, no timing noise)"
  { valgrind --tool=callgrind --callgrind-out-file=/tmp/hv-cpubench.callgrind \
    "$build/hv" run --engine emulate --kernel "$guest" --memory 128M 2>&1 || true; } | grep "refs"
  callgrind_annotate /tmp/hv-cpubench.callgrind 2>/dev/null | grep -E "^\s*[0-9,]+ \(" | head -12
fi
