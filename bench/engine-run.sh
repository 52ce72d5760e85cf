#!/usr/bin/env bash
# engine-run.sh — time `silo run --rm busybox true` against
# `podman run --rm ... true` of the same busybox rootfs, and measure the host
# memory an idle running container costs silo (its silo-monitor process).
#
# Usage: bench/engine-run.sh [-n RUNS] [-m CONTAINERS]
#   -n N   interleaved runs per command (default 30, env RUNS)
#   -m N   idle containers for the memory figure (default 20, env MEM_CONTAINERS)
#   (env PAUSE: seconds to wait after every timed run, default 0.25)
# Builds nothing: run `make` first (bin/silo, bin/silod, bin/silo-monitor,
# bin/runsilo). Needs root, busybox-static and podman (podman is left out,
# with a note, when missing).
#
# The script starts its own silod on a temporary socket, data root and exec
# root, and its own podman storage (--root/--runroot in the same temporary
# directory); both are stopped and removed on exit, also on Ctrl-C.
#
# podman's default runtime here is crun, which refuses this host's hybrid
# cgroup layout (hugetlb on the cgroup2 "unified" mount): podman runs with
# --runtime runc, and the output says so.
set -euo pipefail
export LC_ALL=C

RUNS=${RUNS:-30}
MEM_CONTAINERS=${MEM_CONTAINERS:-20}
WARMUP=${WARMUP:-3}
# A pause after every run: what a run leaves to the background (silo: the
# trash, the runtime's delete, a spare; podman: its cleanup process) ends
# before the other tool's run starts, instead of slowing it.
PAUSE=${PAUSE:-0.25}
while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    -m) MEM_CONTAINERS=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "engine-run.sh: must run as root" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
for b in silo silod silo-monitor runsilo; do
  [ -x "$repo/bin/$b" ] || { echo "engine-run.sh: $repo/bin/$b missing: run make first" >&2; exit 2; }
done
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "engine-run.sh: busybox not found (apt-get install busybox-static)" >&2; exit 2; }
PODMAN=$(command -v podman || true)
RUNC=$(command -v runc || true)

work=$(mktemp -d /tmp/silo-engine-bench.XXXXXX)
sock="$work/silo.sock"
SILO=("$repo/bin/silo" -H "unix://$sock" --no-start-daemon)
PODMAN_ARGS=(--root "$work/podman/storage" --runroot "$work/podman/run" --cgroup-manager=cgroupfs
  --events-backend=file --runtime "${RUNC:-runc}")
silod_pid=
# silod's networks (bridge, nftables table) go into a namespace of the
# bench's own, deleted on exit: the machine's networking is not touched.
netns=silo-bench-$$

