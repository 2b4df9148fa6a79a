#!/bin/bash
# Concurrent claims and reports on two sides of a partition resolve the same way on
# every node once it heals: one holder everywhere, the conflict flagged, both reports
# kept (docs/design.md, The worklist).
#
# Three trusts A=1, B=2, C=3, each in its own network namespace plugged into a bridge in
# a "switch" namespace (test/lib.sh); the partition is C's cable unplugged, so B (with
# A) and C cannot talk. Where namespaces cannot be made (not root, no iproute2, not
# permitted) the partition is made by running B's side and C's side at different times
# with the other side stopped: they still cannot talk, and the healing is the same.
#
# Study X: B and C both claim and both report during the partition.
# Study Y: B and C both claim during the partition, nobody reports.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3
MODE=netns
if [ "${WL_PARTITION:-}" = stop ] || ! command -v ip >/dev/null || [ "$(id -u)" != 0 ] || ! ip netns add "$NS_PREFIX-probe" 2>/dev/null; then
    MODE=stop
    log "partitioning by stopping nodes (network namespaces not available, or WL_PARTITION=stop)"
else
    ip netns del "$NS_PREFIX-probe"
    netns_switch
    for i in $A $B $C; do netns_host $i; done
fi

mesh_create 3
wl_mesh_up

S=$T/studies
X=$(new_uid) Y=$(new_uid)
import_study $A "$S" "$X" CT HEAD "CT HEAD"
import_study $A "$S" "$Y" CT CHEST "CT CHEST"
wait_until 30 item_is_all "$X" 'w["state"] == "unreported"'
wait_until 30 item_is_all "$Y" 'w["state"] == "unreported"'
wait_until 30 digests_equal

printf 'CT head (dr.bell at B): small chronic infarct, no acute change.\n' >"$T/rb.txt"
printf 'CT head (dr.cole at C): no acute intracranial abnormality.\n' >"$T/rc.txt"

side_b()
{
    pm $B claim "$X" --reporter dr.bell >/dev/null || fail "claim of X at B during the partition failed"
    pm $B claim "$Y" --reporter dr.bell >/dev/null || fail "claim of Y at B during the partition failed"
}
side_c()
{
    pm $C claim "$X" --reporter dr.cole >/dev/null || fail "claim of X at C during the partition failed"
    pm $C claim "$Y" --reporter dr.cole >/dev/null || fail "claim of Y at C during the partition failed"
}
reports_b() { pm $B report "$X" --reporter dr.bell --file "$T/rb.txt" >/dev/null || fail "report at B failed"; }
reports_c() { pm $C report "$X" --reporter dr.cole --file "$T/rc.txt" >/dev/null || fail "report at C failed"; }

log "partition: B and C cannot talk ($MODE)"
if [ "$MODE" = netns ]; then
    netns_cut $C
    tcp_reachable $B 10.77.0.$C "${NODE_PORT[C]}" && fail "C is still reachable from B after the cut"
    wait_until 20 is_down $B "${NODE_ID[C]}"
    wait_until 20 is_down $C "${NODE_ID[B]}"
    side_b
    side_c
    wait_until 20 item_is $A "$X" 'w["claimed_by"] == "dr.bell"' # A and B still talk
    t_claims=$(now_ms)
    sleep 0.2 # a moment strictly between the claims and the reports, for the replay
    reports_b
    reports_c
    wait_until 20 item_is $A "$X" 'w["state"] == "reported"'
else
    node_stop $A
    node_stop $C
    side_b
    node_stop $B
    node_start $C
    side_c
    node_stop $C
    t_claims=$(now_ms)
    sleep 0.2
    node_start $B
    reports_b
    node_stop $B
    node_start $C
    reports_c
    node_stop $C
fi
# Each side sees only its own claim and report.
[ "$(item $B "$Y" 'w["claimed_by"]')" = dr.bell ] || fail "B should see only its own claim of Y"
[ "$(item $C "$Y" 'w["claimed_by"]')" = dr.cole ] || fail "C should see only its own claim of Y"
[ "$(pmjson $C reports "$X" -- 'len(d)')" = 1 ] || fail "C got B's report through the partition"
[ "$(pmjson $B reports "$X" -- 'len(d)')" = 1 ] || fail "B got C's report through the partition"
log "both sides claimed X and Y and reported X"

log "healing"
if [ "$MODE" = netns ]; then
    netns_mend $C
else
    node_start_all
fi
wait_until 60 digests_equal $A $B $C
log "converged ${WAITED_MS} ms after healing"
show_digests

log "Y: every node names the same holder; the loser is told when claiming again"
holder=$(item $A "$Y" 'w["claimed_by"]')
case $holder in dr.bell | dr.cole) ;; *) fail "Y's holder on A is '$holder'" ;; esac
for i in $A $B $C; do
    [ "$(item $i "$Y" 'w["state"], w["claimed_by"]')" = "('claimed', '$holder')" ] ||
        fail "node $i: Y is $(item $i "$Y" '(w["state"], w["claimed_by"])'), want claimed by $holder"
done
loser=dr.cole loser_node=$C
[ "$holder" = dr.cole ] && loser=dr.bell loser_node=$B
unchanged_by $loser_node expect_exit 1 "$holder" pm $loser_node claim "$Y" --reporter $loser
log "   $holder holds Y on A, B and C; $loser is refused, naming $holder"

log "X: conflict flagged and both reports kept on every node"
for i in $A $B $C; do
    [ "$(item $i "$X" 'w["state"] == "reported" and w["conflict"] and w["reports"] == 2')" = true ] ||
        fail "node $i: X is $(item $i "$X" w)"
    got=$(pmjson $i reports "$X" -- \
        'sorted((r["reporter"], r["node"][:8], r["text"], r["conflict"]) for r in d)')
    want="[('dr.bell', '${NODE_ID[B]:0:8}', '$(cat "$T/rb.txt")\\n', True), ('dr.cole', '${NODE_ID[C]:0:8}', '$(cat "$T/rc.txt")\\n', True)]"
    [ "$got" = "$want" ] || fail "node $i: reports of X: $got, want $want"
    pm $i worklist | grep -F "$X" | grep -q CONFLICT || fail "node $i: the worklist table does not flag X"
done
log "   both reports, CONFLICT on A, B and C"

log "X's holder between the claims and the reports, replayed from each node's log"
until_iso=$(iso_of_ms "$t_claims")
first=
for i in $A $B $C; do
    pm $i audit export --out "$T/n$i.audit" >/dev/null || fail "export on node $i failed"
    h=$(pm $i audit replay "$T/n$i.audit" --until "$until_iso" --json | $PYTHON -c 'import json,sys
d = json.load(sys.stdin)
print(next(w["state"] + ":" + str(w["claimed_by"]) for w in d["worklist"] if w["study_uid"] == sys.argv[1]))' "$X") ||
        fail "replay on node $i failed"
    case $h in claimed:dr.bell | claimed:dr.cole) ;; *) fail "node $i: X replayed at $until_iso is $h" ;; esac
    [ -z "$first" ] && first=$h
    [ "$h" = "$first" ] || fail "node $i names $h as X's holder, node $A names $first"
done
log "   every node names ${first#claimed:} as X's holder at $until_iso"
nodes_alive
echo "PASS: $TEST_NAME"
