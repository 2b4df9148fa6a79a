#!/bin/bash
# The network worklist end to end on a three-trust mesh (A=1, B=2, C=3) of real
# `pacsmesh run` processes on loopback, driven only through the CLI:
#   rules at the acquiring trust set priority and sub-specialty seen everywhere; a claim
#   is seen everywhere and a second claim is refused naming the holder; release hands
#   the item back; a report moves it to reported on every node and `reports` shows it
#   everywhere; an unclaimed item past its due time is overdue everywhere and counted
#   as an orphan; an expired lease frees a claim; double read: reported -> verified by a
#   second reader, never by the author; `tat` reproduces a scripted scenario's timings;
#   bad input is refused with a clear message and changes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3
LEASE_S=4
mesh_create 3
# Trust A's rules. The lease is short on A only: B's claims below must hold for the
# whole test, A's is the one left to expire.
conf_add $A worklist 'rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro'
conf_add $A worklist 'rule = description=DOUBLE* : priority=urgent subspecialty=msk double_read=yes'
conf_add $A worklist 'rule = description=LEASE* : priority=immediate'
conf_add $A worklist 'rule = modality=CT description=MIXED* : priority=immediate subspecialty=mixed'
node_set_conf $A worklist due_routine 2s
node_set_conf $A worklist lease ${LEASE_S}s
# Trust C's studies for the turnaround scenario get their own group.
conf_add $C worklist 'rule = description=TAT* : priority=immediate subspecialty=tat'
pm $A worklist >/dev/null || fail "node A rejects its node.conf"
wl_mesh_up

S=$T/studies
HEAD=$(new_uid) ORPHAN=$(new_uid) LEASE=$(new_uid) DOUBLE=$(new_uid) MIXED=$(new_uid)
import_study $A "$S" "$HEAD" CT HEAD "CT HEAD NON-CONTRAST"
t_orphan=$(now_ms)
import_study $A "$S" "$ORPHAN" CR CHEST "CHEST PA"
import_study $A "$S" "$LEASE" CT ABDOMEN "LEASE TEST ABDOMEN"
import_study $A "$S" "$DOUBLE" MR KNEE "DOUBLE READ KNEE"
import_study $A "$S" "$MIXED" OCT,CT EYE "MIXED OCT AND CT"

log "1. rules at A: the CT head is urgent/neuro on C's worklist"
wait_until 30 item_is $C "$HEAD" 'w["priority"] == "urgent" and w["subspecialty"] == "neuro"'
wait_until 30 item_is_all "$HEAD" 'w["state"] == "unreported" and w["claimed_by"] is None'
[ "$(item $C "$HEAD" 'w["site"]')" = "${NODE_ID[A]}" ] || fail "site of the CT head is not A"
[ "$(item $C "$ORPHAN" 'w["priority"], w["subspecialty"]')" = "('routine', '')" ] ||
    fail "the chest X-ray should have the defaults: $(item $C "$ORPHAN" w)"
[ "$(item $C "$HEAD" 'w["due"] < (__import__("datetime").datetime.utcnow() + __import__("datetime").timedelta(hours=24, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")')" = true ] ||
    fail "an urgent item should be due within 24 h"

log "1b. a study with series OCT then CT lists both and meets the CT rule (modalities compared whole)"
wait_until 30 item_is $C "$MIXED" 'w["modality"] == "OCT\\CT" and w["priority"] == "immediate" and w["subspecialty"] == "mixed"' ||
    fail "OCT+CT study at C: $(item $C "$MIXED" w)"

log "2. a claim at B is seen at C; a second claim at C is refused, naming B's reporter"
pm $B claim "$HEAD" --reporter dr.bell >/dev/null || fail "claim at B failed"
wait_until 20 item_is_all "$HEAD" 'w["state"] == "claimed" and w["claimed_by"] == "dr.bell"'
unchanged_by $C expect_exit 1 'dr\.bell' pm $C claim "$HEAD" --reporter dr.cole

log "3. release hands it back everywhere; B claims again"
expect_exit 1 'not claimed by dr\.cole' pm $C release "$HEAD" --reporter dr.cole
pm $B release "$HEAD" --reporter dr.bell >/dev/null || fail "release at B failed"
wait_until 20 item_is_all "$HEAD" 'w["state"] == "unreported" and w["claimed_by"] is None'
pm $B claim "$HEAD" --reporter dr.bell >/dev/null || fail "second claim at B failed"
wait_until 20 item_is_all "$HEAD" 'w["claimed_by"] == "dr.bell"'

