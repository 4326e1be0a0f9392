#!/usr/bin/env bash
# Sets up a Debian 12 machine (apt-get) and runs every test hv has:
#   1. clang-format check of all C++ sources
#   2. release build with warnings as errors; unit tests and end-to-end tests (hv and QEMU TCG),
#      including Debian's cloud kernel booted on the software CPU (images fetched with apt-get
#      download into ${HV_CACHE:-~/.cache/hv}, outside the tree)
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build of the unit tests
#   4. a short libFuzzer run of the instruction decoder, the kernel loaders, the OCI config
#      parser and the virtqueues (random rings fed to a virtio device)
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

echo "== Linux guest images (Debian kernel, busybox initramfs)"
HV_LINUX_IMAGES=$(guests/linux/build-images.sh)
export HV_LINUX_IMAGES

echo "== tests"
(cd build/ci && ctest --output-on-failure -j "$jobs" --timeout 300)

echo "== sanitizer build (ASan + UBSan) of the unit tests"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHV_WERROR=ON -DHV_SANITIZE=ON \
  -DHV_BUILD_GUESTS=OFF -DHV_BUILD_BENCH=OFF >/dev/null
ninja -C build/asan -j "$jobs" hv_unit_tests
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs" --timeout 300)

echo "== fuzz smoke run (libFuzzer + ASan/UBSan, clang): decoder, kernel loaders, config.json, virtqueues, HTTP requests, 20 s each"
cmake -S . -B build/fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHV_FUZZ=ON -DHV_BUILD_GUESTS=OFF -DHV_BUILD_BENCH=OFF >/dev/null
ninja -C build/fuzz -j "$jobs" decoder_fuzz kernel_loader_fuzz oci_config_fuzz virtqueue_fuzz http_request_fuzz
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/decoder" "$corpus/loader" "$corpus/oci" "$corpus/virtqueue" "$corpus/http"
cp build/ci/guests/*.elf build/ci/guests/*.bin "$corpus/loader/" 2>/dev/null || true
build/fuzz/fuzz/decoder_fuzz -seed=1 -max_total_time=20 "$corpus/decoder" 2>&1 | tail -1
build/fuzz/fuzz/kernel_loader_fuzz -seed=1 -max_total_time=20 -max_len=65536 "$corpus/loader" 2>&1 | tail -1
build/ci/hv oci spec --bundle "$corpus/oci"
build/fuzz/fuzz/oci_config_fuzz -seed=1 -max_total_time=20 "$corpus/oci" 2>&1 | tail -1
build/fuzz/fuzz/virtqueue_fuzz -seed=1 -max_total_time=20 "$corpus/virtqueue" 2>&1 | tail -1
printf '\x20POST /v1/guests?a=b HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n' >"$corpus/http/seed"
build/fuzz/fuzz/http_request_fuzz -seed=1 -max_total_time=20 "$corpus/http" 2>&1 | tail -1
