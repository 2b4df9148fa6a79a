#!/bin/bash
# The run lock (node/daemon/run_lock.h): `run` starts every time while `status` is
# polled as fast as a shell can, after a clean stop and after kill -9 alike (a stale
# lock never blocks a start); a second `run` on a running node's directory is refused
# with a clear message and leaves the first one running.
. "$(dirname "$0")/lib.sh"

mesh_create 1
ROUNDS=10

# Two pollers in the background: status in a loop, one line in $T/polls per call,
# bounded in count and time, until the file $T/stop-polling appears.
poll_status()
{
    local n=0 deadline=$(($(now_ms) + 120000))
    while [ ! -e "$T/stop-polling" ] && [ $n -lt 20000 ] && [ "$(now_ms)" -lt "$deadline" ]; do
        "$PACSMESH" status --dir "${NODE_DIR[1]}" >/dev/null 2>&1
        echo >>"$T/polls"
        n=$((n + 1))
    done
}
: >"$T/polls"
poll_status &
P1=$!
poll_status &
P2=$!
on_exit "touch '$T/stop-polling'; kill $P1 $P2 2>/dev/null"
polls() { wc -l <"$T/polls"; }
polled_since() { [ "$(polls)" -ge $(($1 + 2)) ]; }

for ((r = 1; r <= ROUNDS; r++)); do
    before=$(polls)
    node_start 1
    # Stop only after status was asked at least twice while this start went on.
    wait_until 20 polled_since "$before"
    if [ $((r % 2)) = 0 ]; then node_kill9 1; else node_stop 1; fi
done
log "$ROUNDS starts while status was polled: every one started (odd rounds SIGTERM, even kill -9)"

node_start 1
out=$("$PACSMESH" run --dir "${NODE_DIR[1]}" </dev/null 2>&1) && fail "a second run on a running node's directory started"
case "$out" in *"already running on ${NODE_DIR[1]}"*) ;; *) fail "second run said: $out" ;; esac
nodes_alive 1
node_running 1 || fail "the first node stopped answering after a second run was refused"
log "a second run is refused ($out); the first keeps running"
touch "$T/stop-polling"
wait "$P1" "$P2"
log "status polled $(polls) times during the rounds"
node_stop 1
exit 0
