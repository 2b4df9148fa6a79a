#!/bin/sh
# Gossip benchmark (not part of `make check`): on loopback,
#  - spread: how long a new event takes to reach every node of an 8-node and a
#    32-node mesh (median, p90, p99, max over ROUNDS events, each appended by the CLI
#    at a random node); targets: 8 nodes p99 < 300 ms, 32 nodes p99 < 1 s;
#  - catch-up: a node that was stopped while CATCHUP_EVENTS events were written
#    elsewhere restarts: events per second until it holds them all.
# Gossip settings are the defaults (interval 500 ms, fanout 3); nodes log at debug
# level so that bench/mesh_probe.py reads each event's arrival time from the logs.
#
#   top_builddir=build bash bench/bench_mesh.sh [SIZES...]     (default: 8 32)
# Environment: ROUNDS (50), CATCHUP_EVENTS (1000).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../test/lib.sh"

ROUNDS=${ROUNDS:-50}
CATCHUP_EVENTS=${CATCHUP_EVENTS:-1000}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(8 32)
PROBE="$PYTHON $BENCH_DIR/mesh_probe.py"

# bench_mesh N: a fresh mesh of N running nodes (replacing any previous one).
bench_mesh()
{
    local n=$1 i
    for i in "${!NODE_PID[@]}"; do [ -n "${NODE_PID[i]}" ] && node_stop "$i"; done
    NODE_DIR=() NODE_ID=() NODE_PORT=() NODE_DICOM_PORT=() NODE_EP=() NODE_LOG=() NODE_PID=()
    T_MESH=$T/mesh$n
    mkdir -p "$T_MESH"
    local saved_t=$T
    T=$T_MESH
    for ((i = 1; i <= n; i++)); do
        node_init "$i"
        node_set_conf "$i" node log_level debug
    done
    mesh_create "$n"
    T=$saved_t
    node_start_all
    wait_until 120 digests_equal
}

for n in "${SIZES[@]}"; do
    log "mesh of $n nodes"
    bench_mesh "$n"
    nodes=()
    for i in "${!NODE_DIR[@]}"; do nodes+=("${NODE_DIR[i]}:${NODE_LOG[i]}"); done
    log "spread of one event, $ROUNDS rounds"
    $PROBE spread "$PACSMESH" "$ROUNDS" "${nodes[@]}" || fail "spread measurement failed"
    nodes_alive
done

log "catch-up: node $n stops, $CATCHUP_EVENTS events are written on the others"
node_stop "$n"
$PYTHON -c 'import os,sys
dirs = sys.argv[2:]
for k in range(int(sys.argv[1])):
    print(dirs[k % len(dirs)], os.urandom(32).hex())' "$CATCHUP_EVENTS" \
    $(for ((i = 1; i < n && i <= 8; i++)); do echo "${NODE_DIR[i]}"; done) |
    xargs -P 4 -n 2 sh -c '"$0" revoke "$2" --reason bench --dir "$1" >/dev/null' "$PACSMESH" ||
    fail "writing the catch-up events failed"
wait_until 120 digests_equal $(seq 1 $((n - 1)))
expected=$(($(events_count 1) - $(events_count "$n")))
since=$(now_ms)
node_start "$n"
$PROBE catchup "${NODE_LOG[n]}" "$expected" "$since" || fail "catch-up measurement failed"
wait_until 60 digests_equal
log "done"
