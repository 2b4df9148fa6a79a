# test/orthanc_lib.sh: a reference Orthanc with Debian's DICOMweb plugin, for tests and
# benchmarks that compare answers (sourced after lib.sh).
#
#   orthanc_start            starts it on a free port (ORTHANC_PORT); HTTP only, loopback;
#                            with ORTHANC_DICOM_PORT set, also a DICOM SCP (AE ORTHANC)
#                            there; Orthanc cannot bind it to loopback, so it accepts
#                            C-STORE only from AE $ORTHANC_DICOM_PEER at 127.0.0.1
#   orthanc_upload FILE...   stores files through its REST API
#   ohttp PATH [CURL ARGS]   GET against it; body in $T/obody

ORTHANC_PLUGIN=${ORTHANC_PLUGIN:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}

orthanc_start()
{
    command -v Orthanc >/dev/null || skip "Orthanc is not installed (apt-get install orthanc)"
    [ -r "$ORTHANC_PLUGIN" ] || skip "Debian's orthanc-dicomweb plugin is not installed"
    alloc_port
    ORTHANC_PORT=$PORT
    local dicom='"DicomServerEnabled": false'
    [ -z "${ORTHANC_DICOM_PORT:-}" ] || dicom='"DicomServerEnabled": true, "DicomAet": "ORTHANC",
  "DicomPort": '"$ORTHANC_DICOM_PORT"', "DicomAlwaysAllowStore": false,
  "DicomCheckModalityHost": true, "DicomCheckCalledAet": true,
  "DicomModalities": {"peer": ["'"${ORTHANC_DICOM_PEER:-PACSMESH}"'", "127.0.0.1", 104]}'
    mkdir -p "$T/orthanc/db"
    cat >"$T/orthanc/orthanc.json" <<JSON
{ "Name": "reference", "StorageDirectory": "$T/orthanc/db", "IndexDirectory": "$T/orthanc/db",
  "Plugins": ["$ORTHANC_PLUGIN"], "HttpPort": $ORTHANC_PORT, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, $dicom,
  "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": true,
               "StudiesMetadata": "Full", "SeriesMetadata": "Full"} }
JSON
    Orthanc "$T/orthanc/orthanc.json" >"$T/orthanc.log" 2>&1 &
    STARTED_PIDS+=("$!")
    orthanc_up() { curl -sf "http://127.0.0.1:$ORTHANC_PORT/system" >/dev/null; }
    wait_until 60 orthanc_up
}

orthanc_upload()
{
    local f
    for f in "$@"; do
        curl -sf -X POST --data-binary @"$f" "http://127.0.0.1:$ORTHANC_PORT/instances" >/dev/null ||
            fail "Orthanc refused $f"
    done
}

ohttp()
{
    local path=$1
    shift
    curl -sS -o "$T/obody" -w '%{http_code}' "$@" "http://127.0.0.1:$ORTHANC_PORT$path" >/dev/null ||
        fail "Orthanc did not answer $path"
}
