#!/bin/sh
# Build cache bench: a 10-step Dockerfile on busybox, first build (--no-cache)
# and a rebuild with nothing changed (every step from the cache, no
# container), through `silo build` against a private silod. Needs root,
# hyperfine and bin/ built (make).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(mktemp -d /tmp/silo-bench-build.XXXXXX)
SOCK="unix://$ROOT/silo.sock"
SILO="bin/silo --host $SOCK --no-start-daemon"
# silod's networks go into a namespace of the bench's own.
NETNS=silo-bench-build-$$
ip netns add "$NETNS" && ip -n "$NETNS" link set lo up
bin/silod --host "$SOCK" --data-root "$ROOT/data" --exec-root "$ROOT/run" --cgroup-parent /silo-bench-build \
  --host-netns "/run/netns/$NETNS" >"$ROOT/silod.log" 2>&1 &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; rm -rf "$ROOT"; ip netns del "$NETNS"' EXIT
for i in $(seq 100); do $SILO version >/dev/null 2>&1 && break; sleep 0.05; done
$SILO image build-busybox >/dev/null
CTX="$ROOT/ctx"
mkdir -p "$CTX"
echo '<h1>bench</h1>' >"$CTX/index.html"
echo 'a' >"$CTX/a.txt"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
ENV SITE=/www
RUN mkdir -p /www && rm -rf /www/*
WORKDIR /www
COPY index.html .
COPY a.txt /data/
LABEL bench=build-cache
EXPOSE 80
USER root
CMD ["httpd","-f","-p","80","-h","/www"]
DF
hyperfine --warmup 1 --runs "${RUNS:-10}" --export-json "$ROOT/hf.json" \
	-n first-build "$SILO build --no-cache -q -t bench $CTX" \
	-n cached-rebuild "$SILO build -q -t bench $CTX"
python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%-15s median %7.1f ms" % (r["command"], r["median"] * 1000))' "$ROOT/hf.json"
