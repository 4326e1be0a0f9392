#!/usr/bin/env bash
# Sets up a Debian 12 machine (apt-get), builds hv and boots the project's guests on the KVM
# engine, one after the other, showing each one's console and exit status.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && ninja -C build/release || exit 1
hv=build/release/hv
g=build/release/guests

show() {
  local title=$1
  shift
  printf '\n\033[1m== %s\033[0m\n$ %s\n' "$title" "$*"
  "$@" </dev/null
  printf '[exit status %d]\n' $?
}

show "hello: multiboot ELF32, UART output, debug-exit" $hv run --kernel $g/hello.elf
show "hello64: the same file entered through its ELF64 header in long mode" \
  $hv run --kernel $g/hello64.elf --format elf
show "modes: real mode -> protected mode -> paging -> long mode" \
  $hv run --kernel $g/modes.bin --format flat
show "smp: four vCPUs started by INIT-SIPI-SIPI" $hv run --kernel $g/smp.elf --cpus 4
show "a guest that triple-faults ends only itself" $hv run --kernel $g/triple.elf
show "a guest that never ends, stopped by --timeout" $hv run --kernel $g/loop.elf --timeout 1
show "1,000,000 port-I/O exits, counted" $hv run --kernel $g/outloop.elf --trace-exits
if [[ -e /sys/module/kvm_pvm ]]; then
  printf '\nThis host'"'"'s KVM is PVM, where ring-3 syscall/int 0x80 fail: the mini OS runs under QEMU TCG instead.\n'
  show "minios (QEMU TCG reference)" qemu-system-x86_64 -accel tcg -M pc -m 128 -display none \
    -no-reboot -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel $g/minios.elf
else
  show "minios: ring-0 kernel, two ring-3 programs, timer preemption, system calls" \
    $hv run --kernel $g/minios.elf
fi
