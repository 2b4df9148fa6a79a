#!/bin/bash
# bench/bench_dicom.sh: the DICOM edge and lazy fetch, side by side with Orthanc (the
# Debian package), on this machine. Not a test: prints numbers and ratios.
#
#   top_builddir=/path/to/build bench/bench_dicom.sh        [BENCH_STUDIES=5000]
#
# Three pacsmesh nodes A, B, C (a mesh made with the CLI, on 127.0.0.1) and one Orthanc
# (own JSON config in a temporary directory, loopback ports, MaximumPduLength 131072,
# started with TCP_NODELAY=1). Clients are dcmtk's, with TCP_NODELAY=1 and
# --max-pdu 131072. Data are synthetic (generated with pydicom; never patient data):
#   - a 300-slice CT, 512x512 16-bit (~157 MB), one association;
#   - 2,000 tiny instances (16x16) of one study, one association;
#   - BENCH_STUDIES one-instance studies (default 5,000) for C-FIND latency.
# Measured:
#   C-STORE large (MB/s) and small (instances/s): into A vs into Orthanc;
#   C-GET of the large study through B while A holds it: cold (B fetches it from A on
#     the way) and warm (cached at B), vs C-GET from Orthanc; getscu --ignore on both
#     sides so the client's disk is not measured;
#   `pacsmesh fetch` of the large study at C from A (MB/s);
#   C-FIND latency at B for one PatientID and for a date range, over the whole mesh's
#     views, vs Orthanc holding the same studies: 50 queries on one association each
#     (bench/dicom_find_timer.py), median.
# Targets (DESIGN/issue): C-STORE >= Orthanc for large, >= 2x for small; cold C-GET
# >= half of Orthanc; warm >= Orthanc.
#
# Both servers fsync what they store before answering (pacsmesh always; Orthanc's
# SyncStorageArea defaults to true). Orthanc 1.10 cannot bind its DICOM port to one
# address: it listens on all interfaces for the run (only loopback clients use it).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=${top_srcdir:-$here/..}
if [ -z "${top_builddir:-}" ]; then
    for b in "$top_srcdir/build" "$top_srcdir/build-dm"; do
        [ -x "$b/pacsmesh" ] && { top_builddir=$b; break; }
    done
fi
export top_builddir
. "$top_srcdir/test/lib.sh"
. "$top_srcdir/test/dicom_lib.sh"
dicom_init
command -v Orthanc >/dev/null || {
    echo "# Orthanc is missing: apt-get install -y orthanc" >&2
    skip "Orthanc is not installed"
}
N_STUDIES=${BENCH_STUDIES:-5000}
PDU=131072

