#!/bin/bash
# Verified serving, three nodes A (1, the origin), B (2) and C (3) on 127.0.0.1, made
# with the CLI. A's PACS stores a study of 3 instances; C caches it (`fetch`). Then:
#
#  1. C stops. One of the study's blob files is edited on A's disk (same size, bytes
#     flipped). C-GET of the study at A: the damaged instance is a failed sub-operation
#     (named in the final response), the other two arrive; A's log names the blob, the
#     instance and the study; A's `status` names the damaged blob; A's `studies` says
#     its copy is not whole (cached: false) and the study is not viewable (C is down)
#     but partial: 2 of its 3 instances are here, and C-GET sends those.
#  2. C starts again. A viewer at B retrieves the study by C-GET: B fetches what A no
#     longer serves from C, and the viewer gets all 3 instances, equal to what A's PACS
#     sent.
#  3. C-GET at A again: A fetches the damaged instance back from C, checks it against its
#     signed hash, keeps it as one of its own (pinned: not in the cache), and serves all
#     3; `status` says the blob was repaired; every blob at A hashes to its name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init
command -v b2sum >/dev/null || skip "b2sum (coreutils) is needed"

A=1 B=2 C=3
mesh_create 3
dicom_loopback $A $B $C
mesh_up 3
for i in $A $B $C; do wait_until 20 dicom_up "$i"; done

STUDY=$(gen_study "$T/s" 1 3 DAMAGE0001 "DAMAGED^BLOB" 20240401 64) || fail "cannot generate a study"
dstore $A "$T/s" >/dev/null 2>&1 || fail "storescu into A failed"
holds() # I NODE_ID: node I's views list NODE_ID among the study's holders
{
    [ "$(pmjson "$1" studies -- "'$2' in next((s['holders'] for s in d if s['study_uid'] == '$STUDY'), [])")" = true ]
}
wait_until 20 holds $C "${NODE_ID[A]}"
pm $C fetch "$STUDY" >/dev/null 2>&1 || fail "fetch at C failed"
wait_until 20 holds $A "${NODE_ID[C]}"
wait_until 20 holds $B "${NODE_ID[C]}"
cache0=$(pmjson $A status -- 'd["storage"]["cache_bytes"]')
log "study $STUDY at A, cached at C"

