#!/bin/bash
# DICOMweb at /dicom-web: QIDO-RS answers equal to Orthanc's DICOMweb plugin holding the
# same studies (studies, series and instances, by the usual keys, limit and offset),
# asked of a node that holds none of them (another trust acquired them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/http_lib.sh"
. "$(dirname "$0")/orthanc_lib.sh"
wl_need_pydicom

orthanc_start
mesh_create 2
wl_mesh_up 1 2
S1=$(new_uid) S2=$(new_uid) S3=$(new_uid)
import_study 1 "$T/studies" "$S1" CT HEAD "CT head" 2
import_study 1 "$T/studies" "$S2" MR KNEE "MR knee" 3
import_study 1 "$T/studies" "$S3" "OT,CT" CHEST "CT chest" 2
orthanc_upload "$T"/studies/*/*.dcm
for s in "$S1" "$S2" "$S3"; do wait_until 20 item_is 2 "$s" True; done
user_add 2 rita reporter dr.rita
AUTH=(-u rita:rita-password)

# compare PATH KEYTAG REQUIRED...: the same QIDO-RS query to both; answers must agree.
compare()
{
    local path=$1
    shift
    http 2 GET "/dicom-web$path" "${AUTH[@]}" -H 'Accept: application/dicom+json'
    expect_status 200
    ohttp "/dicom-web$path"
    $PYTHON "$top_srcdir/test/dicomweb_compare.py" "$T/body" "$T/obody" "$@" ||
        fail "QIDO-RS $path differs from Orthanc's"
    log "QIDO-RS $path: $(jq_body 'len(d)') answer(s), same as Orthanc"
}

STUDY_TAGS=(0020000D 00100020 00100010 00080020 00080030 00080050 00080061 00201206 00201208)
SERIES_TAGS=(0020000E 00080060 00200011 00201209)
INST_TAGS=(00080018 00080016 00200013)
PID=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).PatientID)' "$T/studies/$S2/0000.dcm")
SERIES=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SeriesInstanceUID)' "$T/studies/$S3/0000.dcm")
SOP=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SOPInstanceUID)' "$T/studies/$S3/0000.dcm")

compare /studies 0020000D "${STUDY_TAGS[@]}"
compare "/studies?PatientID=$PID" 0020000D "${STUDY_TAGS[@]}"
compare "/studies?PatientName=SYNTHETIC*" 0020000D "${STUDY_TAGS[@]}"
compare "/studies?StudyInstanceUID=$S1" 0020000D "${STUDY_TAGS[@]}"
compare "/studies?ModalitiesInStudy=CT" 0020000D "${STUDY_TAGS[@]}"
compare "/studies?AccessionNumber=ACC*" 0020000D "${STUDY_TAGS[@]}"
compare "/studies/$S3/series" 0020000E "${SERIES_TAGS[@]}"
compare "/series?Modality=CT" 0020000E "${SERIES_TAGS[@]}"
compare "/studies/$S3/series/$SERIES/instances" 00080018 "${INST_TAGS[@]}"
compare "/studies/$S2/instances" 00080018 "${INST_TAGS[@]}"
compare "/instances?SOPInstanceUID=$SOP" 00080018 "${INST_TAGS[@]}"

http 2 GET "/dicom-web/studies?limit=2" "${AUTH[@]}"
[ "$(jq_body 'len(d)')" = 2 ] || fail "limit=2 gave $(jq_body 'len(d)')"
http 2 GET "/dicom-web/studies?limit=2&offset=2" "${AUTH[@]}"
[ "$(jq_body 'len(d)')" = 1 ] || fail "limit=2&offset=2 gave $(jq_body 'len(d)')"
http 2 GET "/dicom-web/studies?includefield=00081030&includefield=StudyDescription" "${AUTH[@]}"
expect_status 200
http 2 GET "/dicom-web/studies?fuzzymatching=true" "${AUTH[@]}"
expect_status 400
http 2 GET "/dicom-web/studies?NoSuchKeyword=1" "${AUTH[@]}"
expect_status 400
grep -q NoSuchKeyword "$T/body" || fail "the 400 does not name the key"
http 2 GET "/dicom-web/studies?limit=lots" "${AUTH[@]}"
expect_status 400
http 2 GET /dicom-web/studies "${AUTH[@]}" -H 'Accept: image/png'
expect_status 406
http 2 GET /dicom-web/nothing "${AUTH[@]}"
expect_status 404
log "WADO-RS: another trust's study, fetched lazily, read under the signed-in user"
user_add 2 audrey auditor
SER1=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SeriesInstanceUID)' "$T/studies/$S1/0000.dcm")
SOP1=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SOPInstanceUID)' "$T/studies/$S1/0000.dcm")
[ "$(pmjson 2 studies -- "next(s['cached'] for s in d if s['study_uid'] == '$S1')")" = false ] ||
    fail "node 2 holds $S1 before anyone read it"
http 2 GET "/dicom-web/studies/$S1/metadata" "${AUTH[@]}"
expect_status 200
ohttp "/dicom-web/studies/$S1/metadata"
$PYTHON "$top_srcdir/test/dicomweb_meta.py" "$T/body" "$T/obody" || fail "study metadata differs from Orthanc's"
http 2 GET "/dicom-web/studies/$S3/series/$SERIES/metadata" "${AUTH[@]}"
expect_status 200
ohttp "/dicom-web/studies/$S3/series/$SERIES/metadata"
$PYTHON "$top_srcdir/test/dicomweb_meta.py" "$T/body" "$T/obody" || fail "series metadata differs from Orthanc's"
http 2 GET "/api/audit?study=$S1" -u audrey:audrey-password
[ "$(jq_body "sum(1 for e in d if e['type'] == 'study-accessed' and e.get('reporter') == 'dr.rita')")" = 1 ] ||
    fail "no study-accessed event naming dr.rita: $(head -c 800 "$T/body")"

FR="/dicom-web/studies/$S1/series/$SER1/instances/$SOP1/frames/1"
http 2 GET "$FR" "${AUTH[@]}" -D "$T/h" -H 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*'
expect_status 200
$PYTHON "$top_srcdir/test/dicomweb_parts.py" "$T/h" "$T/body" "$T/mine" >"$T/mine.txt" || fail "frames: $(cat "$T/mine.txt")"
ohttp "$FR" -D "$T/oh" -H 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*'
$PYTHON "$top_srcdir/test/dicomweb_parts.py" "$T/oh" "$T/obody" "$T/theirs" >/dev/null || fail "Orthanc's frames"
cmp -s "$T/mine/part-1" "$T/theirs/part-1" || fail "frame 1 differs from Orthanc's ($(stat -c %s "$T/mine/part-1") vs $(stat -c %s "$T/theirs/part-1") bytes)"
log "frame 1: $(stat -c %s "$T/mine/part-1") bytes, identical to Orthanc's"
http 2 GET "/dicom-web/studies/$S1/series/$SER1/instances/$SOP1/metadata" "${AUTH[@]}"
BULK=$(jq_body 'd[0]["7FE00010"]["BulkDataURI"]')
case $BULK in *"/instances/$SOP1/bulk/7FE00010") ;; *) fail "pixel data BulkDataURI: $BULK" ;; esac
http 2 GET "/dicom-web${BULK#*/dicom-web}" "${AUTH[@]}" -D "$T/h"
expect_status 200
$PYTHON "$top_srcdir/test/dicomweb_parts.py" "$T/h" "$T/body" "$T/bulk" >/dev/null || fail "bulk data"
cmp -s "$T/bulk/part-1" "$T/mine/part-1" || fail "the pixel data's bulk data is not its frame"
log "bulk data at the metadata's BulkDataURI: the pixel data, $(stat -c %s "$T/bulk/part-1") bytes"
http 2 GET "${FR%/1}/99" "${AUTH[@]}"
expect_status 404
http 2 GET "${FR%/1}/x" "${AUTH[@]}"
expect_status 400

