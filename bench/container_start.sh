#!/usr/bin/env bash
# Start-to-exit latency of `run` for a bundle whose process is /bin/true (busybox-static), for hv
# and its peers crun and runc from Debian, in the same run; then each runtime's peak RSS.
#
#   bench/container_start.sh [build-dir]      (default build/release; RUNS=100; as root)
#
# crun refuses a hybrid cgroup layout (cgroup v1 controllers plus a cgroup2 mount holding some
# controllers), which is what the development machines have. So every runtime is measured in a
# private mount namespace where the cgroup2 mount is detached (a v1-only view, the same for all
# three), and hv once more on the host's real hybrid layout.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build/release}" && pwd)
runs=${RUNS:-100}
if [[ $(id -u) -ne 0 ]]; then
  echo "container_start: needs root" >&2
  exit 1
fi
missing=()
for tool in crun runc hyperfine busybox; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  pkgs=("${missing[@]/busybox/busybox-static}")
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin"
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
(cd "$bundle" && "$build/hv" oci spec)
# Not a terminal, and /bin/true as the process; everything else is the default spec.
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"\/bin\/true"/' "$bundle/config.json"

hv="$build/hv oci --root $work/hv-state run --bundle $bundle bench"
crun="crun --root $work/crun-state run --bundle $bundle bench"
runc="runc --root $work/runc-state run --bundle $bundle bench"

echo "== $(crun --version | head -1), $(runc --version | head -1), hv $(git rev-parse --short HEAD)"
echo "== v1-only view (cgroup2 mount detached in a private mount namespace), $runs runs each"
unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup/unified 2>/dev/null || true
  hyperfine -N --warmup 10 --runs $runs --export-json $work/v1.json \
    -n hv '$hv' -n crun '$crun' -n runc '$runc'"
echo "== the host's hybrid layout: hv alone (crun refuses it), $runs runs"
hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/hybrid.json" -n "hv (hybrid)" "$hv"

echo "== medians (seconds)"
for json in "$work/v1.json" "$work/hybrid.json"; do
  grep -E '"command"|"median"' "$json" | paste - - | sed -E 's/[[:space:]]*"command": "([^"]*)",[[:space:]]*"median": ([0-9.e-]+),?/\1 \2/'
done

echo "== peak RSS of the runtime process (/usr/bin/time -f %M, KiB; median of 10 runs)"
for name in hv crun runc; do
  command=${!name}
  for _ in $(seq 10); do
    unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup/unified 2>/dev/null || true
      /usr/bin/time -f %M $command" 2>&1 >/dev/null | tail -1
  done | sort -n | awk -v n="$name" '{ v[NR] = $1 } END { printf "%-5s %d KiB\n", n, v[int((NR + 1) / 2)] }'
done
