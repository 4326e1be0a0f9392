#!/usr/bin/env bash
# Fetches Debian's stock cloud kernel and busybox-static with apt-get download and builds the
# initramfs hv's Linux tests, demo and benchmarks boot. Everything goes to a cache outside the
# source tree (never committed); a second run only checks that the cache is complete.
#
#   guests/linux/build-images.sh [CACHE_DIR]     default: ${HV_CACHE:-$HOME/.cache/hv}/linux
#
# Prints the cache directory on stdout. It then holds:
#   vmlinuz         the kernel (bzImage) from linux-image-<version>-cloud-amd64
#   initrd.img      a gzip'd cpio archive: busybox-static, /init (init.sh), /bin/iobench
#                   (iobench.c, static) and the kernel modules
#                   of the devices hv offers (virtio over MMIO, the legacy IDE disk) with what
#                   they depend on, from the same package, with their modules.dep
#   kernel-release  the kernel's `uname -r`
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${HV_CACHE:-$HOME/.cache/hv}/linux}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

need_tool() {
  local tool=$1 package=$2
  if ! command -v "$tool" >/dev/null; then
    echo "build-images: installing $package for $tool" >&2
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >&2
  fi
}
need_tool cpio cpio
need_tool dpkg-deb dpkg
need_tool gcc gcc

# The init script is part of the cache key, so editing it rebuilds the initramfs.
stamp="$(sha256sum "$here/init.sh" "$here/iobench.c" "$0" | sha256sum | cut -c1-16)"
if [[ -s $cache/vmlinuz && -s $cache/initrd.img && -s $cache/kernel-release &&
  "$(cat "$cache/stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$cache"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Resolve the meta package to the versioned image package it depends on.
resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
package=$(resolve)
if [[ -z $package ]]; then
  echo "build-images: apt has no list of linux-image-cloud-amd64 yet: apt-get update" >&2
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq >&2
  package=$(resolve)
fi
if [[ -z $package ]]; then
  echo "build-images: cannot resolve linux-image-cloud-amd64 to a versioned kernel package" >&2
  exit 1
fi
release=${package#linux-image-}
echo "build-images: $package and busybox-static into $cache" >&2
# apt's download sandbox user cannot write into a private temporary directory: as root, download
# as root (what apt falls back to anyway, with a warning).
sandbox=()
[[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
(cd "$work" && apt-get download -q "${sandbox[@]}" "$package" busybox-static >&2)
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"

root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,usr/bin,usr/sbin,lib}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
# Applets are linked at build time so /init's shebang and the first commands need no install step.
for applet in $("$root/bin/busybox" --list-full); do
  [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$here/init.sh" "$root/init"
# The disk benchmark's guest side (bench/disk_io.sh), static: the initramfs has no C library.
gcc -O2 -static -Wall -Wextra -Werror -o "$root/bin/iobench" "$here/iobench.c"
# Modules: the drivers of hv's devices and, from modules.dep (busybox depmod over the package's
# whole tree), everything they need; /init loads them with modprobe.
wanted=(virtio_mmio virtio_blk virtio_net virtio_console virtio-rng pata_legacy sd_mod)
modules=$work/kernel/lib/modules/$release
"$root/bin/busybox" depmod -b "$work/kernel" "$release"
declare -A closure=()
add_module() { # $1: path relative to $modules
  [[ -n ${closure[$1]:-} ]] && return
  closure[$1]=1
  local dep
  for dep in $(awk -v m="$1:" '$1 == m { for (i = 2; i <= NF; i++) print $i }' "$modules/modules.dep"); do
    add_module "$dep"
  done
}
for name in "${wanted[@]}"; do
  path=$(awk -F: -v n="/$name.ko" 'index($1, n) == length($1) - length(n) + 1 { print $1; exit }' "$modules/modules.dep")
  if [[ -z $path ]]; then
    echo "build-images: $package has no module $name" >&2
    exit 1
  fi
  add_module "$path"
done
for path in "${!closure[@]}"; do
  mkdir -p "$root/lib/modules/$release/$(dirname "$path")"
  cp "$modules/$path" "$root/lib/modules/$release/$path"
done
cp "$modules"/modules.{order,builtin} "$root/lib/modules/$release/" 2>/dev/null || true
"$root/bin/busybox" depmod -b "$root" "$release"

printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
# The known file the end-to-end test hashes: 64 KiB of a fixed pattern.
awk 'BEGIN { for (i = 0; i < 4096; i++) printf "hv-known-file-%08d\n", i * 7919 }' >"$root/etc/hv-known-file"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) |
  gzip -9 >"$work/initrd.img"

rm -f "$cache/kallsyms" # bench/linux_boot.sh's symbols of the previous kernel
cp "$work/kernel/boot/vmlinuz-$release" "$cache/vmlinuz"
mv "$work/initrd.img" "$cache/initrd.img"
echo "$release" >"$cache/kernel-release"
echo "$stamp" >"$cache/stamp"
echo "$cache"
