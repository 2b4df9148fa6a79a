#!/bin/sh
# A node cut off from the network for a while, then reconnected, converges; both sides
# kept working meanwhile.
#
# Every node is a host in its own network namespace, plugged into a bridge that lives
# in a "switch" namespace with no route out. Cutting a node is unplugging its cable:
# `ip link set <its port on the bridge> down`. Needs root; skipped otherwise.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

netns_switch
for i in 1 2 3 4 5; do netns_host "$i"; done

log "nodes 1-4 form a mesh"
mesh_create 4
node_start 1
node_start 2
node_start 3
node_start 4
wait_until 30 digests_equal 1 2 3 4
for i in 1 2 3 4; do wait_until 20 members_ok "$i" 4; done

log "cutting node 4's cable"
netns_cut 4
tcp_reachable 1 10.77.0.4 "${NODE_PORT[4]}" && fail "node 4 is still reachable after the cut"
for i in 1 2 3; do wait_until 20 is_down "$i" "${NODE_ID[4]}"; done
for i in 1 2 3; do wait_until 20 is_down 4 "${NODE_ID[i]}"; done
log "both sides see the cut"

log "majority side: node 1 admits node 5, node 2 admits another member"
node_init 5
join_with 5 "$(admit_by 1 5)"
node_start 5
maj=$(random_id)
pm 2 admit "$maj" --name majority-side --endpoint tcp://10.77.0.250:7400 >/dev/null ||
    fail "node 2 cannot admit during the partition"
log "minority side: node 4 admits a member of its own"
mino=$(random_id)
pm 4 admit "$mino" --name minority-side --endpoint tcp://10.77.0.251:7400 >/dev/null ||
    fail "node 4 cannot admit while cut off"
wait_until 30 digests_equal 1 2 3 5
for i in 1 2 3 5; do wait_until 20 is_member "$i" "$maj"; done
# Stay apart for a while: longer than ZeroMQ's heartbeat timeout and several TCP
# retransmissions, so the reconnection below starts from dead connections.
holds_for 8 not digests_equal 1 4
is_member 4 "$maj" && fail "node 4 got the majority's admission while cut off"
is_member 1 "$mino" && fail "the majority got node 4's admission while it was cut off"
log "the sides diverged as they should"

log "plugging node 4 back in"
netns_mend 4
wait_until 60 digests_equal 1 2 3 4 5
log "converged ${WAITED_MS} ms after the reconnection"
for i in 1 2 3 4 5; do
    wait_until 10 is_member "$i" "$maj"
    wait_until 10 is_member "$i" "$mino"
    wait_until 10 is_member "$i" "${NODE_ID[5]}"
done
for i in 1 2 3; do wait_until 30 is_up "$i" "${NODE_ID[4]}"; done
wait_until 30 is_up 4 "${NODE_ID[5]}"
wait_until 30 is_up 5 "${NODE_ID[4]}"
log "every node sees node 4 (and node 4 sees node 5) up again"
nodes_alive
show_digests
log "pass"
