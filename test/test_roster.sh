#!/bin/bash
# The roster and "next for me" on a three-trust mesh (A=1 acquires, B=2, C=3) of real
# `pacsmesh run` processes, driven through the CLI only: reporters registered at one
# node are on every node's roster; `next` never offers an item a reporter may not
# report (sub-specialty, site), puts the most urgent first, spreads two reporters
# asking at once over different items, respects capacity, and a flag re-orders it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3
mesh_create 3
conf_add $A worklist 'rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro'
conf_add $A worklist 'rule = modality=MR : subspecialty=msk'
conf_add $A worklist 'rule = description=URGENT* : priority=immediate'
wl_mesh_up

S=$T/studies
H1=$(new_uid) H2=$(new_uid) K1=$(new_uid) G1=$(new_uid) U1=$(new_uid)
import_study $A "$S" "$H1" CT HEAD "CT HEAD ONE"
import_study $A "$S" "$H2" CT HEAD "CT HEAD TWO"
import_study $A "$S" "$K1" MR KNEE "MR KNEE"
import_study $A "$S" "$G1" CR CHEST "CHEST PA"
import_study $A "$S" "$U1" CR CHEST "URGENT CHEST"
for u in $H1 $H2 $K1 $G1 $U1; do wait_until 30 item_is_all "$u" 'w["state"] == "unreported"'; done

log "1. reporters registered at A and B are on every node's roster"
pm $A reporter add dr.neuro --name "Dr Neuro" --subspecialty neuro --capacity 1 >/dev/null || fail "add dr.neuro"
pm $A reporter add dr.msk --name "Dr Msk" --subspecialty msk --site "${NODE_ID[A]}" >/dev/null || fail "add dr.msk"
pm $B reporter add dr.bonly --name "Dr B-only" --site "${NODE_ID[B]}" >/dev/null || fail "add dr.bonly"
pm $B reporter add dr.gen --name "Dr General" >/dev/null || fail "add dr.gen"
roster_is() { [ "$(pmjson "$1" reporter list -- '",".join(r["id"] for r in d)')" = "$2" ]; }
for i in $A $B $C; do wait_until 20 roster_is $i dr.bonly,dr.gen,dr.msk,dr.neuro; done
expect_exit 2 'capacity' pm $A reporter add dr.x --name X --capacity -1
expect_exit 2 'capacity' pm $A reporter add dr.x --name X --capacity ''
expect_exit 2 'reporter ID' pm $A reporter add 'dr x' --name X

# next_of I REPORTER: the study UID next offers (or "none").
next_of() { pmjson "$1" next --reporter "$2" -- 'd["study_uid"]' 2>/dev/null || echo none; }
# eligible REPORTER UID: the rule, restated from the roster: sub-specialty and site.
declare -A SUB=([$H1]=neuro [$H2]=neuro [$K1]=msk [$G1]= [$U1]=)
may_take()
{
    case "$1" in
    dr.neuro) [ -z "${SUB[$2]}" ] || [ "${SUB[$2]}" = neuro ] ;;
    dr.msk) [ -z "${SUB[$2]}" ] || [ "${SUB[$2]}" = msk ] ;;
    dr.gen) [ -z "${SUB[$2]}" ] ;;
    *) return 1 ;;
    esac
}

log "2. next offers only items a reporter may take; the most urgent first"
[ "$(next_of $C dr.bonly)" = none ] || fail "dr.bonly (credentialed for B only) was offered A's study"
expect_exit 1 'nothing for dr\.bonly' pm $C next --reporter dr.bonly
for r in dr.neuro dr.msk dr.gen; do
    u=$(next_of $C $r)
    may_take $r "$u" || fail "next offered $r the study $u, which they may not report"
done
[ "$(next_of $B dr.gen)" = "$U1" ] || fail "dr.gen (first by id of those who may take it) should be offered the immediate chest"
expect_exit 1 'not on the roster' pm $C next --reporter dr.nobody

log "3. two reporters asking at once are offered different items; both claims hold"
un=$(next_of $B dr.neuro) ug=$(next_of $C dr.gen)
[ "$un" != "$ug" ] || fail "dr.neuro and dr.gen were both offered $un"
pm $B claim "$un" --reporter dr.neuro >/dev/null || fail "dr.neuro's claim of $un failed"
pm $C claim "$ug" --reporter dr.gen >/dev/null || fail "dr.gen's claim of $ug failed"
wait_until 20 item_is_all "$un" 'w["claimed_by"] == "dr.neuro"'
wait_until 20 item_is_all "$ug" 'w["claimed_by"] == "dr.gen"'

log "4. capacity: dr.neuro (capacity 1) is offered nothing more while holding one"
expect_exit 1 'capacity' pm $B next --reporter dr.neuro

log "5. a flag re-orders next: the knee flagged immediate comes first for dr.msk"
pm $A flag "$K1" --priority immediate --reason "AI: suspected fracture" --by ai:fracture >/dev/null ||
    fail "flag failed"
wait_until 20 item_is_all "$K1" 'w["priority"] == "immediate"'
left=$(next_of $C dr.msk)
[ "$left" = "$K1" ] || [ "$left" = "$U1" ] || fail "dr.msk was offered $left, not an immediate item"
pm $C claim "$U1" --reporter dr.gen >/dev/null 2>&1 || true
wait_until 20 eval "[ \"\$(next_of $C dr.msk)\" = $K1 ]"

log "6. capacity 0 set at B takes dr.msk off the rota: next offers them nothing at A or C"
[ "$(next_of $A dr.msk)" != none ] || fail "dr.msk should be offered an item before the change"
pm $B reporter add dr.msk --name "Dr Msk" --subspecialty msk --site "${NODE_ID[A]}" --capacity 0 \
    >/dev/null || fail "setting dr.msk's capacity to 0 failed"
capacity_is() { [ "$(pmjson "$1" reporter list -- "[r['capacity'] for r in d if r['id'] == '$2'][0]")" = "$3" ]; }
for i in $A $C; do wait_until 20 capacity_is $i dr.msk 0; done
for i in $A $C; do
    rc=0
    out=$(pm $i next --reporter dr.msk 2>"$T/next.err") || rc=$?
    [ "$rc" = 1 ] || fail "next at node $i exited $rc for dr.msk (capacity 0), not 1: $out"
    [ -z "$out" ] || fail "next at node $i printed '$out' for a reporter with capacity 0"
    grep -q 'capacity is 0' "$T/next.err" || fail "next at node $i did not say why: $(cat "$T/next.err")"
done

log "7. reporter remove takes a reporter off every roster"
pm $C reporter remove dr.bonly >/dev/null || fail "remove failed"
for i in $A $B $C; do wait_until 20 roster_is $i dr.gen,dr.msk,dr.neuro; done
wait_until 30 digests_equal
exit 0
