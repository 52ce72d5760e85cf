#!/bin/bash
# Pull bench: a 5-layer image (busybox + four layers of random data, ~60 MB
# compressed) from Debian's docker-registry on a loopback port, pulled by
# `silo pull` (download, verify, unpack every layer into the layer store)
# and copied by `skopeo copy` into an OCI directory (download and verify,
# no unpack), the same image each run and nothing of it kept between runs.
# Prints both medians and the ratio silo/skopeo.
#
# usage: sudo bench/pull-vs-skopeo.sh          (RUNS=10 by default)
# Needs root, hyperfine, skopeo, docker-registry and bin/ built (make).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
for tool in hyperfine skopeo docker-registry python3; do
	command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
[ -x bin/silo ] && [ -x bin/silod ] || { echo "bin/ not built: run make" >&2; exit 1; }

ROOT=$(mktemp -d /var/tmp/silo-bench-pull.XXXXXX)
SOCK="unix://$ROOT/silo.sock"
SILO="bin/silo --host $SOCK --no-start-daemon"
NETNS=silo-bench-pull-$$
SILOD_PID= REG_PID=

cleanup() {
	trap - EXIT INT TERM
	set +e
	[ -n "$SILOD_PID" ] && { kill "$SILOD_PID"; wait "$SILOD_PID"; } 2>/dev/null
	[ -n "$REG_PID" ] && { kill "$REG_PID"; wait "$REG_PID"; } 2>/dev/null
	ip netns del "$NETNS" 2>/dev/null
	# Nothing should be mounted under ROOT (no container runs at the end),
	# but a Ctrl-C during the build could leave a sandbox.
	awk -v r="$ROOT" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m"
	done
	rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# docker-registry on a free loopback port, its storage in ROOT.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$ROOT/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $ROOT/registry
  delete:
    enabled: true
http:
  addr: $REG
EOF
docker-registry serve "$ROOT/registry.yml" >"$ROOT/registry.log" 2>&1 &
REG_PID=$!

# A private silod; its networks (the build's RUN containers) live in a
# namespace of the bench's own.
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
bin/silod --host "$SOCK" --data-root "$ROOT/data" --exec-root "$ROOT/run" --cgroup-parent /silo-bench-pull \
	--host-netns "/run/netns/$NETNS" >"$ROOT/silod.log" 2>&1 &
SILOD_PID=$!
for _ in $(seq 200); do
	$SILO version >/dev/null 2>&1 && curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break
	sleep 0.05
done
$SILO version >/dev/null || { echo "silod did not start:" >&2; cat "$ROOT/silod.log" >&2; exit 1; }
curl -fsS "http://$REG/v2/" >/dev/null || { echo "registry did not start:" >&2; cat "$ROOT/registry.log" >&2; exit 1; }

# The image: busybox and four RUN layers of random (incompressible) data.
IMG=$REG/bench/pull:5
$SILO image build-busybox >/dev/null
mkdir "$ROOT/ctx"
cat >"$ROOT/ctx/Dockerfile" <<'DF'
FROM busybox
RUN head -c 4194304 /dev/urandom > /a
RUN head -c 12582912 /dev/urandom > /b
RUN head -c 16777216 /dev/urandom > /c
RUN head -c 25165824 /dev/urandom > /d
DF
$SILO build -q -t "$IMG" "$ROOT/ctx" >/dev/null
$SILO push "$IMG" >/dev/null
LAYERS=$($SILO image inspect -f '{{len .RootFS.Layers}}' "$IMG")
[ "$LAYERS" = 5 ] || { echo "the image has $LAYERS layers, want 5" >&2; exit 1; }
# Removing an image frees its layers in the background (moved to the
# store's trash, then deleted): the prepare step waits until the layer
# store is empty, so no deletion overlaps a timed pull.
cat >"$ROOT/rm-image.sh" <<EOF
#!/bin/sh
$SILO image rm "\$1" >/dev/null 2>&1 || true
for _ in \$(seq 600); do
	[ "\$(ls -A "$ROOT/data/image/layers")" = .trash ] && [ -z "\$(ls -A "$ROOT/data/image/layers/.trash")" ] && exit 0
	sleep 0.05
done
echo "layer store not emptied" >&2
exit 1
EOF
chmod +x "$ROOT/rm-image.sh"
# Empty the store: every pull below downloads and unpacks all 5 layers.
$SILO image rm "$IMG" >/dev/null
$SILO builder prune >/dev/null
"$ROOT/rm-image.sh" busybox
[ -z "$($SILO images -q)" ] || { echo "images left in the store" >&2; exit 1; }
EMPTY=$(du -sx --block-size=1 "$ROOT/data/image" | cut -f1)

BYTES=$(python3 - "$ROOT/registry" <<'PY'
import os, sys
# The blobs (layers, config) of the pushed image as the registry stores them.
total = 0
for d, _, files in os.walk(os.path.join(sys.argv[1], "docker/registry/v2/blobs")):
    if "data" in files:
        total += os.path.getsize(os.path.join(d, "data"))
print(total)
PY
)
echo "image $IMG: $LAYERS layers, $((BYTES / 1048576)) MiB of blobs in the registry"

# One pull by hand, checked: everything downloaded and unpacked (the
# store grows by at least the blobs), then all of it removed again by the
# prepare step.
$SILO pull "$IMG" >/dev/null
FULL=$(du -sx --block-size=1 "$ROOT/data/image" | cut -f1)
if [ $((FULL - EMPTY)) -lt "$BYTES" ]; then
	echo "a pull grew the store by $(((FULL - EMPTY) / 1024)) KiB only, less than the blobs" >&2
	exit 1
fi
"$ROOT/rm-image.sh" "$IMG"
AFTER=$(du -sx --block-size=1 "$ROOT/data/image" | cut -f1)
if [ $((AFTER - EMPTY)) -gt 1048576 ]; then
	echo "image rm left $(((AFTER - EMPTY) / 1024)) KiB in the store: pulls would not start from empty" >&2
	du -x --max-depth=3 "$ROOT/data/image" | sort -n | tail -8 >&2; ls -la "$ROOT/data/image/layers" >&2
	exit 1
fi

# Interleaved: one hyperfine round per pair (prepare untimed), so drift
# in the load of the shared machine hits both tools alike; the ratio is
# taken per round too (paired), then its median.
hf() { # round, extra hyperfine options...
	local round=$1; shift
	hyperfine -N --style none "$@" --export-json "$ROOT/hf-$round.json" \
		--prepare "$ROOT/rm-image.sh $IMG" -n "silo pull" "$SILO pull $IMG" \
		--prepare "rm -rf $ROOT/oci" -n "skopeo copy" \
		"skopeo copy -q --src-tls-verify=false docker://$IMG oci:$ROOT/oci:bench" >/dev/null
}
hf warmup --runs 1
rm "$ROOT/hf-warmup.json"
for i in $(seq "$RUNS"); do
	hf "$i" --runs 1
done
python3 - "$BYTES" "$ROOT"/hf-*.json <<'PY'
import json, statistics, sys
mb = int(sys.argv[1]) / 1e6
silo, skopeo = [], []
for f in sys.argv[2:]:
    r = {x["command"]: x["times"][0] for x in json.load(open(f))["results"]}
    silo.append(r["silo pull"])
    skopeo.append(r["skopeo copy"])
ms, mk = statistics.median(silo), statistics.median(skopeo)
print("%d rounds, interleaved" % len(silo))
print("silo pull    median %7.1f ms  (min %6.1f, max %6.1f; %5.1f MB/s of blobs)" % (ms * 1000, min(silo) * 1000, max(silo) * 1000, mb / ms))
print("skopeo copy  median %7.1f ms  (min %6.1f, max %6.1f; %5.1f MB/s of blobs)" % (mk * 1000, min(skopeo) * 1000, max(skopeo) * 1000, mb / mk))
print("silo/skopeo  %.2f (ratio of medians), %.2f (median of per-round ratios)" % (ms / mk, statistics.median(a / b for a, b in zip(silo, skopeo))))
PY
