#!/bin/bash
# The report's SR goes home: on a two-trust mesh (A=1 acquires, B=2 reports) of real
# `pacsmesh run` processes, A C-STOREs the SR of each final report of its studies to
# [dicom] report_destination, here a real Orthanc (test/orthanc_lib.sh) as the trust's
# PACS. Asserted: nothing is sent before the report is final (a double-read study
# waits for its verification, made on B); while the PACS is down the report is kept
# and counted in A's status; once it is up Orthanc holds one SR instance in the study
# (Modality SR, VERIFIED by the verifier, with the patient and the report's text); a
# restart of A sends nothing again; a study without a second read goes on report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/orthanc_lib.sh"
wl_need_pydicom
command -v Orthanc >/dev/null || skip "Orthanc is not installed (apt-get install orthanc)"

A=1 B=2
mesh_create 2
alloc_port
ORTHANC_DICOM_PORT=$PORT
node_set_conf $A dicom report_destination ORTHANC
node_set_conf $A dicom report_retry 1s
node_set_conf $A dicom.destinations ORTHANC "127.0.0.1:$ORTHANC_DICOM_PORT"
conf_add $A worklist 'rule = description=DOUBLE* : double_read=yes'
wl_mesh_up

S=$T/studies
ONE=$(new_uid) TWO=$(new_uid)
import_study $A "$S" "$ONE" MR KNEE "DOUBLE READ KNEE"
import_study $A "$S" "$TWO" CT CHEST "CHEST CT"
wait_until 30 item_is_all "$ONE" 'w["state"] == "unreported"'
wait_until 30 item_is_all "$TWO" 'w["state"] == "unreported"'
printf 'MR knee: intact menisci.\nNo effusion.\n' >"$T/r1.txt"
printf 'CT chest: clear lungs.\n' >"$T/r2.txt"

undelivered() { pmjson $A status -- 'd["report_sr"]["undelivered"]'; }
undelivered_is() { [ "$(undelivered)" = "$1" ]; }
# Orthanc's SR instances of study UID, as a JSON list of their ids.
orthanc_srs()
{
    curl -sf -X POST "http://127.0.0.1:$ORTHANC_PORT/tools/find" -d \
        '{"Level": "Instance", "Query": {"StudyInstanceUID": "'"$1"'", "Modality": "SR"}}'
}
orthanc_sr_count() { orthanc_srs "$1" | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
orthanc_has() { [ "$(orthanc_sr_count "$1" 2>/dev/null)" = "$2" ]; }

log "1. a report of a double-read study is not final: nothing to send"
pm $B report "$ONE" --reporter dr.bell --file "$T/r1.txt" >/dev/null || fail "report at B failed"
wait_until 20 item_is $A "$ONE" 'w["state"] == "reported"'
[ "$(undelivered)" = 0 ] || fail "a report awaiting its second read counts as undelivered"
[ "$(pmjson $A status -- 'd["report_sr"]["destination"]')" = ORTHANC ] || fail "status names no destination"

log "2. verified on B while the PACS is down: kept, counted in A's status"
pm $B verify "$ONE" --reporter dr.cole >/dev/null || fail "verify at B failed"
wait_until 30 undelivered_is 1
wait_until 20 log_grew $A 'not stored at ORTHANC' 0
pm $A status | grep -q 'SR to ORTHANC: 1 final report not yet stored' || fail "status table does not show it"

log "3. the PACS comes up: Orthanc holds the study's SR, verified, with the report"
orthanc_start
wait_until 60 orthanc_has "$ONE" 1
wait_until 20 undelivered_is 0
id=$(orthanc_srs "$ONE" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)[0])')
ohttp "/instances/$id/simplified-tags" >/dev/null
tag() { $PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$T/obody" "$1"; }
[ "$(tag SOPClassUID)" = 1.2.840.10008.5.1.4.1.1.88.11 ] || fail "not a Basic Text SR: $(tag SOPClassUID)"
[ "$(tag VerificationFlag)" = VERIFIED ] || fail "the SR is not VERIFIED: $(tag VerificationFlag)"
[ "$(tag PatientID)" = "$(item $A "$ONE" 'w["patient_id"]')" ] || fail "the SR's PatientID is not the study's"
[ "$(tag AccessionNumber)" = "$(item $A "$ONE" 'w["accession"]')" ] || fail "the SR's accession is not the study's"
grep -q 'dr.cole' "$T/obody" || fail "the verifier is not named in the SR"
grep -q 'MR knee: intact menisci' "$T/obody" || fail "the report text is not in the SR"

log "4. a restart of A sends nothing again; a report without a second read goes at once"
node_stop $A
node_start $A
wait_until 30 members_ok $A 2
pm $B report "$TWO" --reporter dr.bell --file "$T/r2.txt" >/dev/null || fail "report of TWO failed"
wait_until 60 orthanc_has "$TWO" 1
[ "$(log_count $A "SR of the report of study $ONE stored")" = 1 ] ||
    fail "the SR of $ONE was stored $(log_count $A "SR of the report of study $ONE stored") times"
orthanc_has "$ONE" 1 || fail "Orthanc holds $(orthanc_sr_count "$ONE") SRs of $ONE, not 1"
wait_until 20 undelivered_is 0
nodes_alive
exit 0
