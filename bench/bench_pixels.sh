#!/bin/bash
# bench/bench_pixels.sh: the pixel path (issue 14), side by side with Orthanc (the Debian
# package, with its DICOMweb plugin) in one run. Not a test: prints numbers and same-run
# ratios, and the load average when each figure was taken (other work on the machine
# moves them).
#
#   top_builddir=/path/to/build bench/bench_pixels.sh     [BENCH_PARTS="small get wado"]
#
# BENCH_PARTS picks what runs besides the CT's C-STORE (always: the others need it).
#
# Two pacsmesh nodes hold nothing at first but A; B and C are other trusts' nodes.
# Clients are dcmtk's (TCP_NODELAY=1, --max-pdu 131072) and, for WADO-RS,
# bench/wado_timer.py. Data are synthetic (pydicom; never patient data):
#   - a 300-slice CT, 512x512 16-bit (~157 MB);
#   - 2,000 tiny instances (16x16) of one study; and four studies of 500 such.
# Measured (pacsmesh vs Orthanc; ratio > 1: pacsmesh better):
#   C-STORE of the CT (MB/s), of the 2,000 in one association (inst/s), and of 4 x 500
#     in four associations at once (inst/s, all four together);
#   C-GET of the CT through B, cold (B fetches it from A on the way) and warm (cached
#     at B), vs C-GET from Orthanc holding it: the first instance written (ms) and the
#     whole study (MB/s); getscu writes the files on both sides;
#   WADO-RS of the CT at C, cold (fetched from A on the way) and warm, vs Orthanc's
#     DICOMweb plugin: the first instance received (ms) and the whole answer (MB/s).
#   A warm figure is the best of two runs on each side; a cold one can be taken once.
# Targets: cold first instance within 2x Orthanc's; cold whole study >= 0.5x; warm and
# large C-STORE >= 1x; small instances >= 2x.
# The cold whole-study figures are also put beside raw libsodium in the same run
# (bench/raw_pixels: CURVE's cipher and BLAKE2b over the CT's bytes in memory), the
# per-byte work no cold fetch can skip: what one receiving core can open and hash, and
# what two cores can seal, open and hash together.
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
command -v Orthanc >/dev/null || skip "Orthanc is not installed: apt-get install -y orthanc"
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
[ -r "$PLUGIN" ] || skip "Debian's orthanc-dicomweb plugin is not installed"
PDU=131072
PARTS=" ${BENCH_PARTS:-small get wado} "
want() { [[ $PARTS == *" $1 "* ]]; }

