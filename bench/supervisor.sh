#!/usr/bin/env bash
# The supervisor through its API: guests created and started per second (micro-VMs on KVM,
# containers), request latency, the VMM's memory overhead for an idle 128 MiB 1-vCPU micro-VM,
# and what idle micro-VMs cost. Peers in the same run: QEMU's memory for the same guest (KVM
# where it runs, else TCG), and crun's sequential `run` rate for the container.
#
#   bench/supervisor.sh [build-dir] [idle counts...]     (default build/release; 50 100 200; root)
#
# The state directory is on /run (tmpfs), the supervisor's default: records are fsync'ed, which
# on a disk would dominate the create latency.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build/release}" && pwd)
shift || true
idle_counts=("$@")
((${#idle_counts[@]})) || idle_counts=(50 100 200)
if [[ $(id -u) -ne 0 ]]; then
  echo "supervisor.sh: needs root" >&2
  exit 1
fi
for tool in crun qemu-system-x86_64 busybox; do
  command -v "$tool" >/dev/null || { echo "supervisor.sh: $tool missing (tools/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d /run/hv-bench-XXXXXX)
serve_pid=""
cleanup() {
  [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rootfs/bin"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
ln -s busybox "$work/rootfs/bin/true"

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $(date -u +%F)"
"$build/hv" serve --state-dir "$work/state" --socket "$work/hv.sock" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do [[ -S $work/hv.sock ]] && break; sleep 0.05; done
"$build/bench/hv_api_bench" "$work/hv.sock" "$build/guests" "$work/rootfs" "${idle_counts[@]}"
echo "supervisor RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$serve_pid/status)"

# Peer: QEMU's resident memory for the same idle guest, minus its guest RAM.
qemu_memory() {
  local accel=$1
  qemu-system-x86_64 -accel "$accel" -m 128 -smp 1 -kernel "$build/guests/idle.elf" \
    -display none -serial null -monitor none -no-reboot &
  local pid=$!
  sleep 3
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "qemu -accel $accel: did not run"
    return
  fi
  echo "qemu -accel $accel (128 MiB guest): $("$build/bench/hv_api_bench" --memory-of "$pid" 134217728)"
  local cpu_before cpu_after
  cpu_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sleep 10
  cpu_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  echo "qemu -accel $accel idle: $(( (cpu_after - cpu_before) * 1000 / $(getconf CLK_TCK) / 10 )) ms CPU per s"
  kill -9 "$pid"  # QEMU on this host's PVM KVM does not always end on SIGTERM
  wait "$pid" 2>/dev/null || true
}
qemu_memory kvm
qemu_memory tcg

# Peer: crun starting the same /bin/true container, one after the other, 40 times.
bundle=$work/bundle
mkdir -p "$bundle"
cp -a "$work/rootfs" "$bundle/rootfs"
(cd "$bundle" && "$build/hv" oci spec)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"\/bin\/true"/' "$bundle/config.json"
# crun refuses this host's hybrid cgroup layout; a private mount namespace without the cgroup2
# mount gives it a v1-only view (as in bench/container_start.sh).
start=$(date +%s%N)
unshare -m sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; for i in \$(seq 40); do crun --root $work/crun run --bundle $bundle c\$i >/dev/null || exit 1; done"
end=$(date +%s%N)
awk -v ns=$((end - start)) 'BEGIN { printf "crun run x40 (sequential, to exit): %.1f containers/s (%.0f ms)\n", 40 / (ns / 1e9), ns / 1e6 }'