http 2 GET "/dicom-web/studies/$S2" "${AUTH[@]}" -D "$T/h"
expect_status 200
$PYTHON "$top_srcdir/test/dicomweb_parts.py" "$T/h" "$T/body" "$T/inst" >"$T/inst.txt" || fail "instances: $(cat "$T/inst.txt")"
[ "$(head -n 1 "$T/inst.txt")" = 3 ] || fail "study $S2 came as $(head -n 1 "$T/inst.txt") parts"
for f in "$T/studies/$S2"/*.dcm; do
    found=0
    for p in "$T"/inst/part-*; do cmp -s "$f" "$p" && found=1; done
    [ $found = 1 ] || fail "$f is not served byte for byte"
done
log "study $S2: 3 instances, byte for byte as imported"
http 2 GET "/dicom-web/studies/$S2" "${AUTH[@]}" -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
expect_status 406
http 2 GET "/dicom-web/studies/1.2.3.4" "${AUTH[@]}"
expect_status 404
log "STOW-RS at trust B, then C-FIND at trust A finds the study"
S4=$(new_uid)
make_study "$T/stow" "$S4" CR CHEST "CR chest" 2
$PYTHON "$top_srcdir/test/stow_body.py" "$T/stow.body" pmb0undary "$T/stow/$S4"/*.dcm
STOW_CT='Content-Type: multipart/related; type="application/dicom"; boundary=pmb0undary'
http 2 POST /dicom-web/studies --data-binary @"$T/stow.body" -H "$STOW_CT"
expect_status 401
http 2 POST /dicom-web/studies "${AUTH[@]}" --data-binary @"$T/stow.body" -H "$STOW_CT"
expect_status 200
[ "$(jq_body 'len(d["00081199"]["Value"])')" = 2 ] || fail "STOW-RS: $(cat "$T/body")"
found_at_a() { findscu -aet VIEWER -aec PACSMESH -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$S4" \
    127.0.0.1 "${NODE_DICOM_PORT[1]}" 2>&1 | grep -q "$S4"; }
wait_until 20 found_at_a
log "STOW-RS stored 2 instances at B; C-FIND at A finds study $S4"
http 2 POST "/dicom-web/studies/$(new_uid)" "${AUTH[@]}" --data-binary @"$T/stow.body" -H "$STOW_CT"
expect_status 409
[ "$(jq_body 'len(d["00081198"]["Value"])')" = 2 ] || fail "a STOW to the wrong study did not fail both"

log "STOW-RS bad input: clear 4xx, nothing stored"
printf -- '--pmb0undary\r\nContent-Type: application/dicom\r\n\r\nnot dicom\r\n--pmb0undary--\r\n' >"$T/bad1"
head -c 2000 "$T/stow.body" >"$T/bad2" # cut short: no closing boundary
bad_stow()
{
    http 2 POST /dicom-web/studies "${AUTH[@]}" "$@"
}
unchanged_by 2 bad_stow --data-binary @"$T/bad1" -H "$STOW_CT"
expect_status 409
unchanged_by 2 bad_stow --data-binary @"$T/bad2" -H "$STOW_CT"
expect_status 400
grep -q "nothing was stored" "$T/body" || fail "400 without saying nothing was stored: $(cat "$T/body")"
unchanged_by 2 bad_stow --data-binary @"$T/stow.body" -H 'Content-Type: application/dicom'
expect_status 415
unchanged_by 2 bad_stow --data-binary @"$T/stow.body" -H 'Content-Type: multipart/related; type="application/dicom"'
expect_status 400
unchanged_by 2 bad_stow --data-binary @"$T/stow.body" -H 'Content-Type: multipart/related; type="application/dicom"; boundary=other'
expect_status 400
log "PASS"