elapsed_ms() { ELAPSED_MS=$(($(now_ms) - BENCH_T0)); }
start_clock() { BENCH_T0=$(now_ms); }
mbps() { awk -v b="$1" -v ms="$2" 'BEGIN {printf "%.1f", (ms > 0 ? b / 1e6 / (ms / 1000) : 0)}'; }
per_s() { awk -v n="$1" -v ms="$2" 'BEGIN {printf "%.0f", (ms > 0 ? n / (ms / 1000) : 0)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
RESULTS=()
result() # NAME PACSMESH ORTHANC RATIO NOTE
{
    RESULTS+=("$(printf '%-46s %10s %10s %7s  load %-5s %s' "$1" "$2" "$3" "$4" "$(load)" "$5")")
    printf '# %s\n' "${RESULTS[-1]}"
}

# ---- the servers --------------------------------------------------------------------
A=1 B=2 C=3
mesh_create 3
dicom_loopback $A $B $C
for i in $A $B $C; do
    node_set_conf "$i" dicom max_pdu $PDU
    node_set_conf "$i" dicom allowed_aes "PACS_A, VIEWER_B, ECHO"
    node_set_conf "$i" node log_level warn
done
mesh_up 3
for i in $A $B $C; do wait_until 20 dicom_up "$i"; done
printf 'bench-password\n' | pm $C user add bench --role reporter --reporter dr.bench >/dev/null ||
    fail "cannot add the web user at C"

alloc_port
OPORT=$PORT
alloc_port
OHTTP=$PORT
mkdir -p "$T/orthanc/storage" "$T/orthanc/index"
cat >"$T/orthanc/orthanc.json" <<JSON
{
  "Name" : "bench", "StorageDirectory" : "$T/orthanc/storage",
  "IndexDirectory" : "$T/orthanc/index", "StorageCompression" : false,
  "HttpServerEnabled" : true, "HttpPort" : $OHTTP, "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false, "Plugins" : [ "$PLUGIN" ],
  "DicomWeb" : { "Enable" : true, "Root" : "/dicom-web/", "EnableWado" : true },
  "DicomServerEnabled" : true, "DicomAet" : "ORTHANC", "DicomPort" : $OPORT,
  "DicomCheckCalledAet" : false, "DicomAlwaysAllowEcho" : true,
  "DicomAlwaysAllowStore" : true, "DicomAlwaysAllowFind" : true,
  "DicomAlwaysAllowGet" : true, "DicomAlwaysAllowMove" : true,
  "MaximumPduLength" : $PDU, "StorageAccessOnFind" : "Never", "SaveJobs" : false
}
JSON
TCP_NODELAY=1 Orthanc "$T/orthanc/orthanc.json" >"$T/orthanc.log" 2>&1 &
STARTED_PIDS+=("$!")
orthanc_up() { echoscu -to 2 -aet ECHO -aec ORTHANC 127.0.0.1 "$OPORT" >/dev/null 2>&1; }
wait_until 60 orthanc_up
log "pacsmesh nodes A B C and Orthanc $(Orthanc --version 2>/dev/null | head -n 1 | awk '{print $NF}') are up"

# ---- data ---------------------------------------------------------------------------
BIG=$(gen_study "$T/big" 1 300 BIG0001 "BENCH^LARGE" 20240101 512) || fail "cannot generate the CT"
SMALL=$(gen_study "$T/small" 1 2000 SMALL0001 "BENCH^SMALL" 20240102 16) || fail "cannot generate"
for k in 1 2 3 4; do
    gen_study "$T/four$k" 1 500 "FOUR000$k" "BENCH^FOUR$k" 20240103 16 >/dev/null ||
        fail "cannot generate"
done
BIG_BYTES=$(du -sb "$T/big" | cut -f1)
log "generated the CT ($BIG_BYTES bytes), 2,000 tiny instances and 4 x 500"
RAW=$top_builddir/bench/raw_pixels
[ -x "$RAW" ] || fail "$RAW is not built (make in $top_builddir)"
RAW_OUT=$("$RAW" "$BIG_BYTES" $((BIG_BYTES / 300)) 1048576 2>/dev/null) || fail "raw_pixels failed"
raw_of() { awk -v k="$1" '$1 == k {print $2}' <<<"$RAW_OUT"; }
RAW_RECEIVER=$(raw_of receiver_mb_s) RAW_TWO=$(raw_of two_cores_mb_s)
log "raw libsodium: seal $(raw_of seal_mb_s), open $(raw_of open_mb_s), BLAKE2b $(raw_of hash_mb_s) MB/s"
export TCP_NODELAY=1

store_to() # AE PORT DIR: one storescu association, all files
{
    storescu -aet PACS_A -aec "$1" --max-pdu $PDU +sd -to 60 -ta 60 -td 600 127.0.0.1 "$2" "$3" \
        >"$T/store-$1-$(basename "$3").log" 2>&1
}
store_four() # AE PORT: four associations at once, one study each
{
    local k pids=() rc=0
    for k in 1 2 3 4; do
        store_to "$1" "$2" "$T/four$k" &
        pids+=("$!")
    done
    for k in "${pids[@]}"; do wait "$k" || rc=1; done
    return $rc
}

# ---- C-STORE ---------------------------------------------------------------------------
start_clock; store_to PACSMESH "${NODE_DICOM_PORT[A]}" "$T/big" || fail "C-STORE of the CT into A failed"
elapsed_ms; pm_big=$ELAPSED_MS
start_clock; store_to ORTHANC "$OPORT" "$T/big" || fail "C-STORE of the CT into Orthanc failed"
elapsed_ms; or_big=$ELAPSED_MS
result "C-STORE 300 x 512x512 CT (MB/s)" "$(mbps "$BIG_BYTES" $pm_big)" "$(mbps "$BIG_BYTES" $or_big)" \
    "$(ratio $or_big $pm_big)" "target >= 1"
if want small; then
start_clock; store_to PACSMESH "${NODE_DICOM_PORT[A]}" "$T/small" || fail "small C-STORE into A failed"
elapsed_ms; pm_small=$ELAPSED_MS
start_clock; store_to ORTHANC "$OPORT" "$T/small" || fail "small C-STORE into Orthanc failed"
elapsed_ms; or_small=$ELAPSED_MS
result "C-STORE 2,000 tiny, one association (inst/s)" "$(per_s 2000 $pm_small)" \
    "$(per_s 2000 $or_small)" "$(ratio $or_small $pm_small)" "target >= 2"
start_clock; store_four PACSMESH "${NODE_DICOM_PORT[A]}" || fail "four-way C-STORE into A failed"
elapsed_ms; pm_four=$ELAPSED_MS
start_clock; store_four ORTHANC "$OPORT" || fail "four-way C-STORE into Orthanc failed"
elapsed_ms; or_four=$ELAPSED_MS
result "C-STORE 4 x 500 tiny, 4 associations (inst/s)" "$(per_s 2000 $pm_four)" \
    "$(per_s 2000 $or_four)" "$(ratio $or_four $pm_four)" "target >= 2"
fi

# ---- C-GET -----------------------------------------------------------------------------
instances_are() { [ "$(study_field "$1" "$2" instances)" = "$3" ]; }
wait_until 60 instances_are $B "$BIG" 300
wait_until 60 instances_are $C "$BIG" 300
# The retrieves start once the mesh is quiet (the small studies stored above announced
# and replicated everywhere), so they are not measured against a catch-up.
wait_until 120 digests_equal $A $B $C
GET_N=0
get_from() # AE PORT: C-GET of the CT into a fresh directory; FIRST_MS, WHOLE_MS
{
    GET_N=$((GET_N + 1))
    local out=$T/get$GET_N t0
    mkdir -p "$out"
    t0=$(date +%s%N)
    getscu -aet VIEWER_B -aec "$1" -S --max-pdu $PDU -od "$out" -to 60 -ta 60 -td 600 \
        -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$BIG" 127.0.0.1 "$2" >"$out.log" 2>&1 ||
        return 1
    WHOLE_MS=$((($(date +%s%N) - t0) / 1000000))
    [ "$(find "$out" -type f | wc -l)" = 300 ] || return 1
    FIRST_MS=$(find "$out" -type f -printf '%T@\n' | sort -n | head -n 1 |
        awk -v t0="$t0" '{printf "%.0f", ($1 * 1e9 - t0) / 1e6}')
    rm -rf "$out"
}
best_of_two() # FIRST_VAR TOTAL_VAR CMD...: runs CMD twice (a warm figure, on either side),
{              # leaving the lesser of each of its two times in the variables it sets
    local first_var=$1 total_var=$2 first total
    shift 2
    "$@" || return 1
    first=${!first_var} total=${!total_var}
    "$@" || return 1
    [ "$first" -lt "${!first_var}" ] && printf -v "$first_var" %s "$first"
    [ "$total" -lt "${!total_var}" ] && printf -v "$total_var" %s "$total"
    return 0
}
if want get; then
get_from PACSMESH "${NODE_DICOM_PORT[B]}" || fail "cold C-GET through B failed"
cold_first=$FIRST_MS cold_whole=$WHOLE_MS
[ "$(study_field $B "$BIG" cached)" = true ] || fail "the CT is not cached at B after the C-GET"
best_of_two FIRST_MS WHOLE_MS get_from PACSMESH "${NODE_DICOM_PORT[B]}" || fail "warm C-GET through B failed"
warm_first=$FIRST_MS warm_whole=$WHOLE_MS
best_of_two FIRST_MS WHOLE_MS get_from ORTHANC "$OPORT" || fail "C-GET from Orthanc failed"
or_first=$FIRST_MS or_whole=$WHOLE_MS
result "C-GET CT via B, cold: first instance (ms)" "$cold_first" "$or_first" \
    "$(ratio $or_first $cold_first)" "target >= 0.5 (within 2x)"
result "C-GET CT via B, cold: whole study (MB/s)" "$(mbps "$BIG_BYTES" $cold_whole)" \
    "$(mbps "$BIG_BYTES" $or_whole)" "$(ratio $or_whole $cold_whole)" "target >= 0.5"
result "C-GET CT via B, warm: first instance (ms)" "$warm_first" "$or_first" \
    "$(ratio $or_first $warm_first)" ""
result "C-GET CT via B, warm: whole study (MB/s)" "$(mbps "$BIG_BYTES" $warm_whole)" \
    "$(mbps "$BIG_BYTES" $or_whole)" "$(ratio $or_whole $warm_whole)" "target >= 1"
fi

# ---- WADO-RS ---------------------------------------------------------------------------
wado() # URL [USER:PASSWORD]: WADO_FIRST WADO_MS WADO_PARTS
{
    read -r WADO_FIRST WADO_MS WADO_PARTS WADO_BYTES < <("$PYD" "$here/wado_timer.py" "$@") ||
        return 1
    [ "$WADO_PARTS" = 300 ]
}
PM_WADO="http://127.0.0.1:${NODE_HTTP_PORT[C]}/dicom-web/studies/$BIG"
OR_WADO="http://127.0.0.1:$OHTTP/dicom-web/studies/$BIG"
if want wado; then
# The user's password is checked (Argon2id) on their first request, as a viewer's sign-in
# is: made before the clock starts, like Orthanc's (which has no users here).
curl -sf -o /dev/null -u bench:bench-password "http://127.0.0.1:${NODE_HTTP_PORT[C]}/dicom-web/studies?limit=1" ||
    fail "QIDO-RS at C failed"
wado "$PM_WADO" bench:bench-password || fail "cold WADO-RS at C failed ($WADO_PARTS parts)"
wc_first=$WADO_FIRST wc_ms=$WADO_MS
best_of_two WADO_FIRST WADO_MS wado "$PM_WADO" bench:bench-password || fail "warm WADO-RS at C failed"
ww_first=$WADO_FIRST ww_ms=$WADO_MS
best_of_two WADO_FIRST WADO_MS wado "$OR_WADO" || fail "WADO-RS from Orthanc failed ($WADO_PARTS parts)"
wo_first=$WADO_FIRST wo_ms=$WADO_MS
result "WADO-RS CT at C, cold: first instance (ms)" "$wc_first" "$wo_first" \
    "$(ratio $wo_first $wc_first)" "target >= 0.5 (within 2x)"
result "WADO-RS CT at C, cold: whole study (MB/s)" "$(mbps "$BIG_BYTES" $wc_ms)" \
    "$(mbps "$BIG_BYTES" $wo_ms)" "$(ratio $wo_ms $wc_ms)" "target >= 0.5"
result "WADO-RS CT at C, warm: first instance (ms)" "$ww_first" "$wo_first" \
    "$(ratio $wo_first $ww_first)" ""
result "WADO-RS CT at C, warm: whole study (MB/s)" "$(mbps "$BIG_BYTES" $ww_ms)" \
    "$(mbps "$BIG_BYTES" $wo_ms)" "$(ratio $wo_ms $ww_ms)" "target >= 1"
fi

YARDSTICK=()
yardstick() # NAME PACSMESH_MB_S: beside raw libsodium's one receiving core and two cores
{
    YARDSTICK+=("$(printf '%-46s %10s %10s %7s %10s %7s' "$1" "$2" "$RAW_RECEIVER" \
        "$(ratio "$2" "$RAW_RECEIVER")" "$RAW_TWO" "$(ratio "$2" "$RAW_TWO")")")
}
half_of() { awk -v b="$BIG_BYTES" -v ms="$1" 'BEGIN {printf "%.1f", b / 1e6 / (ms / 1000) / 2}'; }
want get && yardstick "C-GET CT via B, cold: whole study (MB/s)" "$(mbps "$BIG_BYTES" $cold_whole)"
want get && yardstick "half of Orthanc's C-GET (the target, MB/s)" "$(half_of "$or_whole")"
want wado && yardstick "WADO-RS CT at C, cold: whole study (MB/s)" "$(mbps "$BIG_BYTES" $wc_ms)"
want wado && yardstick "half of Orthanc's WADO-RS (the target, MB/s)" "$(half_of "$wo_ms")"

echo
printf '%-46s %10s %10s %7s  %s\n' "measure" pacsmesh Orthanc ratio \
    "(ratio: pacsmesh better when > 1; load: 1-minute load average, 2 cores)"
for r in "${RESULTS[@]}"; do echo "$r"; done
if [ ${#YARDSTICK[@]} -gt 0 ]; then
    echo
    printf '%-46s %10s %10s %7s %10s %7s\n' "against raw libsodium, same run" pacsmesh \
        "1 core" ratio "2 cores" ratio
    for r in "${YARDSTICK[@]}"; do echo "$r"; done
    echo "(1 core: CURVE open + BLAKE2b of every byte, as a receiving node must; 2 cores: seal,"
    echo " open and BLAKE2b spread perfectly over both, holder and receiver on this machine)"
fi
