#!/bin/bash
# The DICOM edge across a mesh: three real nodes A (1), B (2), C (3) on 127.0.0.1, made
# with the CLI, driven by dcmtk's own clients as a PACS and a viewer would drive them.
#
#  1. A's PACS stores six studies at A over C-STORE (one association): pydicom's
#     CT_small, MR_small and rtplan (implicit VR) and three synthetic studies (3 series
#     x 4 CT images; 1 series x 2 MR images; 1 CT image), generated here: no patient
#     data.
#  2. At B, C-FIND finds them all, Study Root and Patient Root, at PATIENT, STUDY,
#     SERIES and IMAGE level, with single value, wildcard (* and ?, PatientName
#     case-insensitive), date range (closed and open), UID list and universal matching;
#     an unknown optional key comes back empty.
#  3. C-GET and C-MOVE (Study and Patient Root; to a storage SCP listed in B's
#     [dicom.destinations]) through B return data sets equal to what A received (A's
#     blob files), fetched lazily from A; an unknown move destination is refused.
#  4. C fetches MR_small (`pacsmesh fetch`). A is killed (kill -9). B still finds every
#     study of A; `studies --json` at B says SYN3 (held by A alone) is not viewable,
#     MR_small (cached at C) and the studies B cached are; C-GET of MR_small through B
#     is served by C and equals what A received; C-GET of SYN3 fails cleanly, saying
#     its holder is down, and B keeps running.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

A=1 B=2 C=3
mesh_create 3
dicom_loopback $A $B $C
alloc_port
DEST_PORT=$PORT
node_set_conf $B dicom.destinations DEST_B "127.0.0.1:$DEST_PORT"
mesh_up 3
for i in $A $B $C; do wait_until 20 dicom_up "$i"; done
log "mesh of 3 up; DICOM ports A ${NODE_DICOM_PORT[A]} B ${NODE_DICOM_PORT[B]} C ${NODE_DICOM_PORT[C]}"

# ---- 1. studies into A ------------------------------------------------------------
SYN1=$(gen_study "$T/in/syn1" 3 4 SYN0001 "SYNTHETIC^ALPHA" 20200315 16 CT ACCSYN1) ||
    fail "cannot generate a study"
SYN2=$(gen_study "$T/in/syn2" 1 2 SYN0002 "SYNTHETIC^BETA" 20211120 16 MR ACCSYN2) ||
    fail "cannot generate a study"
SYN3=$(gen_study "$T/in/syn3" 1 1 ZZ0003 "OTHER^GAMMA" 19990615 16 CT ACCSYN3) ||
    fail "cannot generate a study"
for f in CT_small MR_small rtplan; do cp "$TF/$f.dcm" "$T/in/"; done
CT=$(dcm_attr "$TF/CT_small.dcm" StudyInstanceUID)
MR=$(dcm_attr "$TF/MR_small.dcm" StudyInstanceUID)
RT=$(dcm_attr "$TF/rtplan.dcm" StudyInstanceUID)
dstore $A "$T/in" >"$T/storescu.log" 2>&1 || { cat "$T/storescu.log"; fail "storescu into A failed"; }
log "stored 18 instances of 6 studies at A"

studies_at() # I N: node I's views hold N studies
{
    [ "$(pmjson "$1" studies -- 'len(d)')" = "$2" ]
}
instances_of() { study_field "$1" "$2" instances; }
wait_until 20 studies_at $B 6
wait_until 20 studies_at $C 6
[ "$(instances_of $B "$SYN1")" = 12 ] || fail "B sees $(instances_of $B "$SYN1") instances of SYN1, not 12"
[ "$(instances_of $B "$SYN2")" = 2 ] || fail "B sees $(instances_of $B "$SYN2") instances of SYN2"

# ---- 2. C-FIND at B -------------------------------------------------------------------
expect_find() # WANT I MODEL LEVEL KEY [args...]: the sorted KEY values equal WANT
{
    local want=$1 got
    shift
    got=$(dfind "$@") || fail "C-FIND failed: $*"
    [ "$got" = "$(printf '%s\n' $want | sort)" ] ||
        fail "C-FIND $*: got [$(echo $got)] want [$(echo $want)]"
}
ALL="$SYN1 $SYN2 $SYN3 $CT $MR $RT"
# Study Root, STUDY level
expect_find "$ALL" $B S STUDY StudyInstanceUID                               # universal
expect_find "$CT" $B S STUDY StudyInstanceUID -k PatientID=1CT1              # single value
expect_find "$SYN1 $SYN2" $B S STUDY StudyInstanceUID -k "PatientName=synthetic*"  # wildcard
expect_find "$SYN1 $SYN2" $B S STUDY StudyInstanceUID -k "PatientID=SYN000?"
expect_find "$MR" $B S STUDY StudyInstanceUID -k "PatientName=*mr1"
expect_find "$SYN1 $SYN2" $B S STUDY StudyInstanceUID -k StudyDate=20200101-20211231 # range
expect_find "$CT $MR $RT $SYN3" $B S STUDY StudyInstanceUID -k StudyDate=-20041231
expect_find "$SYN2" $B S STUDY StudyInstanceUID -k StudyDate=20210101-
expect_find "$SYN1" $B S STUDY StudyInstanceUID -k StudyDate=20200315
expect_find "" $B S STUDY StudyInstanceUID -k StudyDate=19980101-19981231    # no match
expect_find "$CT $RT" $B S STUDY StudyInstanceUID -k "StudyInstanceUID=$CT\\$RT"   # UID list
expect_find "$SYN1" $B S STUDY StudyInstanceUID -k AccessionNumber=ACCSYN1
expect_find "SYNTHETIC^ALPHA" $B S STUDY PatientName -k "StudyInstanceUID=$SYN1"
expect_find "12" $B S STUDY NumberOfStudyRelatedInstances -k "StudyInstanceUID=$SYN1"
# An unknown optional key is returned, empty.
d=$(find_dir $B S STUDY StudyInstanceUID -k "StudyInstanceUID=$SYN1" -k InstitutionName) ||
    fail "C-FIND with an optional key failed"
