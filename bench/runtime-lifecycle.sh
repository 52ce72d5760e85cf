#!/usr/bin/env bash
# runtime-lifecycle.sh — time "RUNTIME --root DIR run -b BUNDLE ID" of /bin/true
# (create + start + wait + delete in one command) for runsilo, runc and crun,
# interleaved round-robin so that drift on the machine hits all runtimes alike,
# and measure each runtime's peak RSS during "run". With --exec, time
# "RUNTIME --root DIR exec ID /bin/true" in a running container instead.
#
# Usage: bench/runtime-lifecycle.sh [-n ITERATIONS] [-r RSS_RUNS] [--exec] [--hyperfine]
#   -n N          timed runs per runtime (default 100, env ITERATIONS)
#   -r N          runs under /usr/bin/time for the peak RSS (default 10, env RSS_RUNS)
#   --exec        time exec of /bin/true in a running container (one per runtime)
#   --hyperfine   also run hyperfine -N per runtime (not interleaved) as a cross-check
# Runtimes: env RUNSILO (default: <repo>/bin/runsilo), RUNC, CRUN (default: from PATH);
# a missing runtime is left out. Needs root, busybox-static, util-linux (unshare, nsenter).
#
# Every invocation of every runtime runs inside one private mount namespace
# without the cgroup2 "unified" mount (made once, kept by a bind mount of its
# nsfs file, entered with nsenter --mount=FILE RUNTIME ...), because crun 1.8
# refuses this host's hybrid cgroup layout (hugetlb on the cgroup2 mount). All
# three get the same wrapper; it costs the same fixed ~1.5 ms (an nsenter) for
# each.
set -euo pipefail
export LC_ALL=C

ITERATIONS=${ITERATIONS:-100}
RSS_RUNS=${RSS_RUNS:-10}
WARMUP=${WARMUP:-5}
HYPERFINE=0
MODE=run
while [ $# -gt 0 ]; do
  case $1 in
    -n) ITERATIONS=$2; shift 2 ;;
    -r) RSS_RUNS=$2; shift 2 ;;
    --hyperfine) HYPERFINE=1; shift ;;
    --exec) MODE=exec; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "runtime-lifecycle.sh: must run as root" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "busybox not found (apt-get install busybox-static)" >&2; exit 2; }