cleanup() {
  set +e
  if [ -n "$silod_pid" ] && kill -0 "$silod_pid" 2>/dev/null; then
    # Containers first (their monitors outlive silod), then the daemon.
    ids=$("${SILO[@]}" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "${SILO[@]}" rm -f $ids >/dev/null 2>&1
    kill "$silod_pid"
    for _ in $(seq 100); do kill -0 "$silod_pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$silod_pid" 2>/dev/null
  fi
  # Monitors of containers that rm could not reach (a crashed silod).
  for p in $(pgrep -f -- "--dir $work/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  if [ -n "$PODMAN" ] && [ -d "$work/podman" ]; then
    "$PODMAN" "${PODMAN_ARGS[@]}" rm -af >/dev/null 2>&1
    "$PODMAN" "${PODMAN_ARGS[@]}" system reset -f >/dev/null 2>&1
    # podman's cgroupfs manager leaves its (empty) conmon cgroups behind.
    for h in /sys/fs/cgroup/*/libpod_parent; do
      rmdir "$h/conmon" "$h" 2>/dev/null
    done
  fi
  # Whatever is still mounted under the work directory (sandboxes, podman's
  # overlay), deepest first.
  awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$work"
  ip netns del "$netns" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- silo -------------------------------------------------------------------
ip netns add "$netns" && ip -n "$netns" link set lo up
"$repo/bin/silod" --host "unix://$sock" --data-root "$work/data" --exec-root "$work/run" \
  --host-netns "/run/netns/$netns" >"$work/silod.log" 2>&1 &
silod_pid=$!
for _ in $(seq 200); do
  "${SILO[@]}" version >/dev/null 2>&1 && break
  kill -0 "$silod_pid" 2>/dev/null || { cat "$work/silod.log" >&2; exit 1; }
  sleep 0.05
done
"${SILO[@]}" image build-busybox >/dev/null

# --- podman: the same rootfs, imported ----------------------------------------
have_podman=0
if [ -n "$PODMAN" ]; then
  root="$work/rootfs"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  cp "$BUSYBOX" "$root/bin/busybox"
  "$BUSYBOX" --list-full | while read -r a; do
    [ "$a" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$a")"
    ln -sf /bin/busybox "$root/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -cf "$work/rootfs.tar" .
  if "$PODMAN" "${PODMAN_ARGS[@]}" import "$work/rootfs.tar" localhost/busybox >/dev/null 2>"$work/podman-import.err"; then
    have_podman=1
  else
    echo "note: podman import failed; podman left out:" >&2
    cat "$work/podman-import.err" >&2
  fi
else
  echo "note: podman not found; left out" >&2
fi

# --- timing -----------------------------------------------------------------
SILO_RUN=("${SILO[@]}" run --rm busybox true)
PODMAN_RUN=("$PODMAN" "${PODMAN_ARGS[@]}" run --rm --network none --ulimit nofile=1024:1024
  --ulimit nproc=4096:4096 localhost/busybox true)

# timed FILE CMD...: one run, its wall time in ms appended to FILE; fails
# loudly when the command does.
timed() {
  local out=$1; shift
  local t0=$EPOCHREALTIME
  if ! "$@" >/dev/null 2>"$work/err"; then
    echo "engine-run.sh: $* failed:" >&2; cat "$work/err" >&2; exit 1
  fi
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$out"
}

for ((i = 0; i < WARMUP; i++)); do
  "${SILO_RUN[@]}" >/dev/null
  [ "$have_podman" = 1 ] && "${PODMAN_RUN[@]}" >/dev/null
done
# Interleaved: silo, podman, silo, podman… so that the machine's drift
# (other work, page cache, CPU frequency) falls on both alike; the ratio is
# also taken pair by pair.
: >"$work/silo.ms"; : >"$work/podman.ms"
for ((i = 0; i < RUNS; i++)); do
  timed "$work/silo.ms" "${SILO_RUN[@]}"
  sleep "$PAUSE"
  if [ "$have_podman" = 1 ]; then
    timed "$work/podman.ms" "${PODMAN_RUN[@]}"
    sleep "$PAUSE"
  fi
done

# median FILE [FORMAT]: the median of a column of numbers (printf FORMAT,
# default %.1f).
median() {
  sort -n "$1" | awk -v f="${2:-%.1f}" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m }'
}
echo
echo "== run --rm busybox true: $RUNS interleaved runs each ($WARMUP warm-up, ${PAUSE}s pause after each run) =="
silo_med=$(median "$work/silo.ms")
printf '%-8s median %8s ms   (min %s)\n' silo "$silo_med" "$(sort -n "$work/silo.ms" | head -1)"
if [ "$have_podman" = 1 ]; then
  podman_med=$(median "$work/podman.ms")
  printf '%-8s median %8s ms   (min %s; podman %s with --runtime runc: crun refuses the hybrid cgroup layout)\n' \
    podman "$podman_med" "$(sort -n "$work/podman.ms" | head -1)" "$("$PODMAN" --version | awk '{print $3}')"
  paste "$work/silo.ms" "$work/podman.ms" | awk '{ print $1 / $2 }' >"$work/ratio"
  awk -v a="$silo_med" -v b="$podman_med" -v p="$(median "$work/ratio" %.3f)" \
    'BEGIN { printf "ratio silo/podman: %.2f of the medians, %.2f median of the pairs   (goal <= 0.25)\n", a / b, p }'
fi

# --- memory per idle container ------------------------------------------------
echo
echo "== memory: $MEM_CONTAINERS idle containers (silo run -d busybox sleep 300) =="
ids=()
for i in $(seq "$MEM_CONTAINERS"); do
  ids+=("$("${SILO[@]}" run -d busybox sleep 300)")
done
sleep 1 # let the monitors settle after start-up
pss=0 rss=0 n=0
for id in "${ids[@]}"; do
  pid=$(cat "$work/run/engine/containers/$id/state.json" 2>/dev/null |
    sed -n 's/.*"monitor_pid":\([0-9]*\).*/\1/p')
  [ -n "$pid" ] && [ -r "/proc/$pid/smaps_rollup" ] || { echo "no monitor for $id" >&2; continue; }
  read -r p r < <(awk '/^Pss:/ {p=$2} /^Rss:/ {r=$2} END {print p, r}' "/proc/$pid/smaps_rollup")
  pss=$((pss + p)) rss=$((rss + r)) n=$((n + 1))
done
if [ "$n" -gt 0 ]; then
  echo "silo-monitor processes measured: $n"
  awk -v p="$pss" -v r="$rss" -v n="$n" 'BEGIN {
    printf "per container: Pss %.0f KiB, Rss %.0f KiB   (sums: Pss %d KiB, Rss %d KiB)\n", p / n, r / n, p, r }'
fi
"${SILO[@]}" rm -f "${ids[@]}" >/dev/null