dcmdump "$d/rsp0001.dcm" | grep InstitutionName >/dev/null || fail "InstitutionName not returned"
[ -z "$(dcm_attr "$d/rsp0001.dcm" InstitutionName)" ] || fail "InstitutionName not empty"
# Study Root, SERIES and IMAGE level
SER=$(dfind $A S SERIES SeriesInstanceUID -k "StudyInstanceUID=$SYN1") || fail "series at A"
[ "$(echo "$SER" | wc -l)" = 3 ] || fail "A: SYN1 has $(echo "$SER" | wc -l) series, not 3"
expect_find "$SER" $B S SERIES SeriesInstanceUID -k "StudyInstanceUID=$SYN1"
expect_find "CT CT CT" $B S SERIES Modality -k "StudyInstanceUID=$SYN1"
S1=$(echo "$SER" | head -n 1)
expect_find "$S1" $B S SERIES SeriesInstanceUID -k "StudyInstanceUID=$SYN1" -k "SeriesInstanceUID=$S1"
SOPS=$(sop_uids "$T/in/syn1")
expect_find "$SOPS" $B S IMAGE SOPInstanceUID -k "StudyInstanceUID=$SYN1" -k "SeriesInstanceUID=*"
IMG1=$(dfind $B S IMAGE SOPInstanceUID -k "StudyInstanceUID=$SYN1" -k "SeriesInstanceUID=$S1") ||
    fail "IMAGE level C-FIND failed"
[ "$(echo "$IMG1" | wc -l)" = 4 ] || fail "series $S1: $(echo "$IMG1" | wc -l) images, not 4"
ONE=$(echo "$IMG1" | head -n 1)
expect_find "$ONE" $B S IMAGE SOPInstanceUID -k "StudyInstanceUID=$SYN1" -k "SeriesInstanceUID=$S1" \
    -k "SOPInstanceUID=$ONE"
# Patient Root: PATIENT, STUDY, SERIES, IMAGE
expect_find "1CT1 4MR1 SYN0001 SYN0002 ZZ0003 id00001" $B P PATIENT PatientID
expect_find "1CT1 4MR1" $B P PATIENT PatientID -k "PatientName=COMPRESSEDSAMPLES*"
expect_find "$SYN1" $B P STUDY StudyInstanceUID -k PatientID=SYN0001
expect_find "$SER" $B P SERIES SeriesInstanceUID -k PatientID=SYN0001 -k "StudyInstanceUID=$SYN1"
expect_find "$IMG1" $B P IMAGE SOPInstanceUID -k PatientID=SYN0001 -k "StudyInstanceUID=$SYN1" \
    -k "SeriesInstanceUID=$S1"
# Study Root does not know PATIENT level: refused, and B keeps serving.
if dfind $B S PATIENT PatientID >/dev/null 2>&1 && [ -n "$(dfind $B S PATIENT PatientID)" ]; then
    fail "Study Root C-FIND at PATIENT level answered with matches"
fi
log "C-FIND at B: 4 levels, both models, all matching kinds"

# ---- 3. C-GET and C-MOVE through B ----------------------------------------------------
ABLOBS=$(node_blob_dir $A)
dget $B "$T/get1" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$SYN1" >"$T/get1.log" 2>&1 ||
    { cat "$T/get1.log"; fail "C-GET of SYN1 through B failed"; }
n=$(same_datasets "$T/get1" "$ABLOBS") || fail "C-GET of SYN1: not what A received"
[ "$n" = 12 ] || fail "C-GET of SYN1 returned $n instances, not 12"
for s in "$CT" "$RT"; do
    dget $B "$T/get2" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$s" >"$T/get2.log" 2>&1 ||
        { cat "$T/get2.log"; fail "C-GET of $s through B failed"; }
done
n=$(same_datasets "$T/get2" "$ABLOBS") || fail "C-GET of CT_small/rtplan: not what A received"
[ "$n" = 2 ] || fail "C-GET of CT_small and rtplan returned $n instances, not 2"
# Series and image level
dget $B "$T/get3" -k QueryRetrieveLevel=SERIES -k "StudyInstanceUID=$SYN1" \
    -k "SeriesInstanceUID=$S1" >/dev/null 2>&1 || fail "C-GET at SERIES level failed"
