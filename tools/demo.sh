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
  printf '\nThis host'"'"'s KVM is PVM, where ring-3 syscall/int 0x80 fail: the mini OS runs on the software CPU.\n'
else
  show "minios on KVM: ring-0 kernel, two ring-3 programs, timer preemption, system calls" \
    $hv run --kernel $g/minios.elf
fi

printf '\n\033[1m== The same guests on the software CPU (no /dev/kvm needed)\033[0m\n'
show "modes on the emulator" $hv run --engine emulate --kernel $g/modes.bin --format flat
show "minios on the emulator: ring 3, syscall and int 0x80, PIT preemption, killed programs" \
  $hv run --engine emulate --kernel $g/minios.elf
show "smp on the emulator: four software CPUs on four host threads" \
  $hv run --engine emulate --kernel $g/smp.elf --cpus 4
show "cpubench on the emulator: 392 million guest instructions" \
  $hv run --engine emulate --kernel $g/cpubench.elf --trace-exits

printf '\n\033[1m== Debian'"'"'s stock cloud kernel on the software CPU\033[0m\n'
guests/linux/build-images.sh >/dev/null || exit 1
show "Linux on two software CPUs: boot, a self-test in the busybox initramfs, poweroff" \
  $hv run --demo linux --cpus 2 --cmdline "console=ttyS0 hv.run=selftest"
printf '\nFor a shell in that guest: %s run --demo linux   (poweroff -f or Ctrl-A x to leave)\n' "$hv"
