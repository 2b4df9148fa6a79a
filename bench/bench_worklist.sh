#!/bin/bash
# Worklist benchmark (issue 5; printed numbers, not a test, not run by `make check`):
#  1. latency: a node whose store holds a generated mesh history of STUDIES worklist
#     items across 10 sites (bench/gen_worklist: signed announcements, claims, reports,
#     verifications, ingested as gossip would deliver them); the median (and min, max,
#     CPU) over REPEAT runs of
#        worklist --overdue --subspecialty neuro --json | wc -c
#        worklist --overdue --subspecialty neuro            (the table)
#        tat
#        next --reporter R --json        (issue 13: "next for me" over every open item)
#        worklist --state unreported --json | wc -c   (the same walk, for the ratio)
#        status
#        studies --accession A, studies --site ffff (every study), audit log --study UID
#  2. replication: two running nodes on loopback that both know 2*REPL+100 studies;
#     REPL `claim` commands at node A for distinct studies (ISSUE_PAR at a time), and
#     the time until node B's `worklist --state claimed --json` shows them all; then
#     the same with `report`. Prints events/s. Those are bounded by how fast the CLI
#     issues; so, last, B is stopped while A takes REPL more claims, and the time from
#     B's restart until it shows them all is printed too (catch-up events/s).
#
#   cd build-dir && bash ../bench/bench_worklist.sh [STUDIES]    (default 100000)
# Environment: top_builddir (default: the current directory), REPEAT (5), REPL (200),
# ISSUE_PAR (1), PM_KEEP_TMP=1 keeps the temporary directory.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
export top_builddir
. "$BENCH_DIR/../test/lib.sh"

STUDIES=${1:-100000}
REPEAT=${REPEAT:-5}
REPL=${REPL:-200}
ISSUE_PAR=${ISSUE_PAR:-1}
GEN=$top_builddir/bench/gen_worklist
[ -x "$GEN" ] || fail "no $GEN (run make in $top_builddir)"
[ -x /usr/bin/time ] || fail "/usr/bin/time is needed for CPU times"

# median of the numbers on stdin
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# bench_cmd LABEL SHELL-COMMAND: runs it REPEAT times; prints the median wall time, the
# range, the median CPU time (user+sys of the whole pipeline) and the output size.
bench_cmd()
{
    local label=$1 cmd=$2 i t0 t1 walls="" cpus="" out=$T/bench.out
    for ((i = 0; i < REPEAT; i++)); do
        t0=$(date +%s%N)
        /usr/bin/time -f "%U %S" -o "$T/time.txt" bash -c "$cmd" >"$out" 2>"$T/bench.err" ||
            fail "$label failed: $(cat "$T/bench.err")"
        t1=$(date +%s%N)
        walls+="$(((t1 - t0) / 1000000))"$'\n'
        cpus+="$(awk 'END {printf "%d", ($1 + $2) * 1000}' "$T/time.txt")"$'\n'
    done
    local med min max cpu
    med=$(printf '%s' "$walls" | median)
    min=$(printf '%s' "$walls" | sort -n | head -n 1)
    max=$(printf '%s' "$walls" | sort -n | tail -n 1)
    cpu=$(printf '%s' "$cpus" | median)
    printf '  %-52s median %7s ms  (min %s, max %s; CPU %s ms)  output %s lines, %s bytes\n' \
        "$label" "$med" "$min" "$max" "$cpu" "$(wc -l <"$out")" "$(wc -c <"$out")"
}

# ---- 1. latency over STUDIES items ----------------------------------------------------

log "1. latency: a node with $STUDIES worklist items across 10 sites"
alloc_port
BIG=$T/big
"$PACSMESH" init --dir "$BIG" --name big --listen "tcp://127.0.0.1:$PORT" >/dev/null ||
    fail "init failed"
"$PACSMESH" genesis --dir "$BIG" --mesh bench-worklist >/dev/null || fail "genesis failed"
t0=$(now_ms)
"$GEN" "$BIG" "$STUDIES" >"$T/gen.out" || fail "gen_worklist failed"
t1=$(now_ms)
read -r _ gen_studies _ gen_events _ gen_secs _ gen_rate <"$T/gen.out"
log "generated $gen_studies studies, $gen_events events in $(((t1 - t0) / 1000)) s" \
    "($gen_rate events/s); store $(du -sh "$BIG/store" | cut -f1)"
"$PACSMESH" status --dir "$BIG" | grep -E '^(events|worklist)' | sed 's/^/  /'
log "latency over $REPEAT runs (node not running: no liveness round trip);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
bench_cmd "worklist --overdue --subspecialty neuro --json | wc -c" \
    "'$PACSMESH' worklist --dir '$BIG' --overdue --subspecialty neuro --json | wc -c"
bench_cmd "worklist --overdue --subspecialty neuro (table)" \
    "'$PACSMESH' worklist --dir '$BIG' --overdue --subspecialty neuro"
bench_cmd "tat" "'$PACSMESH' tat --dir '$BIG'"
# next for me (issue 13): a reporter of every sub-specialty and site, over every open item.
"$PACSMESH" reporter add dr.bench --dir "$BIG" --name "Bench Reporter" \
    --subspecialty neuro,chest,msk,abdo,breast,paeds,cardiac >/dev/null ||
    fail "reporter add failed"
