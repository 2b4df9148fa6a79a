#!/bin/bash
# Patient consistency across a mesh of two nodes A (1) and B (2) on 127.0.0.1, made with
# the CLI. A's PACS stores a study of patient TRUSTA0001; B learns it by gossip. Then:
#
#  1. Wrong patient: an instance carrying that Study Instance UID with PatientID
#     OTHER0009, by C-STORE to B and to A, and by `import` at A: refused with 0xA900
#     and a comment that names no patient, logged with the calling AE and address;
#     `status` at B counts it and names the calling AE and host. The study is unchanged
#     on every node: the views' digests and event counts are what they were, the study's
#     instance count and C-FIND at IMAGE level (its SOP Instance UIDs) likewise.
#  2. Same PatientID, another PatientName or PatientBirthDate: refused the same way
#     (by the documented rule); the same name written differently ("doe^jane^^" for
#     "DOE^JANE") is the same patient and is stored.
#  3. [dicom] patient_conflict = quarantine at B: a wrong-patient instance is answered
#     with success, kept in B's blobs/quarantine/, counted as quarantined, never part
#     of the study (instance count, C-FIND).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

A=1 B=2
CT_CLASS=1.2.840.10008.5.1.4.1.1.2
mesh_create 2
dicom_loopback $A $B
mesh_up 2
for i in $A $B; do wait_until 20 dicom_up "$i"; done

STUDY=$(gen_study "$T/s" 1 3 TRUSTA0001 "DOE^JANE" 20240301) || fail "cannot generate a study"
dstore $A "$T/s" >/dev/null 2>&1 || fail "storescu into A failed"
instances_are() { [ "$(study_field "$1" "$2" instances)" = "$3" ]; } # I STUDY N
wait_until 20 instances_are $A "$STUDY" 3
wait_until 20 instances_are $B "$STUDY" 3
wait_until 20 digests_equal
image_uids() { dfind "$1" S IMAGE SOPInstanceUID -k "StudyInstanceUID=$STUDY" | sort; }
ORIG_UIDS=$(image_uids $A)
[ "$(echo "$ORIG_UIDS" | wc -l)" = 3 ] || fail "C-FIND at A finds $(echo "$ORIG_UIDS" | wc -l) instances"
DIGEST=$(digest_of $A)
EVENTS_A=$(events_count $A)
log "study $STUDY of TRUSTA0001 at A and B; digest ${DIGEST:0:16}"

