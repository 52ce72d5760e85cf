#!/bin/sh
# busybox-bundle.sh DIR [ARG...] — make an OCI bundle in DIR whose rootfs is
# Debian's busybox-static, with config.json from `runsilo spec` running ARGs
# (default: sh) without a terminal. Used by the README's first command.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [ARG...]" >&2; exit 2; }
dir=$1; shift
busybox=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
runsilo=$(command -v runsilo || echo "$(dirname "$0")/../bin/runsilo")
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp"
cp "$busybox" "$dir/rootfs/bin/busybox"
for app in $("$busybox" --list); do
  [ -e "$dir/rootfs/bin/$app" ] || ln -s busybox "$dir/rootfs/bin/$app"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$runsilo" spec --bundle "$dir"
if [ $# -gt 0 ]; then
  args=$(printf '%s\n' "$@" | sed 's/\\/\\\\/g; s/"/\\"/g; s/.*/"&"/' | paste -sd, -)
else
  args='"sh"'
fi
# runsilo spec writes indented JSON: "args" spans lines until its "],".
sed -i 's|"terminal": true|"terminal": false|' "$dir/config.json"
awk -v a="$args" '
  /"args": \[/ { print "\t\t\"args\": [" a "],"; skip=1; next }
  skip && /\]/ { skip=0; next }
  skip { next }
  { print }' "$dir/config.json" > "$dir/config.json.new" && mv "$dir/config.json.new" "$dir/config.json"
echo "bundle ready: $dir (runs: $*)"