elapsed_ms() { ELAPSED_MS=$(($(now_ms) - BENCH_T0)); }
start_clock() { BENCH_T0=$(now_ms); }
mbps() { awk -v b="$1" -v ms="$2" 'BEGIN {printf "%.1f", (ms > 0 ? b / 1e6 / (ms / 1000) : 0)}'; }
per_s() { awk -v n="$1" -v ms="$2" 'BEGIN {printf "%.0f", (ms > 0 ? n / (ms / 1000) : 0)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
RESULTS=()
result() { RESULTS+=("$(printf '%-44s %12s %12s %8s  %s' "$@")"); printf '# %s\n' "${RESULTS[-1]}"; }

# ---- the servers ------------------------------------------------------------------------
A=1 B=2 C=3
mesh_create 3
dicom_loopback $A $B $C
for i in $A $B $C; do
    node_set_conf "$i" dicom max_pdu $PDU
    node_set_conf "$i" node log_level warn
done
mesh_up 3
for i in $A $B $C; do wait_until 20 dicom_up "$i"; done

alloc_port
OPORT=$PORT
alloc_port
OHTTP=$PORT
mkdir -p "$T/orthanc/storage" "$T/orthanc/index"
cat >"$T/orthanc/orthanc.json" <<EOF
{
  "Name" : "bench",
  "StorageDirectory" : "$T/orthanc/storage",
  "IndexDirectory" : "$T/orthanc/index",
  "StorageCompression" : false,
  "HttpServerEnabled" : false,
  "HttpPort" : $OHTTP,
  "RemoteAccessAllowed" : false,
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $OPORT,
  "DicomCheckCalledAet" : false,
  "DicomModalities" : { "bench" : [ "VIEWER_B", "127.0.0.1", 4242 ] },
  "DicomAlwaysAllowEcho" : true,
  "DicomAlwaysAllowStore" : true,
  "DicomAlwaysAllowFind" : true,
  "DicomAlwaysAllowGet" : true,
  "DicomAlwaysAllowMove" : true,
  "MaximumPduLength" : $PDU,
  "StorageAccessOnFind" : "Never",
  "SaveJobs" : false,
  "Plugins" : [ ]
}
EOF
TCP_NODELAY=1 Orthanc "$T/orthanc/orthanc.json" >"$T/orthanc.log" 2>&1 &
STARTED_PIDS+=("$!")
orthanc_up() { echoscu -to 2 -aet ECHO -aec ORTHANC 127.0.0.1 "$OPORT" >/dev/null 2>&1; }
wait_until 60 orthanc_up
log "pacsmesh nodes A B C and Orthanc $(Orthanc --version 2>/dev/null | head -n 1 | awk '{print $NF}') are up"

# ---- data -----------------------------------------------------------------------------
start_clock
BIG=$(gen_study "$T/big" 1 300 BIG0001 "BENCH^LARGE" 20240101 512) || fail "cannot generate the CT"
SMALL=$(gen_study "$T/small" 1 2000 SMALL0001 "BENCH^SMALL" 20240102 16) || fail "cannot generate"
elapsed_ms
BIG_BYTES=$(du -sb "$T/big" | cut -f1)
log "generated the CT ($BIG_BYTES bytes) and 2,000 tiny instances in $ELAPSED_MS ms"

store_to() # AE PORT DIR: one storescu association, all files
{
    storescu -aet PACS_A -aec "$1" --max-pdu $PDU +sd -to 60 -ta 60 -td 600 127.0.0.1 "$2" "$3" \
        >"$T/store-$1-$(basename "$3").log" 2>&1
}

# ---- C-STORE ---------------------------------------------------------------------------
start_clock; store_to PACSMESH "${NODE_DICOM_PORT[A]}" "$T/big" || fail "C-STORE of the CT into A failed"
elapsed_ms; pm_big=$ELAPSED_MS
start_clock; store_to ORTHANC "$OPORT" "$T/big" || fail "C-STORE of the CT into Orthanc failed"
elapsed_ms; or_big=$ELAPSED_MS
result "C-STORE 300 x 512x512 CT (MB/s)" "$(mbps "$BIG_BYTES" $pm_big)" "$(mbps "$BIG_BYTES" $or_big)" \
    "$(ratio $or_big $pm_big)" "target >= 1"
start_clock; store_to PACSMESH "${NODE_DICOM_PORT[A]}" "$T/small" || fail "small C-STORE into A failed"
elapsed_ms; pm_small=$ELAPSED_MS
start_clock; store_to ORTHANC "$OPORT" "$T/small" || fail "small C-STORE into Orthanc failed"
elapsed_ms; or_small=$ELAPSED_MS
result "C-STORE 2,000 tiny instances (inst/s)" "$(per_s 2000 $pm_small)" "$(per_s 2000 $or_small)" \
    "$(ratio $or_small $pm_small)" "target >= 2"

# ---- C-GET ----------------------------------------------------------------------------
instances_are() { [ "$(study_field "$1" "$2" instances)" = "$3" ]; }
wait_until 60 instances_are $B "$BIG" 300
wait_until 60 instances_are $C "$BIG" 300
get_from() # AE PORT: C-GET of the CT, received and dropped; all 300 must complete
{
    getscu -v -aet VIEWER_B -aec "$1" -S --max-pdu $PDU --ignore -to 60 -ta 60 -td 600 \
        -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$BIG" 127.0.0.1 "$2" >"$T/get-$1.log" 2>&1 &&
        grep -q "Number of Completed Suboperations : 300" "$T/get-$1.log"
}
start_clock; get_from PACSMESH "${NODE_DICOM_PORT[B]}" || fail "cold C-GET through B failed"
elapsed_ms; pm_cold=$ELAPSED_MS
[ "$(study_field $B "$BIG" cached)" = true ] || fail "the CT is not cached at B after the C-GET"
start_clock; get_from PACSMESH "${NODE_DICOM_PORT[B]}" || fail "warm C-GET through B failed"
elapsed_ms; pm_warm=$ELAPSED_MS
start_clock; get_from ORTHANC "$OPORT" || fail "C-GET from Orthanc failed"
elapsed_ms; or_get=$ELAPSED_MS
start_clock; get_from ORTHANC "$OPORT" || fail "C-GET from Orthanc failed"
elapsed_ms; [ "$ELAPSED_MS" -lt "$or_get" ] && or_get=$ELAPSED_MS # Orthanc's best of two
result "C-GET CT via B, cold: fetched from A (MB/s)" "$(mbps "$BIG_BYTES" $pm_cold)" \
    "$(mbps "$BIG_BYTES" $or_get)" "$(ratio $or_get $pm_cold)" "target >= 0.5"
result "C-GET CT via B, warm: cached at B (MB/s)" "$(mbps "$BIG_BYTES" $pm_warm)" \
    "$(mbps "$BIG_BYTES" $or_get)" "$(ratio $or_get $pm_warm)" "target >= 1"

# ---- fetch --------------------------------------------------------------------------------
start_clock; pm $C fetch "$BIG" >"$T/fetch.log" 2>&1 || fail "fetch at C failed"
elapsed_ms
result "pacsmesh fetch of the CT, A -> C (MB/s)" "$(mbps "$BIG_BYTES" $ELAPSED_MS)" "-" "-" \
    "$(sed -n 's/.*(\([0-9.]* MB\/s\)).*/node says \1/p' "$T/fetch.log")"

# ---- C-FIND at scale ---------------------------------------------------------------------
start_clock
"$PYD" - "$T/many" "$N_STUDIES" <<'EOF' || fail "cannot generate the studies"
import os, sys, datetime
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid, ExplicitVRLittleEndian
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
day0 = datetime.date(2000, 1, 1)
for k in range(n):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate = (day0 + datetime.timedelta(days=(k * 7919) % 9000)).strftime("%Y%m%d")
    ds.StudyTime, ds.Modality, ds.AccessionNumber = "120000", "OT", "A%07d" % k
    ds.PatientName, ds.PatientID = "SCALE^P%07d" % k, "P%07d" % k
    ds.PatientBirthDate, ds.PatientSex, ds.StudyID = "19600101", "O", "1"
    ds.SeriesNumber, ds.InstanceNumber, ds.ReferringPhysicianName = 1, 1, ""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(os.path.join(out, "%07d.dcm" % k), write_like_original=False)
EOF
elapsed_ms
log "generated $N_STUDIES one-instance studies in $ELAPSED_MS ms"
start_clock; pm $A import "$T/many" >"$T/import.log" 2>&1 || fail "import at A failed"
elapsed_ms; pm_imp=$ELAPSED_MS
start_clock; store_to ORTHANC "$OPORT" "$T/many" || fail "C-STORE of the studies into Orthanc failed"
elapsed_ms; or_imp=$ELAPSED_MS
result "$N_STUDIES studies: import at A / C-STORE (st/s)" "$(per_s "$N_STUDIES" $pm_imp)" \
    "$(per_s "$N_STUDIES" $or_imp)" "$(ratio $or_imp $pm_imp)" "pacsmesh: import, one process"
total=$((N_STUDIES + 2)) # and the CT and the tiny study
studies_at() { [ "$(pmjson "$1" studies -- 'len(d)')" -ge "$2" ]; }
start_clock; wait_until 300 studies_at $B "$total"; elapsed_ms
log "B's views hold all $total studies $ELAPSED_MS ms after the import ended"

# Latency inside one association (bench/dicom_find_timer.py): what a viewer waits for,
# without dcmtk's process start-up (~60 ms, dictionary loading) in the numbers.
pid_key="PatientID=P$(printf '%07d' $((N_STUDIES / 2)))"
range_key="StudyDate=20100101-20100331" # ~1% of the studies
for key in "$pid_key" "$range_key"; do
    read -r hits_pm min_pm med_pm mean_pm _ < <("$PYD" "$here/dicom_find_timer.py" \
        "${NODE_DICOM_PORT[B]}" PACSMESH 50 "$key") || fail "C-FIND timing at B failed"
    read -r hits_or min_or med_or mean_or _ < <("$PYD" "$here/dicom_find_timer.py" \
        "$OPORT" ORTHANC 50 "$key") || fail "C-FIND timing at Orthanc failed"
    [ "$hits_pm" = "$hits_or" ] || log "note: $key: $hits_pm matches at B, $hits_or at Orthanc"
    result "C-FIND $key (median ms)" "$med_pm" "$med_or" "$(ratio "$med_or" "$med_pm")" \
        "hits $hits_pm/$hits_or; min $min_pm/$min_or; mean $mean_pm/$mean_or ms"
done

echo
printf '%-44s %12s %12s %8s  %s\n' "measure ($N_STUDIES+ studies in the views)" pacsmesh Orthanc \
    "ratio" "(ratio: pacsmesh better when > 1)"
for r in "${RESULTS[@]}"; do echo "$r"; done
