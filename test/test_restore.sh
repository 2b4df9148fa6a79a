#!/bin/bash
# Restoring a node from `pacsmesh backup` (issue 16; docs/operations.md):
#   1. restore while its peers are up: the backup is taken while C runs, C then signs
#      more; restored, C first takes its later events back from its peers and only then
#      signs (no fork anywhere). Before it runs, a CLI claim on the restored store is
#      refused, and `status` says "confirmed": false and why.
#   2. restore while cut off from every peer: C runs alone and unconfirmed; a C-STORE
#      still succeeds (stored, not announced) and a CLI claim waits; when its peers come
#      back, C confirms, announces the study and the claim goes through: no fork on any
#      node, the study is announced everywhere, views agree.
#   3. refusals: a restore onto a running node, a backup without MANIFEST (killed half
#      way), a backup of another node.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
wl_need_pydicom
dicom_init

A=1 B=2 C=3
mesh_create 3
dicom_loopback $A $B $C
wl_mesh_up
S=$T/studies
U=$(new_uid) V=$(new_uid) W=$(new_uid)
import_study $A "$S" "$U" CT HEAD "CT HEAD"
import_study $A "$S" "$V" CT CHEST "CT CHEST"
import_study $A "$S" "$W" CR CHEST "CHEST PA"
wait_until 30 item_is_all "$W" 'w["state"] == "unreported"'

head_of() { pmjson "$1" status -- "next((h['seq'] for h in d['heads'] if h['origin'] == '$2'), 0)"; }
head_is() { [ "$(head_of "$1" "$2")" = "$3" ]; }
no_forks() { [ "$(pmjson "$1" status -- 'len(d["forks"])')" = 0 ]; }
confirmed() { [ "$(pmjson "$1" status -- 'd["confirmed"]')" = true ]; }
all_without_forks() { local i; for i in $A $B $C; do no_forks $i || return 1; done; }

log "1. restore while the peers are up"
pm $C fetch "$U" >/dev/null || fail "fetch at C failed" # a cached blob the backup leaves out
pm $C claim "$U" --reporter dr.c >/dev/null || fail "claim at C failed"
pm $C backup --out "$T/bk1" >"$T/bk1.out" || fail "backup of the running C failed"
grep -q "own feed at seq" "$T/bk1.out" || fail "backup did not say what it wrote: $(cat "$T/bk1.out")"
PRE=$(head_of $C "${NODE_ID[C]}")
pm $C release "$U" --reporter dr.c >/dev/null || fail "release at C failed"
pm $C claim "$V" --reporter dr.c >/dev/null || fail "claim of V at C failed"
POST=$(head_of $C "${NODE_ID[C]}")
for i in $A $B; do wait_until 20 head_is $i "${NODE_ID[C]}" "$POST"; done
node_stop $C
pm $C restore "$T/bk1" >"$T/r1.out" || fail "restore failed: $(cat "$T/r1.out")"
head_is $C "${NODE_ID[C]}" "$PRE" || fail "the restored C is not at seq $PRE"
[ "$(pmjson $C status -- 'd["confirmed"]')" = false ] || fail "status of the restored C does not say confirmed: false"
pmjson $C status -- 'd["unconfirmed_reason"]' | grep -q "restored" || fail "status gives no reason"
expect_exit 1 "no peer has yet confirmed" pm $C claim "$W" --reporter dr.c
head_is $C "${NODE_ID[C]}" "$PRE" || fail "the refused claim signed an event"
log "   stopped and restored: status says confirmed false; a CLI claim is refused: $EXPECT_ERR"
node_start $C
wait_until 30 confirmed $C
head_is $C "${NODE_ID[C]}" "$POST" || fail "C confirmed at seq $(head_of $C "${NODE_ID[C]}"), not $POST"
grep -q "a peer confirmed this node's own feed up to seq $POST" "${NODE_LOG[C]}" ||
    fail "C's log does not say a peer confirmed seq $POST"
out=$(pm $C check) || fail "check on the restored C (its cache not in the backup) failed: $out"
pm $C claim "$W" --reporter dr.c >/dev/null || fail "claim at the confirmed C failed"
for i in $A $B $C; do wait_until 20 head_is $i "${NODE_ID[C]}" $((POST + 1)); done
all_without_forks || fail "a node lists a fork after restore 1"
wait_until 30 digests_equal $A $B $C
wait_until 20 item_is_all "$V" 'w["claimed_by"] == "dr.c"'
log "   C took back seq $((PRE + 1))..$POST from its peers, then signed seq $((POST + 1)); no fork"

