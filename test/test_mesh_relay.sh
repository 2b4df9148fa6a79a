#!/bin/sh
# Relaying: a node that can reach only one other member still receives everyone's
# events, and everyone receives its own.
#
# Nodes 1-4 (A, B, C, D) each live in their own network namespace, plugged into one
# bridge. Routes make D and A/B unreachable to each other in both directions
# (`ip route add unreachable`), so D really cannot open a connection to A or B, nor
# they to D: D's only link to the mesh is C. Needs root; skipped otherwise.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

netns_switch
for i in 1 2 3 4; do netns_host "$i"; done
for far in 1 2; do
    ip -n "${NODE_NS[4]}" route add unreachable "10.77.0.$far/32" || fail "cannot cut D from $far"
    ip -n "${NODE_NS[far]}" route add unreachable 10.77.0.4/32 || fail "cannot cut $far from D"
done

log "A, B and C form a mesh"
mesh_create 3
node_start_all
wait_until 30 digests_equal 1 2 3

log "C admits D; D joins with C's token (its first peer is C)"
node_init 4 nodeD
join_with 4 "$(admit_by 3 4)"
node_start 4
tcp_reachable 4 10.77.0.3 "${NODE_PORT[3]}" || fail "D cannot reach C: the set-up is wrong"
tcp_reachable 4 10.77.0.1 "${NODE_PORT[1]}" && fail "D can reach A: the set-up is wrong"
tcp_reachable 4 10.77.0.2 "${NODE_PORT[2]}" && fail "D can reach B: the set-up is wrong"
tcp_reachable 1 10.77.0.4 "${NODE_PORT[4]}" && fail "A can reach D: the set-up is wrong"
tcp_reachable 2 10.77.0.4 "${NODE_PORT[4]}" && fail "B can reach D: the set-up is wrong"
wait_until 30 digests_equal 1 2 3 4
log "D converged with the mesh through C (${WAITED_MS} ms)"

log "A and B each write an event; D must receive both through C"
x=$(random_id)
y=$(random_id)
pm 1 admit "$x" --name from-A --endpoint tcp://10.77.0.201:7400 >/dev/null || fail "A cannot admit"
pm 2 admit "$y" --name from-B --endpoint tcp://10.77.0.202:7400 >/dev/null || fail "B cannot admit"
wait_until 30 is_member 4 "$x"
wait_until 30 is_member 4 "$y"
log "D holds A's and B's events (${WAITED_MS} ms)"

log "D writes an event; A and B must receive it through C"
z=$(random_id)
pm 4 admit "$z" --name from-D --endpoint tcp://10.77.0.204:7400 >/dev/null || fail "D cannot admit"
wait_until 30 is_member 1 "$z"
wait_until 30 is_member 2 "$z"
wait_until 30 digests_equal 1 2 3 4
nodes_alive

# What D saw is what the network allowed: C up, A and B never heard directly.
is_up 4 "${NODE_ID[3]}" || fail "D does not see C up"
is_down 4 "${NODE_ID[1]}" || fail "D claims to hear from A directly"
is_down 4 "${NODE_ID[2]}" || fail "D claims to hear from B directly"
is_down 1 "${NODE_ID[4]}" || fail "A claims to hear from D directly"
show_digests
log "pass"