[ "$(sop_uids "$T/get3")" = "$IMG1" ] || fail "C-GET at SERIES level: wrong instances"
log "C-GET through B: SYN1, CT_small, rtplan and one series equal what A received"

scp_start "$DEST_PORT" "$T/moved" DEST_B
dmove $B DEST_B -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$SYN2" >"$T/move1.log" 2>&1 ||
    { cat "$T/move1.log"; fail "C-MOVE of SYN2 through B failed"; }
movescu -aet VIEWER_B -aec PACSMESH -P -aem DEST_B -k QueryRetrieveLevel=IMAGE -k PatientID=SYN0001 \
    -k "StudyInstanceUID=$SYN1" -k "SeriesInstanceUID=$S1" -k "SOPInstanceUID=$ONE" \
    127.0.0.1 "${NODE_DICOM_PORT[B]}" >"$T/move2.log" 2>&1 ||
    { cat "$T/move2.log"; fail "Patient Root C-MOVE of one image through B failed"; }
n=$(same_datasets "$T/moved" "$ABLOBS") || fail "C-MOVE: not what A received"
[ "$n" = 3 ] || fail "C-MOVE delivered $n instances, not 3"
[ "$(sop_uids "$T/moved")" = "$( (sop_uids "$T/in/syn2"; echo "$ONE") | sort)" ] ||
    fail "C-MOVE delivered the wrong instances"
dmove $B NOWHERE -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$SYN2" >"$T/move3.log" 2>&1
grep -qiE "MoveDestinationUnknown|Move Destination Unknown|a801" "$T/move3.log" ||
    { cat "$T/move3.log"; fail "C-MOVE to an unknown destination was not refused as such"; }
log "C-MOVE through B (Study and Patient Root) equals what A received; unknown AE refused"

# ---- 4. A down -------------------------------------------------------------------------
pm $C fetch "$MR" >"$T/fetchC.log" 2>&1 || { cat "$T/fetchC.log"; fail "fetch at C failed"; }
holds() # I STUDY NODE_ID: node I's views list NODE_ID among the study's holders
{
    [ "$(pmjson "$1" studies -- "'$3' in next(s['holders'] for s in d if s['study_uid'] == '$2')")" = true ]
}
wait_until 20 holds $B "$MR" "${NODE_ID[C]}"
node_kill9 $A
log "A killed"
wait_until 30 is_down $B "${NODE_ID[A]}"
expect_find "$ALL" $B S STUDY StudyInstanceUID
expect_find "$SOPS" $B S IMAGE SOPInstanceUID -k "StudyInstanceUID=$SYN1" -k "SeriesInstanceUID=*"
field_is() { [ "$(study_field "$1" "$2" "$3")" = "$4" ]; } # I STUDY FIELD VALUE
wait_until 20 field_is $B "$SYN3" viewable false
[ "$(study_field $B "$MR" viewable)" = true ] || fail "MR_small (cached at C) is not viewable at B"
[ "$(study_field $B "$MR" cached)" = false ] || fail "MR_small is cached at B already"
[ "$(study_field $B "$SYN1" viewable)" = true ] || fail "SYN1 (cached at B) is not viewable at B"
[ "$(study_field $B "$SYN1" cached)" = true ] || fail "SYN1 is not cached at B"
log "A down: B finds all 6 studies; SYN3 not viewable, MR_small and SYN1 viewable"

dget $B "$T/get4" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$MR" >"$T/get4.log" 2>&1 ||
    { cat "$T/get4.log"; fail "C-GET of MR_small through B (A down, cached at C) failed"; }
n=$(same_datasets "$T/get4" "$ABLOBS") || fail "C-GET of MR_small via C: not what A received"
[ "$n" = 1 ] || fail "C-GET of MR_small returned $n instances"
[ "$(study_field $B "$MR" cached)" = true ] || fail "MR_small not cached at B after the C-GET"
dget $B "$T/get5" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$SYN1" >/dev/null 2>&1 ||
    fail "C-GET of SYN1 (cached at B) failed with A down"
[ "$(same_datasets "$T/get5" "$ABLOBS")" = 12 ] || fail "C-GET of SYN1 with A down: wrong data"
dget $B "$T/get6" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$SYN3" >"$T/get6.log" 2>&1
[ -z "$(ls -A "$T/get6")" ] || fail "C-GET of SYN3 (held by A alone, A down) returned data"
grep -qiE "fail|refused|warning" "$T/get6.log" ||
    { cat "$T/get6.log"; fail "C-GET of SYN3 with A down did not report a failure"; }
# The failure says why: the one holder is down (not "unknown study", not "not found").
wait_until 10 log_grew $B "failed: instance not available \\(no holder reachable: peer down\\)" 0
nodes_alive $B $C
dicom_up $B || fail "B's DICOM edge stopped answering"
log "A down: MR_small served by C through B; SYN3 fails cleanly; B and C keep running"
echo "PASS: $TEST_NAME"
