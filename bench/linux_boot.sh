#!/usr/bin/env bash
# Boot time of Debian's stock cloud kernel with hv's busybox initramfs (guests/linux/) on the
# software CPU, side by side with QEMU TCG on the same kernel, initrd and command line, in the
# same run: wall time from the start of the process to the first line /init prints
# ("hv-init: started") and to the end of the process after `poweroff -f`.
#
#   bench/linux_boot.sh [build-dir]      (default build/release; RUNS=5, CPUS=1)
#
# Then, unless PROFILE=0: hv's guest-instruction count for the boot and a sampling profile of the
# guest's kernel functions (hv --profile, symbols from the guest's own /proc/kallsyms).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-5}
cpus=${CPUS:-1}
images=$(guests/linux/build-images.sh)
kernel=$images/vmlinuz
initrd=$images/initrd.img
cmdline="console=ttyS0 hv.run=poweroff"

hv=("$build/hv" run --engine emulate --kernel "$kernel" --initrd "$initrd" --cpus "$cpus"
  --memory 256M)
qemu=(qemu-system-x86_64 -accel tcg -M pc -m 256 -smp "$cpus" -display none -no-reboot
  -serial stdio -kernel "$kernel" -initrd "$initrd")

now() { date +%s.%N; }

# Prints "first-line-seconds end-seconds" for one boot of the command in "$@".
time_boot() {
  local start first="" line
  start=$(now)
  while IFS= read -r line; do
    if [[ -z $first && $line == *"hv-init: started"* ]]; then
      first=$(now)
    fi
  done < <("$@" </dev/null 2>&1)
  local end
  end=$(now)
  if [[ -z $first ]]; then
    echo "linux_boot: /init never printed its first line: $*" >&2
    exit 1
  fi
  awk -v s="$start" -v f="$first" -v e="$end" 'BEGIN { printf "%.3f %.3f\n", f - s, e - s }'
}

summarise() {
  local name=$1 file=$2
  local first end
  first=$(cut -d' ' -f1 "$file" | sort -n | awk '{ v[NR] = $1; s += $1 } END { printf "mean %.2f s (min %.2f, max %.2f)", s / NR, v[1], v[NR] }')
  end=$(cut -d' ' -f2 "$file" | sort -n | awk '{ v[NR] = $1; s += $1 } END { printf "mean %.2f s (min %.2f, max %.2f)", s / NR, v[1], v[NR] }')
  printf '%-32s to /init: %s   to poweroff: %s\n' "$name" "$first" "$end"
}

echo "kernel $(cat "$images/kernel-release"), $cpus vCPU(s), $runs runs each, interleaved"
hv_times=$(mktemp)
qemu_times=$(mktemp)
trap 'rm -f "$hv_times" "$qemu_times"' EXIT
for ((i = 0; i < runs; i++)); do
  time_boot "${hv[@]}" --cmdline "$cmdline" >>"$hv_times"
  time_boot "${qemu[@]}" -append "$cmdline" >>"$qemu_times"
done
summarise "hv run --engine emulate" "$hv_times"
summarise "qemu-system-x86_64 -accel tcg" "$qemu_times"
paste "$hv_times" "$qemu_times" | awk '{ h += $2; q += $4 } END { printf "hv / QEMU TCG, boot to poweroff: %.2fx\n", h / q }'

if [[ ${PROFILE:-1} == 1 ]]; then
  echo "== guest instructions for one boot to poweroff (hv --trace-exits)"
  "${hv[@]}" --cmdline "$cmdline" --trace-exits 2>&1 >/dev/null </dev/null | grep "instructions executed"
  echo "== where the guest's time goes (hv --profile, 1 kHz samples; kernel booted with nokaslr)"
  symbols=$images/kallsyms
  if [[ ! -s $symbols ]]; then
    # Debian's System.map is a stub: take the symbols from the running kernel itself.
    "${hv[@]}" --cmdline "console=ttyS0 hv.run=kallsyms nokaslr quiet" </dev/null 2>/dev/null |
      tr -d '\r' | sed -n '/^kallsyms: begin/,/^kallsyms: end/p' | grep ' [tT] ' >"$symbols.tmp"
    mv "$symbols.tmp" "$symbols"
  fi
  profile=$(mktemp)
  "${hv[@]}" --cmdline "$cmdline nokaslr" --profile "$profile" >/dev/null 2>&1 </dev/null
  bench/linux_profile.sh "$profile" "$symbols" "${TOP:-25}"
  rm -f "$profile"
fi
