#!/bin/bash
# The OHIF viewer served by a node: headless Chromium (Debian's, driven by
# puppeteer-core) signs in at trust B's node, opens a study acquired at trust A in OHIF
# at /viewer/viewer?StudyInstanceUIDs=UID, and an image is drawn; the screenshot is kept
# in the build tree (test/test_http_viewer.png). The read is on B's log under the user.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/http_lib.sh"
wl_need_pydicom
JS=$top_srcdir/test/js
[ -x /usr/bin/chromium ] || skip "Debian's chromium is not installed (examples/install-deps.sh)"
command -v node >/dev/null || skip "node is not installed (examples/install-deps.sh)"
[ -d "$JS/node_modules/puppeteer-core" ] || skip "test/js/node_modules is missing (examples/install-deps.sh)"
[ -r "$top_srcdir/viewer/ohif/dist/index.html" ] || skip "the OHIF viewer is not installed (examples/install-deps.sh)"

mesh_create 2
wl_mesh_up 1 2
S1=$(new_uid)
import_study 1 "$T/studies" "$S1" CT HEAD "CT head" 3
wait_until 20 item_is 2 "$S1" True
user_add 2 rita reporter dr.rita
user_add 2 audrey auditor

log "without a session the viewer sends the browser to the sign-in page"
http 2 GET "/viewer/viewer?StudyInstanceUIDs=$S1" -D "$T/h"
expect_status 302
grep -qi "^location: /?next=/viewer" "$T/h" || fail "no redirect to the sign-in page: $(cat "$T/h")"
http 2 GET /viewer/app-config.js -u rita:rita-password
expect_status 200
grep -q "/dicom-web" "$T/body" || fail "app-config.js does not point at /dicom-web"

SHOT=$top_builddir/test/test_http_viewer.png
rm -f "$SHOT"
out=$(timeout 200 node "$JS/ohif_open.js" "http://127.0.0.1:${NODE_HTTP_PORT[2]}" rita rita-password "$S1" "$SHOT" 2>"$T/chromium.err") ||
    fail "OHIF did not show the study: $(tail -n 5 "$T/chromium.err")"
[ -s "$SHOT" ] || fail "no screenshot"
log "OHIF at trust B drew trust A's study in $out ms (first open, lazy fetch); screenshot $SHOT"
http 2 GET "/api/audit?study=$S1" -u audrey:audrey-password
[ "$(jq_body "sum(1 for e in d if e['type'] == 'study-accessed' and e.get('reporter') == 'dr.rita')")" -ge 1 ] ||
    fail "the read is not on the log under dr.rita"
log "the workspace pages: the auditor searches the log by the study's patient id"
PID1=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).PatientID)' "$T/studies/$S1/0000.dcm")
out=$(timeout 120 node "$JS/workspace.js" auditor "http://127.0.0.1:${NODE_HTTP_PORT[2]}" audrey audrey-password \
    "$top_builddir/test/screenshots" "$PID1" 2>"$T/ws.err") ||
    fail "the auditor's search page failed: $(tail -n 5 "$T/ws.err")"
case $out in *study-accessed*) ;; *) fail "the auditor's search shows $out" ;; esac
log "auditor's search at B for patient $PID1 shows: ${out:0:300}"

log "the dicomweb-client package (OHIF's DICOMweb client) against the node"
SER=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SeriesInstanceUID)' "$T/studies/$S1/0000.dcm")
SOP=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SOPInstanceUID)' "$T/studies/$S1/0000.dcm")
S5=$(new_uid)
make_study "$T/stow" "$S5" DX HAND "DX hand" 1
out=$(timeout 120 node "$JS/dicomweb_client.js" "http://127.0.0.1:${NODE_HTTP_PORT[2]}" rita rita-password \
    "$S1" "$SER" "$SOP" "$T/stow/$S5/0000.dcm" 2>"$T/client.err") ||
    fail "dicomweb-client failed: $(tail -n 5 "$T/client.err")"
log "dicomweb-client: $out"
printf '%s' "$out" >"$T/body"
[ "$(jq_body "d['study'] == '$S1' and d['studies'] == 1 and d['series'] == 1 and d['instances'] == 3 and d['metadata'] == 3 and d['rows'] == 128 and d['frame_bytes'] == 32768 and d['instance_bytes'] == $(stat -c %s "$T/studies/$S1/0000.dcm")")" = true ] ||
    fail "dicomweb-client got $out"
wait_until 20 item_is 1 "$S5" True # its STOW reached the other trust too
log "PASS"