declare -A RT=()
names=()
add_rt() { # name path
  if [ -n "$2" ] && [ -x "$2" ]; then RT[$1]=$(readlink -f "$2"); names+=("$1")
  else echo "note: $1 not found${2:+ at $2}; left out" >&2; fi
}
add_rt runsilo "${RUNSILO:-$repo/bin/runsilo}"
add_rt runc "${RUNC:-$(command -v runc || true)}"
add_rt crun "${CRUN:-$(command -v crun || true)}"
[ ${#names[@]} -gt 0 ] || { echo "no runtime to benchmark" >&2; exit 2; }

CGROUP_PARENT=/silo-bench-$$
work=$(mktemp -d /tmp/silo-bench.XXXXXX)
cleanup() {
  set +e
  for n in "${names[@]}"; do
    for d in "$work/state-$n"/*/; do
      [ -d "$d" ] && wrap "${RT[$n]}" --root "$work/state-$n" delete -f "$(basename "$d")" >/dev/null 2>&1
    done
  done
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CGROUP_PARENT" ] && find "$h$CGROUP_PARENT" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  umount "$work/ns/mnt" 2>/dev/null; umount "$work/ns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The private mount namespace without the cgroup2 mount, made once and kept
# by a bind mount of its nsfs file; every run enters it with nsenter.
mkdir -p "$work/ns"
mount --bind "$work/ns" "$work/ns"
mount --make-private "$work/ns"
: > "$work/ns/mnt"
unshare --mount="$work/ns/mnt" sh -c 'umount -l /sys/fs/cgroup/unified 2>/dev/null || true'

# wrap CMD...: run CMD in that mount namespace.
wrap() {
  nsenter --mount="$work/ns/mnt" "$@"
}

# The bundle: busybox rootfs, config from "runc spec" with args ["/bin/true"]
# (for --exec, a sleep that the timed execs join).
bundle=$work/bundle
mkdir -p "$bundle/rootfs"/{bin,etc,proc,sys,dev,tmp}
cp "$BUSYBOX" "$bundle/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nsilo:x:1000:1000:silo:/home/silo:/bin/sh\n' > "$bundle/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\nsilo:x:1000:\n' > "$bundle/rootfs/etc/group"
spec_rt=${RT[runc]:-${RT[${names[0]}]}}
(cd "$bundle" && "$spec_rt" spec)
args='["/bin/true"]'
[ "$MODE" = exec ] && args='["/bin/sleep","1000000"]'
if command -v jq >/dev/null; then
  jq --arg cg "$CGROUP_PARENT/c" --argjson args "$args" '.process.terminal=false | .process.args=$args | .root.readonly=true | .linux.cgroupsPath=$cg' \
    "$bundle/config.json" > "$bundle/config.json.new"
else
  [ "$MODE" = exec ] && { echo "--exec needs jq" >&2; exit 2; }
  sed -e 's/"terminal": true/"terminal": false/' -e 's/^\(\t\t\t\)"sh"$/\1"\/bin\/true"/' \
    -e "s|\"linux\": {|\"linux\": {\n\t\t\"cgroupsPath\": \"$CGROUP_PARENT/c\",|" "$bundle/config.json" > "$bundle/config.json.new"
fi
mv "$bundle/config.json.new" "$bundle/config.json"

# timed NAME ID: the arguments of the timed command of runtime NAME.
timed() {
  if [ "$MODE" = exec ]; then echo "exec" "x-$1" /bin/true; else echo "run" "-b" "$bundle" "$2"; fi
}

# one NAME ID: one timed command of runtime NAME, output discarded; fails loudly.
one() {
  local n=$1 id=$2
  # shellcheck disable=SC2046 # the words of timed (no spaces in them)
  if ! wrap "${RT[$n]}" --root "$work/state-$n" $(timed "$n" "$id") >/dev/null 2>"$work/err"; then
    echo "$n $MODE failed:" >&2; cat "$work/err" >&2; exit 1
  fi
}

what="run -b BUNDLE ID of /bin/true"
[ "$MODE" = exec ] && what="exec ID /bin/true in a running container"
echo "runtime-lifecycle: $ITERATIONS interleaved runs of '$(IFS=,; echo "${names[*]}")' ($what), $WARMUP warm-up runs each"
echo "all runtimes run under: nsenter --mount=NS RUNTIME ..., NS a mount namespace without /sys/fs/cgroup/unified (crun 1.8 needs it on this hybrid host; applied to all for fairness)"
for n in "${names[@]}"; do
  echo "  $n: ${RT[$n]} ($("${RT[$n]}" --version 2>/dev/null | head -1))"
  mkdir -p "$work/state-$n"; : > "$work/times-$n"; : > "$work/rss-$n"
  if [ "$MODE" = exec ]; then
    wrap "${RT[$n]}" --root "$work/state-$n" run -d -b "$bundle" "x-$n" </dev/null >/dev/null 2>"$work/err" ||
      { echo "$n run -d failed:" >&2; cat "$work/err" >&2; exit 1; }
  fi
done

for ((i = 0; i < WARMUP; i++)); do
  for n in "${names[@]}"; do one "$n" "w-$n-$i"; done
done

# Interleaved timing loop: EPOCHREALTIME has microsecond resolution and adds
# the same fork/exec overhead of bash to every runtime. The load average
# before and after says how busy the (shared) machine was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 0; i < ITERATIONS; i++)); do
  for n in "${names[@]}"; do
    t0=$EPOCHREALTIME
    one "$n" "b-$n-$i"
    t1=$EPOCHREALTIME
    echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' >> "$work/times-$n"
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak RSS: /usr/bin/time %M (KiB) of the runtime process (and the children
# it waited for), inside the same wrapper.
TIME_BIN=/usr/bin/time
if [ -x "$TIME_BIN" ]; then
  for ((i = 0; i < RSS_RUNS; i++)); do
    for n in "${names[@]}"; do
      # shellcheck disable=SC2046
      wrap "$TIME_BIN" -f %M -o "$work/rss-one" "${RT[$n]}" --root "$work/state-$n" $(timed "$n" "r-$n-$i") >/dev/null 2>&1 || true
      tail -1 "$work/rss-one" >> "$work/rss-$n"
    done
  done
else
  echo "note: /usr/bin/time missing (apt-get install time): no RSS figures" >&2
fi

# stats FILE: "median min max p90" of a column of numbers.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "- - - -"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = v[int(NR * 0.9 + 0.999)]
    printf "%.2f %.2f %.2f %.2f\n", m, v[1], v[NR], p }'
}

echo
echo "load average (1, 5, 15 min) before the timed runs: $load_before; after: $load_after"
printf '%-8s %6s %10s %9s %9s %9s %14s\n' runtime runs median_ms min_ms max_ms p90_ms peak_rss_KiB
declare -A MED=()
for n in "${names[@]}"; do
  read -r med min max p90 < <(stats "$work/times-$n")
  read -r rss _ < <(stats "$work/rss-$n")
  MED[$n]=$med
  printf '%-8s %6d %10s %9s %9s %9s %14s\n' "$n" "$(wc -l < "$work/times-$n")" "$med" "$min" "$max" "$p90" "${rss%.00}"
done

ratio() { # A B
  if [ -n "${MED[$1]:-}" ] && [ -n "${MED[$2]:-}" ]; then
    awk -v a="${MED[$1]}" -v b="${MED[$2]}" -v x="$1" -v y="$2" 'BEGIN { printf "ratio %s/%s (median): %.2f\n", x, y, a / b }'
  else
    echo "ratio $1/$2: n/a ($1 or $2 not benchmarked)"
  fi
}
echo
ratio runsilo crun
ratio runsilo runc
ratio runc crun

if [ "$HYPERFINE" = 1 ]; then
  if command -v hyperfine >/dev/null; then
    echo
    echo "hyperfine cross-check (per runtime, not interleaved):"
    for n in "${names[@]}"; do
      # hyperfine gives the command no unique id: run through a counter file.
      cat > "$work/hf-$n.sh" <<EOF
#!/bin/sh
c=\$(cat "$work/hf-count-$n" 2>/dev/null || echo 0); echo \$((c + 1)) > "$work/hf-count-$n"
exec nsenter --mount="$work/ns/mnt" "${RT[$n]}" --root "$work/state-$n" $(timed "$n" "hf-$n-\$c")
EOF
      chmod +x "$work/hf-$n.sh"
      hyperfine -N --warmup "$WARMUP" --runs "$ITERATIONS" --export-json "$work/hf-$n.json" "$work/hf-$n.sh" >/dev/null
      awk -v n="$n" -F'[:,]' '/"median"/ { printf "  %-8s median %.2f ms\n", n, $2 * 1000 }' "$work/hf-$n.json"
    done
  else
    echo "note: hyperfine not installed; cross-check skipped" >&2
  fi
fi
