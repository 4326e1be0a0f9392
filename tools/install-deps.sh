#!/usr/bin/env bash
# Installs what hv needs to build, test and run its demo on Debian 12. Idempotent: packages that
# are already installed are not touched, and apt-get is skipped entirely when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang clang-format nasm binutils
  libfmt-dev libcli11-dev nlohmann-json3-dev libzydis-dev libxbyak-dev libseccomp-dev libcap-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhttp-parser-dev
  qemu-system-x86 util-linux hyperfine busybox-static iproute2 e2fsprogs
  podman conmon netavark crun runc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
