#!/usr/bin/env bash
# Folds an `hv run --profile FILE` sample list into kernel functions with the kernel's System.map
# (boot the guest with `nokaslr` so addresses match the map). Addresses below the kernel's text
# are user space; they are summed as one line.
#
#   bench/linux_profile.sh PROFILE SYSTEM_MAP [TOP=25]
set -euo pipefail
profile=$1
map=$2
top=${3:-25}
total=$(awk '!/^#/ { s += $1 } END { print s + 0 }' "$profile")
{
  # Text symbols as "address T name", samples as "address S count"; hex addresses of one width
  # sort like numbers, and a symbol sorts before samples at its own address.
  awk '$2 ~ /^[tT]$/ { printf "%016s 0 %s\n", $1, $3 }' "$map"
  awk '!/^#/ { printf "%016s 1 %s\n", $2, $1 }' "$profile"
} | LC_ALL=C sort -k1,1 -k2,2n | awk -v total="$total" -v top="$top" '
  $2 == 0 { symbol = $3; next }
  {
    name = ($1 < "ffffffff80000000") ? "[user space]" : (symbol == "" ? "[unknown]" : symbol)
    samples[name] += $3
  }
  END {
    for (name in samples) printf "%8d %6.2f%%  %s\n", samples[name], 100 * samples[name] / total, name
  }' | sort -rn | head -n "$top"
echo "(${total} samples)"