# variant SRC OUT KEY=VALUE...: a new instance (new SOP and series UIDs) of SRC's study
# with the attributes changed; prints its SOP Instance UID.
variant()
{
    "$PYD" - "$@" <<'EOF'
import sys, pydicom
from pydicom.uid import generate_uid
ds = pydicom.dcmread(sys.argv[1])
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.SeriesInstanceUID = generate_uid()
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    setattr(ds, k, v)
ds.save_as(sys.argv[2])
print(ds.SOPInstanceUID)
EOF
}
SRC=$(ls "$T"/s/*.dcm | head -n 1)
study_unchanged()
{
    local i
    wait_until 10 digests_equal
    [ "$(digest_of $A)" = "$DIGEST" ] || fail "the views' digest changed: $1"
    [ "$(events_count $A)" = "$EVENTS_A" ] || fail "events were added: $1"
    for i in $A $B; do
        instances_are $i "$STUDY" 3 || fail "node $i: the study has $(study_field $i "$STUDY" instances) instances: $1"
        [ "$(image_uids $i)" = "$ORIG_UIDS" ] || fail "node $i: C-FIND finds other instances: $1"
    done
}

# ---- 1. another patient's instance under the study's UID --------------------------------
W1=$(variant "$SRC" "$T/wrong1.dcm" PatientID=OTHER0009 PatientName=ROE^RICHARD) || fail "variant"
for i in $B $A; do
    raw_cstore "${NODE_DICOM_PORT[i]}" "$CT_CLASS" "$W1:$T/wrong1.dcm" >"$T/raw-$i.log" 2>&1 ||
        { cat "$T/raw-$i.log"; fail "raw C-STORE to node $i failed"; }
    [ "$(awk -v u="$W1" '$1 == u {print $2}' "$T/raw-$i.log")" = 0xa900 ] ||
        { cat "$T/raw-$i.log"; fail "node $i: the wrong-patient instance was not refused with 0xa900"; }
done
# The comment the sender gets, through storescu's eyes: it names no patient.
storescu -v -aet PACS_X -aec PACSMESH -nh 127.0.0.1 "${NODE_DICOM_PORT[B]}" "$T/wrong1.dcm" \
    >"$T/storescu.log" 2>&1
grep -q "Received Store Response (Error: DataSetDoesNotMatchSOPClass)" "$T/storescu.log" ||
    { cat "$T/storescu.log"; fail "storescu did not get the A900 error"; }
grep -q "OTHER0009\|TRUSTA0001" "$T/storescu.log" && fail "the reply to the sender names a patient"
grep -q "instance $W1 of study $STUDY from RAW_SCU (127.0.0.1) refused: its PatientID differs" "${NODE_LOG[B]}" ||
    fail "B's log does not say who sent the wrong-patient instance and why it was refused"
grep -q "instance $W1 of study $STUDY from RAW_SCU (127.0.0.1) refused" "${NODE_LOG[A]}" ||
    fail "A's log does not say the wrong-patient instance was refused"
rc=0
pm $A import "$T/wrong1.dcm" >/dev/null 2>"$T/import.err" || rc=$?
[ "$rc" = 1 ] || fail "import of the wrong-patient instance exited $rc"
grep -q "skipped $T/wrong1.dcm: refused: its PatientID differs from the study known" "$T/import.err" ||
    { cat "$T/import.err"; fail "import did not skip the wrong-patient instance with the reason"; }
conflicts() { pmjson "$1" status -- "d['dicom']['patient_conflicts']['$2']"; }
[ "$(conflicts $B refused)" = 2 ] || fail "B's status counts $(conflicts $B refused) refused, not 2"
[ "$(pmjson $B status -- "d['dicom']['patient_conflicts']['recent'][0]['calling_ae'] + ' ' + d['dicom']['patient_conflicts']['recent'][0]['host']")" = "PACS_X 127.0.0.1" ] ||
    fail "B's status does not name the last sender"
pm $B status >"$T/status.txt"
grep -q "^PATIENTS 2 instances refused, 0 quarantined" "$T/status.txt" ||
    { cat "$T/status.txt"; fail "B's status does not show the conflicts"; }
grep -q "refused $W1 of study $STUDY from RAW_SCU at 127.0.0.1: PatientID" "$T/status.txt" ||
    { cat "$T/status.txt"; fail "B's status does not name the instance, the sender and the attribute"; }
study_unchanged "after the wrong-patient instance"
log "wrong patient: refused with 0xa900 at B and A and by import, logged, in status; study unchanged everywhere"

# ---- 2. name and birth date ---------------------------------------------------------------------
W2=$(variant "$SRC" "$T/wrong2.dcm" PatientName=ROE^RICHARD) || fail "variant"
W3=$(variant "$SRC" "$T/wrong3.dcm" PatientBirthDate=19990909) || fail "variant"
raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "$W2:$T/wrong2.dcm" "$W3:$T/wrong3.dcm" >"$T/raw2.log" 2>&1 ||
    { cat "$T/raw2.log"; fail "raw C-STORE failed"; }
for u in "$W2" "$W3"; do
    [ "$(awk -v u="$u" '$1 == u {print $2}' "$T/raw2.log")" = 0xa900 ] ||
        { cat "$T/raw2.log"; fail "another name or birth date was not refused"; }
done
grep -q "instance $W2 of study $STUDY from RAW_SCU (127.0.0.1) refused: its PatientName differs" "${NODE_LOG[B]}" ||
    fail "B's log does not name PatientName"
grep -q "instance $W3 of study $STUDY from RAW_SCU (127.0.0.1) refused: its PatientBirthDate differs" "${NODE_LOG[B]}" ||
    fail "B's log does not name PatientBirthDate"
study_unchanged "after another name and birth date"
OK1=$(variant "$SRC" "$T/same.dcm" "PatientName=doe^jane^^") || fail "variant"
raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "$OK1:$T/same.dcm" >"$T/raw3.log" 2>&1
[ "$(awk -v u="$OK1" '$1 == u {print $2}' "$T/raw3.log")" = 0x0000 ] ||
    { cat "$T/raw3.log"; fail "the same name written differently was refused"; }
log "another PatientName or PatientBirthDate refused; 'doe^jane^^' taken as DOE^JANE"

# ---- 3. quarantine ----------------------------------------------------------------------------------
node_stop $B
node_set_conf $B dicom patient_conflict quarantine
node_start $B
wait_until 20 dicom_up $B
before=$(study_field $B "$STUDY" instances)
W4=$(variant "$SRC" "$T/wrong4.dcm" PatientID=OTHER0009) || fail "variant"
raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "$W4:$T/wrong4.dcm" >"$T/raw4.log" 2>&1
[ "$(awk -v u="$W4" '$1 == u {print $2}' "$T/raw4.log")" = 0x0000 ] ||
    { cat "$T/raw4.log"; fail "quarantine: the instance was not answered with success"; }
q=$(ls "${NODE_DIR[B]}/blobs/quarantine/"*"-$W4.dcm" 2>/dev/null) || fail "the instance is not in B's quarantine"
[ "$("$PYD" -c 'import pydicom, sys; print(pydicom.dcmread(sys.argv[1]).SOPInstanceUID)' "$q")" = "$W4" ] ||
    fail "the quarantined file is not the instance sent"
[ "$(conflicts $B quarantined)" = 1 ] || fail "B's status counts $(conflicts $B quarantined) quarantined"
grep -q "instance $W4 of study $STUDY from RAW_SCU (127.0.0.1) quarantined: its PatientID differs" "${NODE_LOG[B]}" ||
    fail "B's log does not say the instance was quarantined"
sleep 2
instances_are $B "$STUDY" "$before" || fail "the quarantined instance counts in the study at B"
dfind $B S IMAGE SOPInstanceUID -k "StudyInstanceUID=$STUDY" | grep -qx "$W4" &&
    fail "C-FIND at B finds the quarantined instance in the study"
nodes_alive $A $B
log "quarantine: answered with success, kept in $(basename "$q"), counted, never in the study"
echo "PASS: $TEST_NAME"