# ---- 1. a damaged blob at the origin ---------------------------------------------------------
node_stop $C
wait_until 30 is_down $A "${NODE_ID[C]}"
H=$(study_blobs $A "$STUDY" | head -n 1)
f="${NODE_DIR[A]}/blobs/${H:0:2}/$H"
size=$(stat -c %s "$f")
chmod u+w "$f"
printf '\xff\x00\xff\x00' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none || fail "cannot edit $f"
[ "$(b2sum -l 256 "$f" | cut -d' ' -f1)" != "$H" ] || fail "$f is not damaged"
DAMAGED_SOP=$("$PYD" -c 'import pydicom, sys; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f")
log "edited blob ${H:0:16} (instance $DAMAGED_SOP) on A's disk"
dget $A "$T/got1" -v -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" >"$T/get1.log" 2>&1
n=$(sop_uids "$T/got1" | wc -l)
[ "$n" = 2 ] || { cat "$T/get1.log"; fail "C-GET at A with one damaged blob delivered $n instances, not 2"; }
sop_uids "$T/got1" | grep -qx "$DAMAGED_SOP" && fail "the damaged instance was served"
grep -q "Number of Failed Suboperations *: 1" "$T/get1.log" ||
    { cat "$T/get1.log"; fail "the final C-GET response does not count one failed sub-operation"; }
grep -q "C-GET from VIEWER_B: instance $DAMAGED_SOP failed: damaged copy, and no other holder could provide it" "${NODE_LOG[A]}" ||
    fail "A's log does not name the failed instance"
grep -q "blob ${H:0:16} at $f (instance $DAMAGED_SOP of study $STUDY) hashes to .*: damaged, not served" "${NODE_LOG[A]}" ||
    fail "A's log does not name the damaged blob"
grep -q "C-GET from VIEWER_B: 2 completed, 0 warning, 1 failed" "${NODE_LOG[A]}" || fail "A's log does not count the failed sub-operation"
[ "$(pmjson $A status -- "[(b['blob'], b['state'], b['sop_uid']) for b in d['dicom']['damaged_blobs']]")" = "[('$H', 'damaged', '$DAMAGED_SOP')]" ] ||
    fail "A's status does not name the damaged blob"
pm $A status >"$T/status1.txt"
grep -q "^DAMAGED  1 blobs do not match their signed hash" "$T/status1.txt" && grep -qF "$f (instance $DAMAGED_SOP" "$T/status1.txt" ||
    { cat "$T/status1.txt"; fail "A's status text does not show the damaged blob"; }
[ "$(study_field $A "$STUDY" cached)" = false ] || fail "A's studies still say its copy is whole"
[ "$(study_field $A "$STUDY" viewable)" = false ] || fail "A's studies say viewable with its copy damaged and C down"
[ "$(study_field $A "$STUDY" partial)" = true ] && [ "$(study_field $A "$STUDY" local_instances)" = 2 ] ||
    fail "A's studies do not say the study is partly here (2 of 3)"
pm $A studies | grep -q "$STUDY.* partial" || fail "A's studies table does not say partial"
[ -f "$f" ] && fail "the damaged file is still where blobs are served from"
ls "${NODE_DIR[A]}/blobs/damaged/$H-"* >/dev/null 2>&1 || fail "the damaged file was not kept aside"
log "C-GET at A: 2 served, the damaged one a failed sub-operation; logged; in status; not viewable"

# ---- 2. the viewer at B, served from C --------------------------------------------------------
node_start $C
wait_until 20 dicom_up $C
wait_until 30 is_up $B "${NODE_ID[C]}"
wait_until 30 is_up $A "${NODE_ID[C]}"
# and C hears B: B's own link to the restarted C is back (a fetch sends on that one)
wait_until 30 is_up $C "${NODE_ID[B]}"
dget $B "$T/got2" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" >"$T/get2.log" 2>&1 ||
    { cat "$T/get2.log"; fail "C-GET at B failed"; }
n=$(same_datasets "$T/got2" "$T/s") || fail "C-GET at B: data differs from what A's PACS sent"
[ "$n" = 3 ] || fail "C-GET at B delivered $n instances, not 3"
blobs_intact $B || fail "B holds a damaged blob"
log "viewer at B: all 3 instances, equal to what was sent (the damaged one from C)"

# ---- 3. A repairs its copy from C -----------------------------------------------------------------
dget $A "$T/got3" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" >"$T/get3.log" 2>&1 ||
    { cat "$T/get3.log"; fail "C-GET at A after C came back failed"; }
n=$(same_datasets "$T/got3" "$T/s") || fail "C-GET at A: data differs from what was sent"
[ "$n" = 3 ] || fail "C-GET at A after C came back delivered $n instances, not 3"
grep -q "blob ${H:0:16} (instance $DAMAGED_SOP of study $STUDY) repaired" "${NODE_LOG[A]}" ||
    fail "A's log does not say the blob was repaired"
[ "$(b2sum -l 256 "$f" | cut -d' ' -f1)" = "$H" ] || fail "A's blob is not whole again"
blobs_intact $A || fail "a blob at A does not match its hash"
[ "$(pmjson $A status -- 'd["storage"]["cache_bytes"]')" = "$cache0" ] ||
    fail "the repaired blob is in A's cache, not pinned as A's own"
[ "$(pmjson $A status -- "[b['state'] for b in d['dicom']['damaged_blobs']]")" = "['repaired']" ] ||
    fail "A's status does not say the blob was repaired"
pm $A status | grep -q "^blobs    none damaged (1 found damaged earlier, repaired from peers)" ||
    fail "A's status text does not say the blob was repaired"
[ "$(study_field $A "$STUDY" cached)" = true ] || fail "A's copy is not whole again"
nodes_alive $A $B $C
log "C-GET at A: the damaged instance fetched back from C, checked, pinned; all 3 served"
echo "PASS: $TEST_NAME"
