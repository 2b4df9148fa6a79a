#!/bin/bash
# Catch-up benchmark (issue 15; printed numbers, not a test, not run by `make check`):
# node A holds a generated mesh history of STUDIES studies across 10 sites
# (bench/gen_worklist); a new node B is admitted and joins, and the time from B's start
# until it holds every event of A is measured: events/s, beside the raw single-core
# Ed25519 verify rate of libsodium measured in the same run (bench/raw_verify), and the
# load average (other work on the machine slows both).
#
#   cd build-dir && bash ../bench/bench_catchup.sh [STUDIES]    (default 20000)
# Environment: top_builddir (default: the current directory), PM_KEEP_TMP=1 keeps the
# temporary directory.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
export top_builddir
. "$BENCH_DIR/../test/lib.sh"

STUDIES=${1:-20000}
GEN=$top_builddir/bench/gen_worklist
RAW=$top_builddir/bench/raw_verify
[ -x "$GEN" ] && [ -x "$RAW" ] || fail "no $GEN or $RAW (run make in $top_builddir)"

A=1 B=2
node_init $A
node_init $B
out=$(pm $A genesis --mesh bench-catchup 2>&1) || fail "genesis failed: $out"
log "generating $STUDIES studies at A"
"$GEN" "${NODE_DIR[A]}" "$STUDIES" >"$T/gen.out" 2>"$T/gen.err" || fail "gen_worklist failed: $(cat "$T/gen.err")"
join_with $B "$(admit_by $A $B)"
[ -z "${CATCHUP_DEBUG:-}" ] || node_set_conf $B node log_level debug
[ -z "${CATCHUP_DEBUG:-}" ] || node_set_conf $A node log_level debug
node_start $A
total=$(events_count $A)
want=$(digest_of $A)
log "A holds $total events, store $(du -sh "${NODE_DIR[A]}/store" | cut -f1)"
raw_before=$("$RAW" | awk '{print $2}')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(now_ms)
node_start $B
# The view digest is one key read (cheap to poll, unlike status); equal digests mean
# B holds and has applied every event A holds.
caught_up() { [ "$(digest_of $B)" = "$want" ]; }
wait_until 3600 caught_up
t1=$(now_ms)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
raw_after=$("$RAW" | awk '{print $2}')
awk -v n="$total" -v ms=$((t1 - t0)) -v r1="$raw_before" -v r2="$raw_after" \
    -v l1="$load_before" -v l2="$load_after" -v cpus="$(nproc)" 'BEGIN {
    rate = n / (ms / 1000); raw = (r1 + r2) / 2
    printf "catch-up: %d events in %.1f s = %.0f events/s (from B'"'"'s start, process start included)\n", n, ms / 1000, rate
    printf "raw Ed25519 verify, one core, same run: %.0f /s (before %d, after %d)\n", raw, r1, r2
    printf "ratio: %.2f of raw single-core verify (target >= 0.50)\n", rate / raw
    printf "load average before %s, after %s, on %d CPUs\n", l1, l2, cpus
}'
[ "$(events_count $B)" -ge "$total" ] || fail "B's digest equals A's, but it holds fewer events"
exit 0