bench_cmd "next --reporter dr.bench --json" \
    "'$PACSMESH' next --dir '$BIG' --reporter dr.bench --json"
bench_cmd "worklist --state unreported --json | wc -c (the same items, for the ratio)" \
    "'$PACSMESH' worklist --dir '$BIG' --state unreported --json | wc -c"
bench_cmd "status" "'$PACSMESH' status --dir '$BIG'"
# Indexed lookups (issue 15) beside a query the indexes cannot serve, which walks every
# study (the same-run reference): one accession, one study's audit log.
acc=$(printf 'ACC%010d' $((STUDIES / 2)))
one_uid=$("$PACSMESH" studies --dir "$BIG" --accession "$acc" --json | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)[0]["study_uid"])')
bench_cmd "studies --accession $acc --json (attribute index)" \
    "'$PACSMESH' studies --dir '$BIG' --accession '$acc' --json"
bench_cmd "studies --site ffff --json (no index: every study)" \
    "'$PACSMESH' studies --dir '$BIG' --site ffff --json"
bench_cmd "audit log --study UID --json (per-study event index)" \
    "'$PACSMESH' audit log --dir '$BIG' --study '$one_uid' --json"
if [ "${PM_KEEP_TMP:-0}" != 1 ]; then
    rm -rf "$BIG" # free the disk before the mesh part
fi

# ---- 2. replication of claims and reports between two running nodes ---------------------

log "2. replication: two nodes on loopback, $REPL claims then $REPL reports at node A"
node_init 1 nodeA
node_init 2 nodeB
mesh_create 2
"$GEN" -s 1 -A "${NODE_DIR[1]}" $((2 * REPL + 100)) >/dev/null || fail "gen_worklist (mesh) failed"
node_start_all
wait_until 120 digests_equal
log "both nodes hold $(events_count 2) events (digests equal after ${WAITED_MS} ms);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

mapfile -t UIDS < <(pm 1 worklist --state unreported --json | $PYTHON -c '
import json, sys
print("\n".join(o["study_uid"] for o in json.load(sys.stdin)[:2 * int(sys.argv[1])]))' "$REPL")
[ "${#UIDS[@]}" = $((2 * REPL)) ] || fail "only ${#UIDS[@]} unreported studies to claim"
BURST_UIDS=("${UIDS[@]:REPL}")
UIDS=("${UIDS[@]:0:REPL}")
echo "FINDINGS: none. IMPRESSION: normal." >"$T/report.txt"

# count_in I STATE: how many items node I's worklist shows in STATE.
count_in() { pm "$1" worklist --state "$2" --json | grep -c "\"state\": \"$2\""; }
count_is() { [ "$(count_in "$1" "$2")" -ge "$3" ]; }

# replicate WHAT STATE CLI-ARGS...: issues `pacsmesh WHAT UID ARGS` at node A for every
# UID, then waits until node B shows REPL more items in STATE.
replicate()
{
    local what=$1 state=$2
    shift 2
    local base t0 t1 t2
    base=$(count_in 2 "$state")
    t0=$(now_ms)
    printf '%s\n' "${UIDS[@]}" |
        xargs -P "$ISSUE_PAR" -I '{}' "$PACSMESH" "$what" '{}' --dir "${NODE_DIR[1]}" "$@" \
            >"$T/issue.out" 2>&1 || fail "$what at node A failed: $(tail -n 3 "$T/issue.out")"
    t1=$(now_ms)
    wait_until 300 count_is 2 "$state" $((base + REPL))
    t2=$(now_ms)
    awk -v n="$REPL" -v what="$what" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v p="$ISSUE_PAR" 'BEGIN {
        printf "  %-7s %d issued at A in %d ms (%.1f /s, %d at a time); all %d at B after %d ms\n",
               what, n, t1 - t0, n * 1000 / (t1 - t0), p, n, t2 - t0
        printf "  %-7s replication, first issue to all at B: %.1f events/s; B lagged the last one by %d ms (poll 0.1 s)\n",
               what, n * 1000 / (t2 - t0), t2 - t1
    }'
}
replicate claim claimed --reporter dr.bench
replicate report reported --reporter dr.bench --file "$T/report.txt"

# Not bounded by the CLI: B is stopped while A takes REPL claims, then restarted.
log "catch-up: node B stopped, $REPL claims at A, node B restarted"
node_stop 2
base=$(count_in 2 claimed)
printf '%s\n' "${BURST_UIDS[@]}" |
    xargs -P "$ISSUE_PAR" -I '{}' "$PACSMESH" claim '{}' --dir "${NODE_DIR[1]}" --reporter dr.burst \
        >"$T/issue.out" 2>&1 || fail "claim at node A failed: $(tail -n 3 "$T/issue.out")"
t0=$(now_ms)
node_start 2
t1=$(now_ms)
wait_until 300 count_is 2 claimed $((base + REPL))
t2=$(now_ms)
awk -v n="$REPL" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
    printf "  catch-up: B answered %d ms after start; all %d claims at B %d ms after start: %.1f events/s (%.1f events/s after it answered)\n",
           t1 - t0, n, t2 - t0, n * 1000 / (t2 - t0), n * 1000 / (t2 - t1 > 0 ? t2 - t1 : 1)
}'
wait_until 60 digests_equal
nodes_alive
log "done"
