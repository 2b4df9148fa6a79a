#!/bin/bash
# Group commit loses nothing acknowledged: four storescu associations at once push four
# synthetic studies (150 tiny instances each; no patient data) into node A, whose
# C-STOREs share syncs and commits. A is killed (kill -9) while they are under way.
# After a restart, every instance any storescu was told had succeeded is there: C-FIND
# at IMAGE level at A and at B (so its study was announced and gossiped) finds it, and a
# C-GET from A returns it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

A=1 B=2
PER=150
mesh_create 2
dicom_loopback $A $B
for i in $A $B; do
    # Listed explicitly: an empty list will refuse C-FIND/C-GET/C-MOVE.
    node_set_conf "$i" dicom allowed_aes "PACS_A, VIEWER_B, ECHO"
done
mesh_up 2
for i in $A $B; do wait_until 20 dicom_up "$i"; done

STUDIES=()
for k in 1 2 3 4; do
    STUDIES+=("$(gen_study "$T/in$k" 1 $PER "CRASH000$k" "SYNTHETIC^CRASH$k" 20240401 16)") ||
        fail "cannot generate study $k"
done

# Four associations at once; -v logs each file sent and each response.
SCU_PIDS=()
for k in 1 2 3 4; do
    storescu -v -aet PACS_A -aec PACSMESH +sd -to 10 -ta 10 -td 10 127.0.0.1 \
        "${NODE_DICOM_PORT[A]}" "$T/in$k" >"$T/scu$k.log" 2>&1 &
    SCU_PIDS+=("$!")
    STARTED_PIDS+=("$!")
done
acknowledged() { grep -h "Received Store Response (Success)" "$T"/scu*.log 2>/dev/null | wc -l; }
some_acknowledged() { [ "$(acknowledged)" -ge 100 ]; }
wait_until 60 some_acknowledged
node_kill9 $A
for p in "${SCU_PIDS[@]}"; do wait "$p" 2>/dev/null; done
log "A killed with $(acknowledged) of $((4 * PER)) instances acknowledged"

# The SOP Instance UIDs storescu was told succeeded: the file sent before each success
# (files are named by their SOP Instance UID).
for k in 1 2 3 4; do
    awk '/Sending file/ {f = $NF} /Received Store Response \(Success\)/ && f {print f; f = ""}' \
        "$T/scu$k.log" | sed 's|.*/||; s|\.dcm$||'
done | sort -u >"$T/acked"
n_acked=$(wc -l <"$T/acked")
[ "$n_acked" -ge 100 ] || fail "only $n_acked acknowledged instances found in storescu's logs"
[ "$n_acked" -lt $((4 * PER)) ] || log "note: every instance was acknowledged before the kill"

node_start $A
wait_until 20 dicom_up $A
found_at() # I: every acknowledged instance is found by C-FIND at node I
{
    local s
    for s in "${STUDIES[@]}"; do
        dfind "$1" S IMAGE SOPInstanceUID -k "StudyInstanceUID=$s" || return 1
    done | sort -u >"$T/found$1"
    [ -z "$(comm -23 "$T/acked" "$T/found$1")" ]
}
wait_until 60 found_at $A
wait_until 60 found_at $B
for s in "${STUDIES[@]}"; do
    dget $A "$T/got" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$s" >>"$T/get.log" 2>&1 ||
        fail "C-GET of $s from A failed after the restart"
done
"$PYD" - "$T/got" "$T/acked" <<'EOF' || fail "an acknowledged instance cannot be retrieved after the crash"
import glob, sys, pydicom
got = {pydicom.dcmread(f).SOPInstanceUID for f in glob.glob(sys.argv[1] + "/*")}
missing = [u for u in open(sys.argv[2]).read().split() if u not in got]
if missing:
    sys.exit("%d acknowledged instances missing, e.g. %s" % (len(missing), missing[0]))
EOF
log "all $n_acked acknowledged instances are at A, announced to B, and retrievable"
