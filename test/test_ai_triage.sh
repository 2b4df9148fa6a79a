#!/bin/bash
# AI triage: [worklist] ai_rule lines of the acquiring node (A=1) raise an item's
# priority from an AI product's result, on a two-trust mesh of real `pacsmesh run`
# processes (B=2 only watches). Asserted: an SR stored into a study whose content names
# the configured finding (SCT 50960005) raises it to immediate on every node, the
# flag's source naming the AI product, marked raised_by_ai with the rule, and the due
# time recomputed; an SR naming another finding changes nothing; a result series whose
# description a rule names raises its study too, with the rule's reason; a priority a
# person lowered afterwards is not raised again by a later announcement.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2
mesh_create 2
conf_add $A worklist 'ai_rule = code=SCT:50960005 : priority=immediate by=ai:ich-detector'
conf_add $A worklist 'ai_rule = series_description="AI FRACTURE*" : priority=urgent by=ai:fracture reason="AI: suspected fracture"'
wl_mesh_up

S=$T/studies
ICH=$(new_uid) CLEAR=$(new_uid) FRAC=$(new_uid)
import_study $A "$S" "$ICH" CT HEAD "CT HEAD"
import_study $A "$S" "$CLEAR" CT HEAD "CT HEAD"
import_study $A "$S" "$FRAC" CR WRIST "WRIST"
for u in $ICH $CLEAR $FRAC; do wait_until 30 item_is_all "$u" 'w["priority"] == "routine"'; done
ai() { /usr/bin/python3 "$(dirname "$0")/ai_result.py" "$@" || fail "cannot write the AI result"; }
import_file() { pm $A import "$1" >/dev/null || fail "import of $1 failed"; }

log "1. an SR naming the configured finding raises its study to immediate everywhere"
ai sr "$T/ich.dcm" "$S/$ICH/0000.dcm" SCT 50960005 "Hemorrhage"
import_file "$T/ich.dcm"
wait_until 30 item_is_all "$ICH" 'w["priority"] == "immediate"'
for i in $A $B; do
    [ "$(item $i "$ICH" 'w["flags"][-1]["by"]')" = ai:ich-detector ] || fail "node $i: the flag does not name the AI"
    [ "$(item $i "$ICH" 'w["flags"][-1]["raised_by_ai"]')" = true ] || fail "node $i: the flag is not marked raised by AI"
    [ "$(item $i "$ICH" 'w["flags"][-1]["ai_rule"]')" = 'code=SCT:50960005 : priority=immediate by=ai:ich-detector' ] ||
        fail "node $i: the flag does not carry the rule: $(item $i "$ICH" 'w["flags"][-1]')"
    item_is $i "$ICH" '"Hemorrhage" in w["flags"][-1]["reason"]' || fail "node $i: the reason does not name the finding"
done
# Due time recomputed: an immediate item is due within [worklist] due_immediate (1h)
# of its arrival, a routine one 28 days after.
$PYTHON - "$(pmjson $A worklist -- "[w['due'] for w in d if w['study_uid'] == '$ICH'][0]")" <<'PY' ||
import sys, datetime
due = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00"))
sys.exit(0 if due - datetime.datetime.now(datetime.timezone.utc) < datetime.timedelta(hours=1) else 1)
PY
    fail "the due time was not recomputed for immediate"
[ "$(pmjson $B audit log -- "sum(1 for e in d if e['type'] == 'item-flagged')")" = 1 ] ||
    fail "one flag event expected"

log "2. an SR naming another finding changes nothing"
ai sr "$T/clear.dcm" "$S/$CLEAR/0000.dcm" SCT 17621005 "Normal"
import_file "$T/clear.dcm"
wait_until 30 item_is $B "$CLEAR" 'w["modality"] == "CT\\SR" or "SR" in w["modality"]'
item_is $A "$CLEAR" 'w["priority"] == "routine" and w["flags"] == []' || fail "a non-matching SR raised the study"

log "3. a result series named by a rule raises its study, with the rule's reason"
ai series "$T/frac.dcm" "$S/$FRAC/0000.dcm" "AI FRACTURE DETECTED"
import_file "$T/frac.dcm"
wait_until 30 item_is_all "$FRAC" 'w["priority"] == "urgent"'
[ "$(item $B "$FRAC" 'w["flags"][-1]["reason"]')" = "AI: suspected fracture" ] || fail "the rule's reason is not the flag's"
[ "$(item $B "$FRAC" 'w["flags"][-1]["by"]')" = ai:fracture ] || fail "the flag does not name ai:fracture"

log "4. lowered by a person, not raised again by a later announcement"
pm $B flag "$ICH" --priority urgent --reason "reviewed: old bleed" --by radiographer.kim >/dev/null ||
    fail "flag by a person failed"
wait_until 30 item_is $A "$ICH" 'w["priority"] == "urgent"'
ai sr "$T/ich2.dcm" "$S/$ICH/0000.dcm" SCT 50960005 "Hemorrhage"
import_file "$T/ich2.dcm"
item_is $A "$ICH" 'w["priority"] == "urgent" and len(w["flags"]) == 2' ||
    fail "the AI rule raised the study again: $(item $A "$ICH" 'w["flags"]')"
wait_until 30 digests_equal
nodes_alive
exit 0