log "4. B's report moves the item to reported on every node; reports shows it everywhere"
printf 'CT head: no acute intracranial abnormality. \xe2\x80\x94 synthetic test report\n' >"$T/r1.txt"
pm $B report "$HEAD" --reporter dr.bell --file "$T/r1.txt" >/dev/null || fail "report at B failed"
wait_until 20 item_is_all "$HEAD" 'w["state"] == "reported" and not w["conflict"]'
for i in $A $B $C; do
    got=$(pmjson $i reports "$HEAD" -- \
        '[(r["reporter"], r["node"], r["text"]) for r in d] == [("dr.bell", "'"${NODE_ID[B]}"'", open("'"$T/r1.txt"'", encoding="utf-8").read())]')
    [ "$got" = true ] || fail "reports on node $i: $(pm $i reports "$HEAD" --json)"
done
log "   reported on A, B and C, text byte for byte"

log "5. an unclaimed routine item from A (due_routine 2s) is overdue and an orphan everywhere"
# The due time is A's (announcement + 2 s), carried in the event: every node agrees.
left=$((t_orphan + 2500 - $(now_ms)))
[ "$left" -gt 0 ] && sleep "$(printf '0.%03d' "$left")" # a due time the test set
wait_until 20 item_is_all "$ORPHAN" 'w["overdue"] and w["state"] == "unreported"'
for i in $A $B $C; do
    [ "$(pm $i worklist --overdue --json | $PYTHON -c 'import json,sys; print(sys.argv[1] in [w["study_uid"] for w in json.load(sys.stdin)])' "$ORPHAN")" = True ] ||
        fail "node $i: worklist --overdue lacks the orphan"
    # Orphans: unclaimed past due. Count them from the worklist and compare.
    want=$(pm $i worklist --overdue --state unreported --json | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))')
    got=$(status_field $i 'd["worklist"]["orphans"]')
    [ "$got" -ge 1 ] && [ "$got" = "$want" ] || fail "node $i: status orphans $got, worklist says $want"
done
[ "$(item $B "$HEAD" 'w["overdue"]')" = false ] || fail "the reported CT head must not be overdue"
log "   overdue on A, B and C; status --json orphans agrees with the worklist"

log "6. a lease (${LEASE_S}s on A) expires and frees the claim for another reporter"
pm $A claim "$LEASE" --reporter dr.adams >/dev/null || fail "claim at A failed"
t_claim=$(now_ms)
wait_until 20 item_is $C "$LEASE" 'w["claimed_by"] == "dr.adams"'
seen_ms=$(($(now_ms) - t_claim))
if [ "$seen_ms" -lt $((LEASE_S * 1000 - 1000)) ]; then
    # Still well inside the lease: C must refuse.
    expect_exit 1 'dr\.adams' pm $C claim "$LEASE" --reporter dr.cole
fi
wait_until 20 item_is $C "$LEASE" 'w["state"] == "unreported" and w["claimed_by"] is None'
freed_ms=$(($(now_ms) - t_claim))
[ "$freed_ms" -ge $((LEASE_S * 1000 - 200)) ] || fail "the claim was freed after ${freed_ms} ms, before its ${LEASE_S} s lease"
pm $C claim "$LEASE" --reporter dr.cole >/dev/null || fail "claim at C after the lease expired failed"
wait_until 20 item_is_all "$LEASE" 'w["state"] == "claimed" and w["claimed_by"] == "dr.cole"'
log "   freed after ${freed_ms} ms; dr.cole holds it on every node"

log "7. double read: reported, then verified by a second reader; never by the author"
wait_until 20 item_is_all "$DOUBLE" 'w["double_read"] and w["subspecialty"] == "msk"'
printf 'MR knee: intact menisci and ligaments.\n' >"$T/r2.txt"
pm $C claim "$DOUBLE" --reporter dr.cole >/dev/null || fail "claim of the double-read study failed"
expect_exit 1 'reported' pm $B verify "$DOUBLE" --reporter dr.bell # not reported yet
pm $C report "$DOUBLE" --reporter dr.cole --file "$T/r2.txt" >/dev/null || fail "report failed"
wait_until 20 item_is_all "$DOUBLE" 'w["state"] == "reported"'
unchanged_by $C expect_exit 1 'dr\.cole.*second reader|second reader' pm $C verify "$DOUBLE" --reporter dr.cole
unchanged_by $A expect_exit 1 'second reader' pm $A verify "$DOUBLE" --reporter dr.cole
# A reporter who reported twice is still the only author: refused here, as the fold
# would ignore the verification.
printf 'MR knee: addendum, no change.\n' >"$T/r2b.txt"
pm $C report "$DOUBLE" --reporter dr.cole --file "$T/r2b.txt" >/dev/null || fail "second report failed"
wait_until 20 item_is_all "$DOUBLE" 'w["reports"] == 2'
unchanged_by $C expect_exit 1 'second reader' pm $C verify "$DOUBLE" --reporter dr.cole
pm $B verify "$DOUBLE" --reporter dr.bell >/dev/null || fail "verify by a second reader failed"
wait_until 20 item_is_all "$DOUBLE" 'w["state"] == "verified"'
log "   verified on every node"

