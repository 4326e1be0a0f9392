#!/usr/bin/env bash
# Sets up a Debian 12 machine (apt-get) and runs every test hv has:
#   1. clang-format check of all C++ sources
#   2. release build with warnings as errors; unit tests and end-to-end tests (hv and QEMU TCG)
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build of the unit tests
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

tools/install-deps.sh

echo "== clang-format check"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc' 2>/dev/null || find src tests bench -name '*.[ch]pp')
clang-format --dry-run -Werror "${sources[@]}"

echo "== build (warnings as errors)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHV_WERROR=ON >/dev/null
ninja -C build/ci -j "$jobs"

echo "== tests"
(cd build/ci && ctest --output-on-failure -j "$jobs" --timeout 300)

echo "== sanitizer build (ASan + UBSan) of the unit tests"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHV_WERROR=ON -DHV_SANITIZE=ON \
  -DHV_BUILD_GUESTS=OFF -DHV_BUILD_BENCH=OFF >/dev/null
ninja -C build/asan -j "$jobs" hv_unit_tests
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs" --timeout 300)
