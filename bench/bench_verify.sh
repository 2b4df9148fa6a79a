#!/bin/bash
# audit verify throughput beside the raw single-core Ed25519 verify rate, in one run.
#   bench/bench_verify.sh [EVENTS]   (default 100000; 1000000 is the target size)
# Run from the build directory (or set top_builddir). Prints events/s, the ratio to raw
# verify (target >= 0.80) and, when EVENTS < 1,000,000, the extrapolated time for 1M.
set -eu
top_builddir=${top_builddir:-$(pwd)}
n=${1:-100000}
pm=$top_builddir/pacsmesh
gen=$top_builddir/bench/gen_audit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-bench-verify.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
raw=$("$gen" "$n" "$tmp/log.audit" 10 | awk '/^raw_verify_per_s/ {print $2}')
size=$(stat -c %s "$tmp/log.audit")
t0=$(date +%s.%N)
"$pm" audit verify "$tmp/log.audit" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
t1=$(date +%s.%N)
awk -v n="$n" -v raw="$raw" -v t0="$t0" -v t1="$t1" -v size="$size" 'BEGIN {
    s = t1 - t0; rate = n / s
    printf "audit verify: %d events (%.1f MB) in %.2f s = %.0f events/s\n", n, size / 1e6, s, rate
    printf "raw Ed25519 verify, one core, same run: %.0f /s\n", raw
    printf "ratio: %.2f (target >= 0.80)\n", rate / raw
    if (n < 1000000) printf "extrapolated for 1,000,000 events: %.0f s (linear; measured at %d)\n", 1000000 / rate, n
}'
tail -n 1 "$tmp/out"
