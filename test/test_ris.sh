#!/bin/bash
# Reports go home: on a two-trust mesh (A=1 acquires, B=2 reports) of real `pacsmesh
# run` processes, A sends each final report of its studies to its RIS ([ris]
# endpoint) as an HL7 v2.5 ORU^R01 over MLLP. The RIS here is test/ris_listener.py,
# which parses with python3-hl7. Asserted: nothing is lost while the RIS is down
# (status and the pacsmesh_ris_undelivered metric count it, it arrives when the RIS
# comes up); one message per final report
# with the right patient, accession, study UID, reporter and text (HL7 delimiters in
# the text survive escaping); a double-read study goes only once verified; an
# addendum goes again as a correction; a restart sends nothing twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom
/usr/bin/python3 -c 'import hl7' 2>/dev/null || skip "python3-hl7 is not installed"

A=1 B=2
mesh_create 2
alloc_port
RIS_PORT=$PORT
node_set_conf $A ris endpoint "127.0.0.1:$RIS_PORT"
node_set_conf $A ris sending_facility "ST ELSEWHERE"
node_set_conf $A ris retry 1s
alloc_port
METRICS_PORT=$PORT
node_set_conf $A metrics listen "127.0.0.1:$METRICS_PORT"
conf_add $A worklist 'rule = description=DOUBLE* : double_read=yes'
wl_mesh_up

S=$T/studies
ONE=$(new_uid) TWO=$(new_uid)
import_study $A "$S" "$ONE" CT CHEST "CHEST CT"
import_study $A "$S" "$TWO" MR KNEE "DOUBLE READ KNEE"
wait_until 30 item_is_all "$ONE" 'w["state"] == "unreported"'
wait_until 30 item_is_all "$TWO" 'w["state"] == "unreported"'
printf 'Findings: a|b^c&d~e\\f.\nImpression: no acute abnormality.\n' >"$T/r1.txt"
printf 'MR knee: intact menisci.\n' >"$T/r2.txt"
printf 'Addendum: small effusion.\n' >"$T/a1.txt"

RECEIVED=$T/ris.jsonl
received() { [ -f "$RECEIVED" ] && wc -l <"$RECEIVED" || echo 0; }
undelivered() { pmjson $A status -- 'd["ris"]["undelivered"]'; }
undelivered_is() { [ "$(undelivered)" = "$1" ]; }
msg() { sed -n "${1}p" "$RECEIVED" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"; }

log "1. a final report while the RIS is down: kept, counted in A's status"
pm $B report "$ONE" --reporter dr.bell --file "$T/r1.txt" >/dev/null || fail "report at B failed"
wait_until 30 undelivered_is 1
wait_until 20 log_grew $A 'not delivered to 127.0.0.1' 0
# The sender's thread counts what is still to go after the round that tried it.
metric_undelivered() {
    curl -sS --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/metrics" &&
        grep -qx "pacsmesh_ris_undelivered $1" "$T/metrics"
}
wait_until 10 metric_undelivered 1

log "2. the RIS comes up: one ORU^R01 with the patient, accession, study, reporter and text"
/usr/bin/python3 "$(dirname "$0")/ris_listener.py" "$RIS_PORT" "$RECEIVED" "$T/ris-stop" 300 &
LISTENER=$!
on_exit "touch '$T/ris-stop'; kill $LISTENER 2>/dev/null"
wait_until 30 eval '[ "$(received)" -ge 1 ]'
pid=$(item $A "$ONE" 'w["patient_id"]') acc=$(item $A "$ONE" 'w["accession"]')
[ "$(msg 1 'm["type"]')" = "ORU^R01^ORU_R01" ] || fail "not an ORU^R01: $(sed -n 1p "$RECEIVED")"
[ "$(msg 1 'm["patient_id"]')" = "$pid" ] || fail "PID-3 is not $pid"
[ "$(msg 1 'm["accession"]')" = "$acc" ] || fail "OBR-2 is not $acc"
[ "$(msg 1 'm["study_uid"]')" = "$ONE" ] || fail "OBR-3 is not the study UID"
[ "$(msg 1 'm["reporter"]')" = dr.bell ] || fail "OBR-32 is not dr.bell"
[ "$(msg 1 'm["status"]')" = F ] || fail "OBR-25 is not F"
[ "$(msg 1 'm["sending_facility"]')" = "ST ELSEWHERE" ] || fail "MSH-4 is not the sending facility"
[ "$(msg 1 'm["obx"]')" = "['Findings: a|b^c&d~e\\\\f.', 'Impression: no acute abnormality.']" ] ||
    fail "the report text did not survive HL7 escaping: $(msg 1 'm["obx"]')"
wait_until 20 undelivered_is 0
wait_until 10 metric_undelivered 0

log "3. a double-read study goes only once verified"
pm $B report "$TWO" --reporter dr.bell --file "$T/r2.txt" >/dev/null || fail "report of TWO failed"
wait_until 20 item_is $A "$TWO" 'w["state"] == "reported"'
holds_for 3 eval '[ "$(received)" = 1 ]' || fail "a report awaiting its second read was sent"
pm $A verify "$TWO" --reporter dr.adams >/dev/null || fail "verify at A failed"
wait_until 30 eval '[ "$(received)" = 2 ]'
[ "$(msg 2 'm["study_uid"]')" = "$TWO" ] || fail "the second message is not TWO's"

log "4. an addendum goes again, as a correction carrying both texts"
pm $B report "$ONE" --reporter dr.bell --file "$T/a1.txt" --addendum >/dev/null || fail "addendum failed"
wait_until 30 eval '[ "$(received)" = 3 ]'
[ "$(msg 3 'm["status"]'),$(msg 3 'len(m["obx"])')" = "C,3" ] || fail "the correction: $(sed -n 3p "$RECEIVED")"

log "5. a restart of A sends nothing twice"
node_stop $A
node_start $A
holds_for 4 eval '[ "$(received)" = 3 ]' || fail "a restart sent an acknowledged report again"
[ "$(undelivered)" = 0 ] || fail "status counts undelivered reports after the restart"
exit 0
