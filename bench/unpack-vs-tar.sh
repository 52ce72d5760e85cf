#!/usr/bin/env bash
# Compares silo's layer unpack (internal/storage/archive) with GNU tar -x on
# the same ~100 MB layer, uncompressed and gzip, each run into a fresh
# directory on the same file system. Prints the median wall time of each and
# the speed ratio (tar time / silo time: >= 0.9 is the goal).
#
# usage: bench/unpack-vs-tar.sh [rounds]   (default 7; run as root for chown)
set -euo pipefail
rounds=${1:-7}
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/var/tmp}/silo-unpack-bench.XXXXXX")
# Removal happens once, at the end: deleting many files right before making
# many others is slow on this host's unjournaled ext4.
trap 'rm -rf "$work"' EXIT

go test -c -o "$work/archive.test" ./internal/storage/archive
"$work/archive.test" -test.run='^TestBenchHelper$' -silo.write-layer="$work/layer.tar" >/dev/null
echo "layer: $(du -m "$work/layer.tar" | cut -f1) MB tar, $(du -m "$work/layer.tar.gz" | cut -f1) MB gzip, $(tar -tf "$work/layer.tar" | wc -l) entries"

now() { date +%s.%N; }
declare -A times
run() { # name, command...
	local name=$1; shift
	local dir="$work/out-$name-$i"
	mkdir "$dir"
	sync
	local t0 t1
	t0=$(now)
	"$@" "$dir" >/dev/null
	t1=$(now)
	times[$name]+="$(echo "$t1 - $t0" | bc -l) "
}
silo() { "$work/archive.test" -test.run='^TestBenchHelper$' -silo.unpack="$1" -silo.unpack-into="$2"; }
tarx() { tar -xf "$1" -C "$2"; }

for i in $(seq "$rounds"); do
	# Interleaved, so drift in the machine hits every tool alike.
	run silo-tar silo "$work/layer.tar"
	run tar-tar tarx "$work/layer.tar"
	run silo-gz silo "$work/layer.tar.gz"
	run tar-gz tarx "$work/layer.tar.gz"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-22s %10s\n' "" "median s"
for k in silo-tar tar-tar silo-gz tar-gz; do
	printf '%-22s %10.3f\n' "$k" "$(echo "${times[$k]}" | median)"
done
for kind in tar gz; do
	s=$(echo "${times[silo-$kind]}" | median)
	t=$(echo "${times[tar-$kind]}" | median)
	printf 'speed ratio silo/tar (%s): %.2f\n' "$kind" "$(echo "$t / $s" | bc -l)"
done