log "2. restore while cut off from every peer; a C-STORE and a claim meanwhile"
pm $C backup --out "$T/bk2" >/dev/null || fail "second backup failed"
PRE=$(head_of $C "${NODE_ID[C]}")
pm $C release "$W" --reporter dr.c >/dev/null || fail "release at C failed"
POST=$(head_of $C "${NODE_ID[C]}")
for i in $A $B; do wait_until 20 head_is $i "${NODE_ID[C]}" "$POST"; done
node_stop $C
node_stop $A
node_stop $B
pm $C restore "$T/bk2" >/dev/null || fail "second restore failed"
node_start $C
wait_until 20 dicom_up $C
UID_NEW=$(gen_study "$T/cs" 1 3 PIDC "SYN^CSTORE" 20240101) || fail "gen_study failed"
dstore $C "$T/cs" >"$T/store.out" 2>&1 || fail "C-STORE to the unconfirmed C failed: $(cat "$T/store.out")"
confirmed $C && fail "C says confirmed with no peer reachable"
head_is $C "${NODE_ID[C]}" "$PRE" || fail "the unconfirmed C signed (head $(head_of $C "${NODE_ID[C]}"))"
pm $C claim "$U" --reporter dr.late >"$T/claim.out" 2>&1 &
CLAIM=$!
STARTED_PIDS+=("$CLAIM")
holds_for 2 head_is $C "${NODE_ID[C]}" "$PRE"
# A read of another trust's study is a signed event too: refused, saying why.
expect_exit 1 "waits for a peer to confirm how far its own feed goes" pm $C fetch "$U"
log "   C-STORE acknowledged, nothing signed; a claim waits; a fetch is refused"
node_start $A
node_start $B
wait_until 40 confirmed $C
wait "$CLAIM" || fail "the waiting claim failed: $(cat "$T/claim.out")"
for i in $A $B $C; do wait_until 30 item_is $i "$UID_NEW" 'w["state"] == "unreported"'; done
wait_until 20 item_is_all "$U" 'w["claimed_by"] == "dr.late"'
all_without_forks || fail "a node lists a fork after restore 2"
wait_until 30 digests_equal $A $B $C
log "   healed: the stored study is announced everywhere, the claim signed after seq $POST; no fork"

log "3. refusals"
expect_exit 1 "a node is running" pm $C restore "$T/bk2"
rm "$T/bk2/MANIFEST"
node_stop $C
expect_exit 1 "no MANIFEST" pm $C restore "$T/bk2"
node_stop $A
expect_exit 1 "not of the node in" pm $A restore "$T/bk1"
node_start $A
node_start $C
log "   running node, unfinished backup and another node's backup are refused by name"

log "4. kill -9 at any moment of a backup or a restore loses nothing"
D0=$(digest_of $C)
for delay in 0.00 0.01 0.02 0.05 0.1; do
    rm -rf "$T/bk-k"
    "$PACSMESH" backup --dir "${NODE_DIR[C]}" --out "$T/bk-k" >/dev/null 2>&1 &
    bk=$!
    sleep "$delay"
    kill -KILL "$bk" 2>/dev/null
    wait "$bk" 2>/dev/null
    node_alive $C || fail "a backup killed after ${delay}s took the node down"
    if [ -e "$T/bk-k/MANIFEST" ]; then kept=complete; else
        expect_exit 1 "no MANIFEST|not a complete" pm $C restore "$T/bk-k"
        kept=refused
    fi
    log "   backup killed after ${delay}s: $kept"
done
digest_is $C "$D0" || fail "killed backups changed the node"
pm $C backup --out "$T/bk3" >/dev/null || fail "backup after the kills failed"
node_stop $C
for delay in 0.00 0.01 0.03 0.06; do
    "$PACSMESH" restore --dir "${NODE_DIR[C]}" "$T/bk3" >/dev/null 2>&1 &
    rs=$!
    sleep "$delay"
    kill -KILL "$rs" 2>/dev/null
    wait "$rs" 2>/dev/null
    # Either the old directory or the restored one is in place, never a mix: the id
    # is C's and its store opens; a rerun of restore finishes what was cut.
    [ "$(pm $C id 2>/dev/null)" = "${NODE_ID[C]}" ] || [ ! -e "${NODE_DIR[C]}" ] ||
        fail "after a restore killed at ${delay}s, ${NODE_DIR[C]} is not node C"
    pm $C restore "$T/bk3" >/dev/null || fail "restore after a kill at ${delay}s failed"
    digest_of $C >/dev/null || fail "the restored store does not open"
done
node_start $C
wait_until 30 confirmed $C
all_without_forks || fail "a fork after the killed restores"
wait_until 30 digests_equal $A $B $C
log "   killed restores: the directory was always one node or the other; rerun, confirmed, no fork"
nodes_alive
echo "PASS: $TEST_NAME"
