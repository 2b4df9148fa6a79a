#!/bin/bash
# A safe report lifecycle and levelling by hand, on a three-trust mesh (A=1 acquires,
# B=2, C=3) of real `pacsmesh run` processes, driven through the CLI only:
#   a report by someone not holding the claim is refused, naming the holder, and changes
#   nothing; the same report twice is one report; an addendum links to the report it
#   amends and leaves the state alone; a free item is claimed and reported in one step;
#   a flag (an AI triage result) raises an item's priority and due time on every node
#   and re-orders every worklist; a coordinator's assignment takes an item from its
#   holder, named in the log; only the acquiring trust may withdraw a study, which then
#   leaves every worklist and refuses claims.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3
mesh_create 3
node_set_conf $A worklist due_routine 28d
wl_mesh_up

S=$T/studies
ONE=$(new_uid) TWO=$(new_uid) THREE=$(new_uid) FOUR=$(new_uid)
import_study $A "$S" "$ONE" CT CHEST "CHEST ONE"
import_study $A "$S" "$TWO" CR CHEST "CHEST TWO"
import_study $A "$S" "$THREE" CT HEAD "HEAD THREE"
import_study $A "$S" "$FOUR" MR KNEE "SENT IN ERROR"
for u in $ONE $TWO $THREE $FOUR; do wait_until 30 item_is_all "$u" 'w["state"] == "unreported"'; done
printf 'Chest CT: clear lungs.\n' >"$T/r1.txt"
printf 'Addendum: nodule 3 mm, right apex, on review.\n' >"$T/a1.txt"

log "1. a report by a reporter who does not hold the claim is refused, naming the holder"
pm $B claim "$ONE" --reporter dr.bell >/dev/null || fail "claim at B failed"
wait_until 20 item_is_all "$ONE" 'w["claimed_by"] == "dr.bell"'
unchanged_by $C expect_exit 1 'claimed by dr\.bell' pm $C report "$ONE" --reporter dr.cole --file "$T/r1.txt"
[ "$(item $C "$ONE" 'w["state"], w["reports"]')" = "('claimed', 0)" ] || fail "C's refused report moved the item"

log "2. the holder's report; the same text again is one report"
pm $B report "$ONE" --reporter dr.bell --file "$T/r1.txt" >/dev/null || fail "report at B failed"
wait_until 20 item_is_all "$ONE" 'w["state"] == "reported" and w["reports"] == 1'
out=$(unchanged_by $B pm $B report "$ONE" --reporter dr.bell --file "$T/r1.txt") ||
    fail "a repeated report should succeed as a no-op"
printf '%s\n' "$out" | grep -q 'already submitted' || fail "repeat said: $out"

log "3. an addendum links to the report and leaves the state as it is"
pm $B report "$ONE" --reporter dr.bell --file "$T/a1.txt" --addendum >/dev/null || fail "addendum failed"
wait_until 20 item_is_all "$ONE" 'w["state"] == "reported" and w["reports"] == 2 and not w["conflict"]'
pmjson $C reports "$ONE" -- 'd[1]["amends"] == d[0]["sr_uid"] and d[0]["amends"] is None' | grep -qx true ||
    fail "the addendum does not name the report it amends: $(pm $C reports "$ONE" --json)"
expect_exit 1 'no report to add an addendum' pm $C report "$TWO" --reporter dr.cole --file "$T/a1.txt" --addendum

log "4. a report on a free item claims and reports it in one step"
pm $C report "$TWO" --reporter dr.cole --file "$T/r1.txt" >/dev/null || fail "report of a free item failed"
wait_until 20 item_is_all "$TWO" 'w["state"] == "reported" and w["reports"] == 1'

log "5. a flag from an AI product raises THREE to immediate on every node, due within 1 h"
due0=$(item $C "$THREE" 'w["due"]')
pm $B flag "$THREE" --priority immediate --reason "suspected haemorrhage" --by ai:bleed-detect >/dev/null ||
    fail "flag at B failed"
wait_until 20 item_is_all "$THREE" 'w["priority"] == "immediate" and len(w["flags"]) == 1 and w["flags"][0]["by"] == "ai:bleed-detect"'
due1=$(item $C "$THREE" 'w["due"]')
[[ "$due1" < "$due0" ]] || fail "the due time did not move earlier ($due0 -> $due1)"
first=$(pmjson $C worklist -- '[w["study_uid"] for w in d if w["state"] == "unreported"][0]')
[ "$first" = "$THREE" ] || fail "the flagged study is not first on C's worklist (first: $first)"
expect_exit 2 'priority is one of' pm $B flag "$THREE" --priority high --reason x --by y

log "6. a coordinator assigns THREE to dr.cole, taking it from dr.bell"
pm $B claim "$THREE" --reporter dr.bell >/dev/null || fail "claim of THREE failed"
wait_until 20 item_is_all "$THREE" 'w["claimed_by"] == "dr.bell"'
pm $C assign "$THREE" --reporter dr.cole --by coord.kim >/dev/null || fail "assign at C failed"
wait_until 20 item_is_all "$THREE" 'w["claimed_by"] == "dr.cole" and w["assigned_by"] == "coord.kim"'
expect_exit 1 'already reported' pm $C assign "$ONE" --reporter dr.cole --by coord.kim

log "7. only the acquiring trust withdraws; the study leaves every worklist and refuses claims"
unchanged_by $B expect_exit 1 'only the trust that acquired' pm $B withdraw "$FOUR" --reason "wrong patient"
pm $A withdraw "$FOUR" --reason "sent in error" >/dev/null || fail "withdraw at A failed"
for i in $A $B $C; do wait_until 20 eval "[ \"\$(item $i $FOUR w)\" = absent ]"; done
[ "$(pmjson $C worklist --state withdrawn -- '[w["study_uid"] for w in d]')" = "['$FOUR']" ] ||
    fail "worklist --state withdrawn does not list it"
unchanged_by $C expect_exit 1 'withdrawn' pm $C claim "$FOUR" --reporter dr.cole

log "8. every node holds the same views"
wait_until 30 digests_equal
exit 0
