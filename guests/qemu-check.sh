#!/bin/sh
# Runs one guest under QEMU TCG, the reference machine, and checks that its serial output is
# byte-for-byte the expected file and that QEMU's exit status is the expected one.
#
#   qemu-check.sh IMAGE EXPECTED_OUTPUT STATUS [extra QEMU arguments...]
#
# IMAGE ending in .bin is booted as a disk (SeaBIOS loads its first sector at 0x7c00);
# anything else is given to -kernel (Multiboot). STATUS is QEMU's exit status, or "timeout"
# for a guest that must still be running after a few seconds (its output is checked anyway).
# Nothing is stripped from the output: the firmware prints nothing on the serial port.
set -u
image=$1 expected=$2 status=$3
shift 3
qemu=${QEMU:-qemu-system-x86_64}
limit=30
[ "$status" = timeout ] && limit=5

case $image in
  *.bin) boot="-drive format=raw,file=$image,if=floppy" ;;
  *) boot="-kernel $image" ;;
esac

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
timeout "$limit" "$qemu" -accel tcg -M pc -m 128 -display none -no-reboot -serial stdio \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 $boot "$@" >"$out" 2>/dev/null
rc=$?

ok=1
if [ "$status" = timeout ]; then
  [ "$rc" -eq 124 ] || { echo "expected a timeout, got exit status $rc"; ok=0; }
else
  [ "$rc" -eq "$status" ] || { echo "expected exit status $status, got $rc"; ok=0; }
fi
if ! cmp -s "$out" "$expected"; then
  echo "serial output differs from $expected:"
  diff "$expected" "$out" | head -20
  ok=0
fi
[ "$ok" -eq 1 ] && echo "ok: $(basename "$image") $* (status $rc)"
[ "$ok" -eq 1 ]
