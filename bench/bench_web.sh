#!/bin/bash
# bench/bench_web.sh: the web server's DICOMweb beside Orthanc's DICOMweb plugin (Debian
# packages), on this machine. Not a test: prints numbers and ratios.
#
#   top_builddir=/path/to/build bench/bench_web.sh        [BENCH_SLICES=150]
#
# Two pacsmesh nodes A and B (a mesh made with the CLI, on 127.0.0.1) and one Orthanc
# with the DICOMweb plugin. Data are synthetic (pydicom; never patient data): two CT
# studies of BENCH_SLICES slices, 512x512 16-bit (~0.5 MB each), acquired at A and
# uploaded to Orthanc. A reader signed in at B (bearer token) opens them the way a web
# viewer does. Measured with curl:
#   time to first frame: series metadata, then frame 1 of the first instance; cold (the
#     study is at A only: B fetches it lazily) and warm (cached at B), vs Orthanc;
#   whole-study WADO-RS (multipart/related; type="application/dicom") throughput, cold
#     (the second study, never read at B) and warm, vs Orthanc (median of 3 warm reads).
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
. "$top_srcdir/test/wl_lib.sh"
. "$top_srcdir/test/http_lib.sh"
. "$top_srcdir/test/orthanc_lib.sh"
dicom_init
SLICES=${BENCH_SLICES:-150}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", (s > 0 ? b / 1e6 / s : 0)}'; }
ms_of() { awk -v s="$1" 'BEGIN {printf "%.0f", s * 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
RESULTS=()
result() { RESULTS+=("$(printf '%-46s %12s %12s %8s' "$@")"); printf '# %s\n' "${RESULTS[-1]}"; }

orthanc_start
mesh_create 2
for i in 1 2; do node_set_conf "$i" node log_level warn; done
wl_mesh_up 1 2
log "generating two ${SLICES}-slice 512x512 CT studies"
S1=$(gen_study "$T/s1" 1 "$SLICES" SYN0001 "SYNTHETIC^ONE" 20200315 512)
S2=$(gen_study "$T/s2" 1 "$SLICES" SYN0002 "SYNTHETIC^TWO" 20200316 512)
BYTES=$(du -cb "$T"/s1/*.dcm | tail -n 1 | cut -f1)
pm 1 import "$T/s1" "$T/s2" >/dev/null || fail "import at A failed"
orthanc_upload "$T"/s1/*.dcm "$T"/s2/*.dcm
for s in "$S1" "$S2"; do wait_until 30 item_is 2 "$s" True; done
user_add 2 rita reporter dr.rita
http 2 POST /api/tokens -u rita:rita-password
TOKEN=$(jq_body 'd["token"]')
PM=http://127.0.0.1:${NODE_HTTP_PORT[2]}
OR=http://127.0.0.1:$ORTHANC_PORT
first_of() { "$PYD" -c 'import pydicom,sys,glob; d=pydicom.dcmread(sorted(glob.glob(sys.argv[1]+"/*.dcm"))[0]); print(d.SeriesInstanceUID, d.SOPInstanceUID)' "$1"; }
read -r SER1 SOP1 < <(first_of "$T/s1")
read -r SER2 SOP2 < <(first_of "$T/s2")

# t BASE PATH [ACCEPT]: seconds for one GET (with the token for pacsmesh).
t()
{
    local auth=()
    [ "$1" = "$PM" ] && auth=(-H "Authorization: Bearer $TOKEN")
    curl -sS -o /dev/null -w '%{time_total}' "${auth[@]}" -H "Accept: ${3:-*/*}" "$1$2"
}
first_frame()
{
    local base=$1 s=$2 ser=$3 sop=$4 a b
    a=$(t "$base" "/dicom-web/studies/$s/series/$ser/metadata" application/dicom+json)
    b=$(t "$base" "/dicom-web/studies/$s/series/$ser/instances/$sop/frames/1" \
        'multipart/related; type="application/octet-stream"; transfer-syntax=*')
    awk -v a="$a" -v b="$b" 'BEGIN {print a + b}'
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
study_get() { t "$1" "/dicom-web/studies/$2" 'multipart/related; type="application/dicom"'; }

cold=$(first_frame "$PM" "$S1" "$SER1" "$SOP1")
warm=$(median3 "$(first_frame "$PM" "$S1" "$SER1" "$SOP1")" "$(first_frame "$PM" "$S1" "$SER1" "$SOP1")" "$(first_frame "$PM" "$S1" "$SER1" "$SOP1")")
orth=$(median3 "$(first_frame "$OR" "$S1" "$SER1" "$SOP1")" "$(first_frame "$OR" "$S1" "$SER1" "$SOP1")" "$(first_frame "$OR" "$S1" "$SER1" "$SOP1")")
result "measure" "pacsmesh B" "Orthanc" "ratio"
result "first frame, cold (lazy fetch from A), ms" "$(ms_of "$cold")" "$(ms_of "$orth")" "$(ratio "$orth" "$cold")"
result "first frame, warm (cached at B), ms" "$(ms_of "$warm")" "$(ms_of "$orth")" "$(ratio "$orth" "$warm")"

cold=$(study_get "$PM" "$S2")
warm=$(median3 "$(study_get "$PM" "$S2")" "$(study_get "$PM" "$S2")" "$(study_get "$PM" "$S2")")
orth=$(median3 "$(study_get "$OR" "$S2")" "$(study_get "$OR" "$S2")" "$(study_get "$OR" "$S2")")
result "whole study WADO-RS, cold, MB/s" "$(mbps "$BYTES" "$cold")" "$(mbps "$BYTES" "$orth")" "$(ratio "$orth" "$cold")"
result "whole study WADO-RS, warm, MB/s" "$(mbps "$BYTES" "$warm")" "$(mbps "$BYTES" "$orth")" "$(ratio "$orth" "$warm")"
echo
echo "bench_web: $SLICES slices of 512x512 (${BYTES} bytes per study); ratio = pacsmesh / Orthanc speed"
printf '%s\n' "${RESULTS[@]}"
