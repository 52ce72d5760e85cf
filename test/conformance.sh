#!/bin/bash
# conformance.sh RUNTIME — run the OCI runtime-tools validation suite
# (../shared/conformance) against RUNTIME and fail on any failure that
# test/conformance-expected.tsv does not explain. Every explained failure
# is host- or suite-caused; docs/conformance.md says why.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED:-$(cd "$here/../.." && pwd)/shared}
runtime=${1:?usage: conformance.sh RUNTIME}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$shared/conformance/run-validation.sh" "$runtime" | tee "$out"
summary=$(tail -n 1 "$out")
unexplained=0
while read -r test pass fail _; do
  [[ $test =~ ^[a-z_]+$ ]] || continue
  [ "$fail" -gt 0 ] || continue
  allowed=$(awk -F'\t' -v t="$test" '$1==t {print $2}' "$here/conformance-expected.tsv")
  if [ -z "$allowed" ] || [ "$fail" -gt "$allowed" ]; then
    echo "conformance: UNEXPECTED: $test failed $fail (explained: ${allowed:-0})" >&2
    unexplained=$((unexplained + fail - ${allowed:-0}))
  fi
done < <(sed -n '/^TEST /,/^# skipped/p' "$out")
echo "conformance: $summary; unexplained failures: $unexplained"
[ "$unexplained" -eq 0 ]