log "8. tat reproduces a scripted scenario (studies from C, reported after known delays)"
T1=$(new_uid) T2=$(new_uid) T3=$(new_uid)
for u in $T1 $T2 $T3; do make_study "$S" "$u" CT CHEST "TAT CHEST"; done
t0=$(now_ms)
out=$(pm $C import "$S/$T1" "$S/$T2" "$S/$T3" 2>&1) || fail "import at C failed: $out"
t1=$(now_ms)
printf 'Chest CT: normal.\n' >"$T/r3.txt"
declare -A lo hi
k=0
for pair in "$T1:1000" "$T2:2500" "$T3:4500"; do
    u=${pair%%:*} delay=${pair##*:}
    left=$((t1 + delay - $(now_ms)))
    [ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
    r0=$(now_ms)
    pm $C report "$u" --reporter dr.cole --file "$T/r3.txt" >/dev/null || fail "report of $u failed"
    r1=$(now_ms)
    # The announcement is inside [t0, t1], the report event inside [r0, r1].
    lo[$k]=$((r0 - t1)) hi[$k]=$((r1 - t0))
    k=$((k + 1))
done
for i in $A $B $C; do
    wait_until 20 item_is $i "$T3" 'w["state"] == "reported"'
    got=$(pmjson $i tat --site "${NODE_ID[C]:0:8}" -- \
        '[(g["count"], g["median_ms"], g["p90_ms"]) for g in d if g["priority"] == "immediate"][0]')
    read -r cnt med p90 < <(printf '%s' "$got" | tr -d '(),')
    [ "$cnt" = 3 ] || fail "node $i: tat count $cnt, want 3 ($got)"
    # Nearest rank: the median of 3 is the 2nd, the 90th percentile the 3rd.
    [ "$med" -ge "${lo[1]}" ] && [ "$med" -le "${hi[1]}" ] ||
        fail "node $i: tat median ${med} ms outside [${lo[1]}, ${hi[1]}]"
    [ "$p90" -ge "${lo[2]}" ] && [ "$p90" -le "${hi[2]}" ] ||
        fail "node $i: tat p90 ${p90} ms outside [${lo[2]}, ${hi[2]}]"
done
log "   median ${med} ms in [${lo[1]}, ${hi[1]}], p90 ${p90} ms in [${lo[2]}, ${hi[2]}] on A, B and C"
pm $A tat >/dev/null || fail "tat table failed"

log "9. bad input: a clear error, and nothing changed"
printf '' >"$T/empty.txt"
printf 'CT head: \xff\xfe not UTF-8\n' >"$T/latin.txt"
printf '   \n\t\n' >"$T/blank.txt"
unchanged_by $B expect_exit 1 'unknown study' pm $B claim 1.2.3.4.999 --reporter dr.bell
unchanged_by $B expect_exit 1 'unknown study' pm $B report 1.2.3.4.999 --reporter dr.bell --file "$T/r1.txt"
unchanged_by $B expect_exit 2 'reporter' pm $B claim "$ORPHAN" --reporter 'dr bell;rm'
unchanged_by $B expect_exit 2 'reporter' pm $B claim "$ORPHAN" --reporter ''
unchanged_by $B expect_exit 2 'reporter' pm $B claim "$ORPHAN" --reporter "$(printf 'x%.0s' {1..65})"
unchanged_by $B expect_exit 2 'required' pm $B claim "$ORPHAN"
unchanged_by $B expect_exit 1 'empty' pm $B report "$ORPHAN" --reporter dr.bell --file "$T/empty.txt"
unchanged_by $B expect_exit 1 'empty' pm $B report "$ORPHAN" --reporter dr.bell --file "$T/blank.txt"
unchanged_by $B expect_exit 1 'UTF-8' pm $B report "$ORPHAN" --reporter dr.bell --file "$T/latin.txt"
unchanged_by $B expect_exit 1 'cannot read' pm $B report "$ORPHAN" --reporter dr.bell --file "$T/nonexistent"
unchanged_by $C expect_exit 1 'already reported' pm $C claim "$HEAD" --reporter dr.cole
unchanged_by $C expect_exit 1 'already verified' pm $C claim "$DOUBLE" --reporter dr.cole
unchanged_by $B expect_exit 2 'state' pm $B worklist --state bogus
nodes_alive
wait_until 30 digests_equal
show_digests
echo "PASS: $TEST_NAME"
