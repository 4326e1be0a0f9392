#!/usr/bin/env bash
# Exit round trip: port-I/O exits per second. The outloop guest executes 1,000,000 `out` to port
# 0x80, each a VM exit to the VMM's user space and back; hv and QEMU (KVM) run the same guest.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-5}
guest=$build/guests/outloop.elf
hyperfine -N --warmup 1 --runs "$runs" -i --export-json /tmp/hv-exits.json \
  -n "hv (outloop, 1M port exits)" "$build/hv run --engine kvm --kernel $guest --memory 128M" \
  -n "qemu kvm (outloop, 1M port exits)" \
  "qemu-system-x86_64 -accel kvm -M pc -m 128 -display none -no-reboot -nodefaults -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel $guest"
"$build/hv" run --engine kvm --kernel "$guest" --memory 128M --trace-exits 2>&1 >/dev/null | grep -v "^hv: note"
