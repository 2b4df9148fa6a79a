#!/bin/bash
# A deliberate fork (issue 16; docs/operations.md, the fork rule): two processes sign
# with one node's key. C's directory is copied (C2: the same identity); C runs while B
# is down and signs a claim and a report; C2 runs while A and C are down and signs a
# different claim and report at the same sequence numbers (B, the only peer it reaches,
# legitimately confirms the head it knows). Then everyone runs again. Asserted:
#   - every node finds the fork on the first exchanges and lists it (status --json
#     forks, origin C), audit verify of every node's export names origin C as forked;
#   - views agree everywhere (equal digest), and nothing is lost: both reports are
#     listed by `reports` on every node, and the audit log flags the branch events;
#   - the forked origin is not mute: a claim C signs after the fork shows everywhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3
mesh_create 3
wl_mesh_up
S=$T/studies
U=$(new_uid) V=$(new_uid) W=$(new_uid)
import_study $A "$S" "$U" CT HEAD "CT HEAD"
import_study $A "$S" "$V" CT CHEST "CT CHEST"
import_study $A "$S" "$W" CR CHEST "CHEST PA"
wait_until 30 item_is_all "$W" 'w["state"] == "unreported"'

head_of() { pmjson "$1" status -- "next((h['seq'] for h in d['heads'] if h['origin'] == '$2'), 0)"; }
head_is() { [ "$(head_of "$1" "$2")" = "$3" ]; }
lists_fork_of() { [ "$(pmjson "$1" status -- "any(f['origin'] == '$2' for f in d['forks'])")" = true ]; }
# reports_include I UID REPORTER: node I's `reports UID` lists one by REPORTER.
reports_include() { [ "$(pmjson "$1" reports "$2" -- "any(r['reporter'] == '$3' for r in d)")" = true ]; }
everywhere() { local i; for i in $A $B $C; do "$@" "$i" || return 1; done; }
fork_seen() { lists_fork_of "$1" "${NODE_ID[C]}"; }
has_x() { reports_include "$1" "$U" dr.x; }
has_y() { reports_include "$1" "$V" dr.y; }

# start_writing I: starts node I and waits until it accepts new work (its DICOM edge
# opens once a peer confirmed its own feed).
start_writing()
{
    local n
    n=$(log_count "$1" "DICOM edge: AE")
    node_start "$1"
    wait_until 20 log_grew "$1" "DICOM edge: AE" "${n:-0}"
}

printf 'CT head: synthetic report by dr.x\n' >"$T/rx.txt"
printf 'CT chest: synthetic report by dr.y\n' >"$T/ry.txt"

log "1. C's directory copied while C is stopped: C2 holds the same key"
node_stop $C
BASE=$(head_of $C "${NODE_ID[C]}")
cp -a "${NODE_DIR[C]}" "$T/c2" || fail "cannot copy C's directory"

log "2. C runs with A (B down) and signs a claim and a report of U"
node_stop $B
start_writing $C
pm $C claim "$U" --reporter dr.x >/dev/null || fail "claim at C failed"
pm $C report "$U" --reporter dr.x --file "$T/rx.txt" >/dev/null || fail "report at C failed"
K=$(($(head_of $C "${NODE_ID[C]}") - BASE))
[ "$K" -ge 2 ] || fail "C signed $K events, want at least 2"
wait_until 20 head_is $A "${NODE_ID[C]}" $((BASE + K))
node_stop $C
node_stop $A

log "3. C2 (C's key) runs with B alone and signs a claim and a report of V at seq $((BASE + 1))"
C_DIR=${NODE_DIR[C]} C_LOG=${NODE_LOG[C]}
NODE_DIR[C]=$T/c2 NODE_LOG[C]=$T/c2.log
node_start $B
start_writing $C
pm $C claim "$V" --reporter dr.y >/dev/null || fail "claim at C2 failed"
pm $C report "$V" --reporter dr.y --file "$T/ry.txt" >/dev/null || fail "report at C2 failed"
[ "$(head_of $C "${NODE_ID[C]}")" = $((BASE + K)) ] || fail "C2 did not sign $K events"
wait_until 20 head_is $B "${NODE_ID[C]}" $((BASE + K))
node_stop $C
NODE_DIR[C]=$C_DIR NODE_LOG[C]=$C_LOG

log "4. A and C run again: A and C hold one branch of C's feed, B the other"
node_start $A
node_start $C
t0=$(now_ms)
wait_until 30 everywhere fork_seen
log "   every node lists the fork of C ($(($(now_ms) - t0)) ms after the heal)"
wait_until 30 digests_equal $A $B $C
log "   digests agree: $(digest_of $A)"
# status shows, for each peer that is up, that its digest agrees with ours.
peers_agree() { [ "$(pmjson "$1" status -- 'all(m.get("agrees") is True for m in d["members"] if m["up"] and not m["self"]) and sum(1 for m in d["members"] if m["up"] and not m["self"]) == 2')" = true ]; }
wait_until 20 everywhere peers_agree
# Nobody stays "behind" on the forked origin: the other branch is held, not missing.
none_behind() { [ "$(pmjson "$1" status -- 'all(h["behind"] == 0 for h in d["heads"])')" = true ]; }
wait_until 20 everywhere none_behind
[ "$(pmjson $A status -- 'd["state"] == "member" and d["quorum"]["k"] == 1 and d["confirmed"]')" = true ] ||
    fail "status on A lacks state/quorum/confirmed: $(pm $A status --json)"
everywhere has_x || fail "a node lost dr.x's report of U"
everywhere has_y || fail "a node lost dr.y's report of V"
for i in $A $B $C; do
    item_is $i "$U" 'w["state"] == "reported"' || fail "node $i: U is not reported: $(item $i "$U" 'w')"
    item_is $i "$V" 'w["state"] == "reported"' || fail "node $i: V is not reported: $(item $i "$V" 'w')"
done
log "   both branches' reports count on every node"
for i in $A $B $C; do
    out=$(pm $i check) || fail "check on node $i after the fork: $out"
done
log "   check: the views re-derived from both branches equal the stored ones on every node"

log "5. audit verify names the fork on every node; the log flags the branch events"
for i in $A $B $C; do
    pm $i audit export --out "$T/f$i.audit" >/dev/null || fail "export on node $i failed"
    rc=0
    pm $i audit verify "$T/f$i.audit" >"$T/v$i.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "audit verify of node $i's export exited $rc"
    grep -qiE "origin ${NODE_ID[C]} seq $((BASE + 1)):.*fork" "$T/v$i.out" ||
        fail "audit verify on node $i does not name C's seq $((BASE + 1)): $(cat "$T/v$i.out")"
    n=$(pm $i audit log --origin "${NODE_ID[C]}" --json | $PYTHON -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for e in d if e["seq"] > int(sys.argv[1])), sum(1 for e in d if e["fork"]))' "$BASE")
    [ "$n" = "$((2 * K)) $K" ] ||
        fail "node $i's audit log of C past seq $BASE: '$n', want $((2 * K)) events, $K flagged"
done
log "   $((2 * K)) events of C past seq $BASE listed on every node, the $K of the other branch flagged"

log "6. the forked origin is not mute: C claims W after the fork"
pm $C claim "$W" --reporter dr.z >/dev/null || fail "claim at C after the fork failed"
wait_until 20 item_is_all "$W" 'w["claimed_by"] == "dr.z"'
wait_until 30 digests_equal $A $B $C
show_digests
nodes_alive
echo "PASS: $TEST_NAME"
