#!/bin/sh
# Five nodes formed with the CLI alone converge: equal digests, five members `up` on
# every node. A node killed with SIGKILL stops nothing: the others admit a sixth node
# and replicate; when the killed node comes back it catches up.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

log "forming a mesh of 5 nodes with the CLI"
mesh_create 5
node_start_all
wait_until 30 digests_equal 1 2 3 4 5
log "digests equal after ${WAITED_MS} ms"
for i in 1 2 3 4 5; do
    wait_until 20 members_ok "$i" 5
done
log "every node shows 5 members, all up"

log "kill -9 of node 5"
node_kill9 5
for i in 1 2 3 4; do
    wait_until 20 is_down "$i" "${NODE_ID[5]}"
done
log "the others see node 5 down"

log "node 2 admits a sixth node while node 5 is down"
node_init 6
join_with 6 "$(admit_by 2 6)"
node_start 6
extra=$(random_id)
pm 3 admit "$extra" --name extra --endpoint tcp://127.0.0.1:1 >/dev/null ||
    fail "node 3 could not admit while node 5 is down"
wait_until 30 digests_equal 1 2 3 4 6
for i in 1 2 3 4 6; do
    wait_until 20 is_member "$i" "${NODE_ID[6]}"
    wait_until 20 is_member "$i" "$extra"
    wait_until 20 is_up "$i" "${NODE_ID[6]}"
done
log "nodes 1-4 and the new node 6 converged without node 5"
digests_equal 1 5 && fail "node 5 (killed) already has the new events: nothing was tested"

log "restarting node 5"
node_start 5
wait_until 30 digests_equal 1 2 3 4 5 6
log "node 5 caught up after ${WAITED_MS} ms"
wait_until 20 is_member 5 "${NODE_ID[6]}"
wait_until 20 is_up 5 "${NODE_ID[6]}"
[ "$(events_count 5)" = "$(events_count 1)" ] || fail "node 5 holds a different number of events"
show_digests

log "stopping every node with SIGTERM"
for i in 1 2 3 4 5 6; do node_stop "$i"; done
for i in 1 2 3 4 5 6; do
    grep -q 'stopped cleanly' "${NODE_LOG[i]}" || fail "node $i did not log a clean stop"
done
log "pass"
