#!/bin/bash
# The DICOM edge's access rules on a running node (docs/operations.md, "Securing the
# DICOM edge"):
#   - the called AE title must be the node's; an unknown calling AE, and a listed AE
#     from another address (127.0.0.2 as a second source address), are rejected at
#     association with the standard reason, logged with AE and address, counted;
#   - per-AE rights: a service not granted answers 0x0124 (refused: not authorized);
#   - C-GET/C-MOVE unique keys: empty, wildcard, or a list with an empty element are
#     refused (0xA900), a UID list is served;
#   - an empty allowed_aes refuses everyone, naming AE and address; with
#     allow_store_from_any = yes any AE may store but still not query;
#   - user identity: a right passcode or /api/tokens token makes the C-MOVE's
#     study-accessed event name the user; a wrong one is rejected at association;
#   - SIGHUP: a new allowed_aes entry and a new C-MOVE destination apply to the next
#     association without a restart;
#   - refusals in pacsmesh_dicom_refused_total; the node keeps serving throughout;
#   - under umask 000, files holding patient data are 0600, directories 0700.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
. "$(dirname "$0")/http_lib.sh"
dicom_init
umask 000 # the node must not depend on the umask it is started with

A=1 B=2
TEST_ALLOWED_AES="ECHO VIEWER_B VIEWER@127.0.0.1:echo+find+get+move PACS_A:echo+store FAR@127.0.0.2"
mesh_create 2
alloc_port
METRICS_PORT=$PORT
node_set_conf $A metrics listen "127.0.0.1:$METRICS_PORT"
alloc_port
METRICS_PORT_B=$PORT
node_set_conf $B metrics listen "127.0.0.1:$METRICS_PORT_B"
alloc_port
DEST_PORT=$PORT
node_set_conf $A dicom.destinations DEST_A "127.0.0.1:$DEST_PORT"
node_set_conf $B dicom.destinations DEST_A "127.0.0.1:$DEST_PORT"
user_add $B rita reporter dr.rita # B reads A's studies: its reads are on the record
node_start $A
node_start $B
wait_until 30 dicom_up $A
wait_until 30 dicom_up $B
P=${NODE_DICOM_PORT[A]}
RAW="$PYTHON -S - $top_srcdir/test $P"

refused_total() # PORT REASON: a node's pacsmesh_dicom_refused_total{reason=REASON}
{
    curl -sf "http://127.0.0.1:$1/metrics" |
        sed -n "s/^pacsmesh_dicom_refused_total{reason=\"$2\"} \([0-9.e+]*\)$/\1/p"
}
logged() { grep -qE -- "$1" "${NODE_LOG[A]}" || fail "not logged: $1"; }

# ---- association level -----------------------------------------------------------------
echoscu -aet ECHO -aec OTHER_NODE 127.0.0.1 "$P" >"$T/e1.log" 2>&1 &&
    fail "an association to another called AE title was accepted"
grep -q "Called AE Title Not Recognized" "$T/e1.log" || fail "called AE: $(cat "$T/e1.log")"
logged "called AE title 'OTHER_NODE' is not this node's"
echoscu -aet INTRUDER -aec PACSMESH 127.0.0.1 "$P" >"$T/e2.log" 2>&1 &&
    fail "an unknown calling AE was accepted"
grep -q "Calling AE Title Not Recognized" "$T/e2.log" || fail "calling AE: $(cat "$T/e2.log")"
logged "association from AE INTRUDER at 127.0.0.1 refused: calling AE title not listed"
# FAR is listed for 127.0.0.2 only; VIEWER for 127.0.0.1 only.
echoscu -aet FAR -aec PACSMESH 127.0.0.1 "$P" >/dev/null 2>&1 && fail "FAR accepted from 127.0.0.1"
logged "association from AE FAR at 127.0.0.1 refused: calling AE title not allowed from this address"
$RAW <<'EOF' || fail "the source-address checks failed"
import sys
sys.path.insert(0, sys.argv[1]); import dicom_raw as dr
port = int(sys.argv[2])
s = dr.open_association(port, calling=b"FAR", src="127.0.0.2")  # listed there: accepted
dr.release(s)
try:
    dr.open_association(port, calling=b"VIEWER", src="127.0.0.2")
    sys.exit("VIEWER accepted from 127.0.0.2")
except dr.Rejected as r:
    # A-ASSOCIATE-RJ: rejected-permanent (1), service-user (1), calling AE not recognized (3)
    assert r.type == 3 and r.body[1:4] == bytes([1, 1, 3]), r
EOF
logged "association from AE VIEWER at 127.0.0.2 refused: calling AE title not allowed from this address"
log "called AE, unknown calling AE and a listed AE from another address: rejected and logged"

# ---- rights ----------------------------------------------------------------------------
S1=$(gen_study "$T/s1" 1 2 SEC0001 "SEC^ONE" 20240101) || fail "gen_study failed"
S2=$(gen_study "$T/s2" 1 1 SEC0002 "SEC^TWO" 20240102) || fail "gen_study failed"
dstore $A "$T/s1" >/dev/null 2>&1 || fail "PACS_A (store right) could not store"
dstore $A "$T/s2" >/dev/null 2>&1 || fail "PACS_A (store right) could not store"
storescu -v -aet VIEWER -aec PACSMESH +sd +r -nh 127.0.0.1 "$P" "$T/s1" >"$T/vstore.log" 2>&1
grep -qi "not.\?authori[sz]ed\|0x0\?124\b" "$T/vstore.log" || fail "VIEWER's C-STORE: $(tail -n 3 "$T/vstore.log")"
logged "C-STORE from AE VIEWER at 127.0.0.1 refused: no 'store' right"
findscu -v -aet PACS_A -aec PACSMESH -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID \
    127.0.0.1 "$P" >"$T/pfind.log" 2>&1
grep -qi "not.\?authori[sz]ed\|0x0\?124\b" "$T/pfind.log" || fail "PACS_A's C-FIND: $(tail -n 3 "$T/pfind.log")"
logged "C-FIND from AE PACS_A at 127.0.0.1 refused: no 'find' right"
mkdir -p "$T/pget"
getscu -v -aet PACS_A -aec PACSMESH -S -od "$T/pget" -k QueryRetrieveLevel=STUDY \
    -k "StudyInstanceUID=$S1" 127.0.0.1 "$P" >"$T/pget.log" 2>&1
[ -z "$(ls -A "$T/pget")" ] || fail "PACS_A (no get right) was sent instances"
grep -qi "not.\?authori[sz]ed\|0x0\?124\b" "$T/pget.log" || fail "PACS_A's C-GET: $(tail -n 3 "$T/pget.log")"
logged "C-GET from AE PACS_A at 127.0.0.1 refused: no 'get' right"
movescu -v -aet PACS_A -aec PACSMESH -S -aem PACS_A -k QueryRetrieveLevel=STUDY \
    -k "StudyInstanceUID=$S1" 127.0.0.1 "$P" >"$T/pmove.log" 2>&1
grep -qi "not.\?authori[sz]ed\|0x0\?124\b" "$T/pmove.log" || fail "PACS_A's C-MOVE: $(tail -n 3 "$T/pmove.log")"
logged "C-MOVE from AE PACS_A at 127.0.0.1 refused: no 'move' right"
[ "$(findscu -aet VIEWER -aec PACSMESH -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID \
    127.0.0.1 "$P" 2>&1 | grep -c 'StudyInstanceUID')" -ge 2 ] || fail "VIEWER's C-FIND found nothing"
log "rights: VIEWER may find but not store, PACS_A store but not find, get or move (0x0124, logged)"

# ---- retrieve identifiers --------------------------------------------------------------
get() { getscu -aet VIEWER -aec PACSMESH -S -od "$1" -k QueryRetrieveLevel=STUDY -k "$2" 127.0.0.1 "$P"; }
for bad in "StudyInstanceUID=" "StudyInstanceUID=*" "StudyInstanceUID=1.2.*" "StudyInstanceUID=$S1\\"; do
    rm -rf "$T/bad"
    mkdir -p "$T/bad"
    get "$T/bad" "$bad" >"$T/bad.log" 2>&1
    [ -z "$(ls "$T/bad")" ] || fail "C-GET with '$bad' retrieved $(ls "$T/bad" | wc -l) files"
    grep -q "DataSetDoesNotMatchSOPClass\|0xa900" "$T/bad.log" || fail "C-GET '$bad': $(tail -n 2 "$T/bad.log")"
done
logged "C-GET from VIEWER \(127.0.0.1\) refused: STUDY level retrieve: unique key StudyInstanceUID is empty"
mkdir -p "$T/got"
get "$T/got" "StudyInstanceUID=$S1\\$S2" >/dev/null 2>&1 || fail "C-GET of a UID list failed"
[ "$(ls "$T/got" | wc -l)" = 3 ] || fail "C-GET of two studies returned $(ls "$T/got" | wc -l) files, not 3"
log "retrieve: empty, wildcard and trailing-empty-element unique keys refused (0xA900); a UID list served"

# ---- user identity (reads of A's studies through B) -------------------------------------
scp_start "$DEST_PORT" "$T/moved" DEST_A
TOKEN=$(curl -sf -u rita:rita-password -X POST "http://127.0.0.1:${NODE_HTTP_PORT[B]}/api/tokens" |
    $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["token"])') || fail "no token from POST /api/tokens"
b_has_both() { [ "$(dcount $B S STUDY "StudyInstanceUID=$S1\\$S2")" = 2 ]; }
wait_until 60 b_has_both
RAWB="$PYTHON -S - $top_srcdir/test ${NODE_DICOM_PORT[B]}"
$RAWB "$S1" "$S2" "$TOKEN" <<'EOF' || fail "the user identity checks failed"
import sys
sys.path.insert(0, sys.argv[1]); import dicom_raw as dr
port, s1, s2, token = int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode(), sys.argv[5].encode()
ctx = ((dr.MOVE_STUDY, dr.IVLE),)
for ident in ((2, b"rita", b"wrong-password"), (2, b"nobody", b"x"), (5, b"00" * 32)):
    try:
        dr.open_association(port, calling=b"VIEWER", contexts=ctx, identity=ident)
        sys.exit("forged identity %r accepted" % (ident,))
    except dr.Rejected as r:
        assert r.type == 3, r
s = dr.open_association(port, calling=b"VIEWER", contexts=ctx, identity=(2, b"rita", b"rita-password"))
st = dr.move_study(s, b"DEST_A", s1)
assert st == 0, "C-MOVE with a passcode: status 0x%04x" % st
dr.release(s)
s = dr.open_association(port, calling=b"VIEWER", contexts=ctx, identity=(5, token))
st = dr.move_study(s, b"DEST_A", s2)
assert st == 0, "C-MOVE with a token: status 0x%04x" % st
dr.release(s)
EOF
loggedb() { grep -qE -- "$1" "${NODE_LOG[B]}" || fail "not logged at B: $1"; }
loggedb "association from VIEWER \(127.0.0.1\) refused: user identity: user name or passcode wrong \(user rita\)"
loggedb "association from VIEWER \(127.0.0.1\) refused: user identity: token not valid"
accessed() # STUDY READER: a study-accessed event of STUDY names READER
{
    pm $B audit export --out "$T/b.pmaudit" >/dev/null 2>&1 &&
        pm $B audit log "$T/b.pmaudit" --json | $PYTHON -c '
import json, sys
log = json.load(sys.stdin)
sys.exit(0 if any(e["type"] == "study-accessed" and e.get("study_uid") == sys.argv[1] and
                  e.get("reporter") == sys.argv[2] for e in log) else 1)' "$1" "$2"
}
wait_until 20 accessed "$S1" dr.rita
wait_until 20 accessed "$S2" dr.rita
mkdir -p "$T/gotb"
getscu -aet VIEWER -aec PACSMESH -S -od "$T/gotb" -k QueryRetrieveLevel=STUDY \
    -k "StudyInstanceUID=$S1" 127.0.0.1 "${NODE_DICOM_PORT[B]}" >/dev/null 2>&1 || fail "C-GET at B failed"
wait_until 20 accessed "$S1" "VIEWER@127.0.0.1" # without identity: the AE and its address
log "user identity: passcode and token reads recorded as dr.rita, others as AE@host; forged ones rejected"

# ---- reload ----------------------------------------------------------------------------
alloc_port
DEST2_PORT=$PORT
scp_start "$DEST2_PORT" "$T/moved2" DEST_B
node_set_conf $A dicom allowed_aes "$TEST_ALLOWED_AES LATE@127.0.0.1:echo+move"
node_set_conf $A dicom.destinations DEST_B "127.0.0.1:$DEST2_PORT"
n0=$(log_count $A "access rules replaced")
kill -HUP "${NODE_PID[A]}"
wait_until 20 log_grew $A "access rules replaced" "${n0:-0}"
echoscu -aet LATE -aec PACSMESH 127.0.0.1 "$P" >/dev/null 2>&1 || fail "LATE refused after the reload"
movescu -aet LATE -aec PACSMESH -S -aem DEST_B -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$S2" \
    127.0.0.1 "$P" >"$T/late.log" 2>&1 || fail "C-MOVE to the reloaded destination failed"
moved2() { [ -n "$(ls "$T/moved2" 2>/dev/null)" ]; }
wait_until 20 moved2
log "SIGHUP: a new allowed_aes entry and destination apply to the next association"

# ---- metrics, still serving ------------------------------------------------------------
for r in $METRICS_PORT:called_ae $METRICS_PORT:calling_ae $METRICS_PORT:host \
    $METRICS_PORT:rights $METRICS_PORT:identifier $METRICS_PORT_B:identity; do
    v=$(refused_total "${r%%:*}" "${r#*:}")
    [ -n "$v" ] && [ "${v%%.*}" -ge 1 ] || fail "pacsmesh_dicom_refused_total{reason=\"${r#*:}\"} is '$v'"
done
dicom_up $A || fail "the node stopped serving after the refusals"
log "refusals counted by reason in pacsmesh_dicom_refused_total; the node still serves"

# ---- file modes under umask 000 --------------------------------------------------------
modes_ok() # DIR: every file 0600, every directory 0700
{
    local bad
    bad=$(find "$1" \( -type f ! -perm 0600 \) -o \( -type d ! -perm 0700 \) | head -n 3)
    [ -z "$bad" ] || fail "modes under $1: $(stat -c '%a %n' $bad)"
}
[ "$(stat -c %a "${NODE_DIR[A]}")" = 700 ] || fail "node directory mode $(stat -c %a "${NODE_DIR[A]}")"
modes_ok "${NODE_DIR[A]}" # keys, store, blobs, spool, users, node.conf
[ -d "${NODE_DIR[A]}/blobs/spool" ] || fail "no spool directory to check"
pm $A audit export --out "$T/modes.pmaudit" >/dev/null || fail "audit export failed"
[ "$(stat -c %a "$T/modes.pmaudit")" = 600 ] || fail "audit export mode $(stat -c %a "$T/modes.pmaudit")"
pm $A fetch "$S1" --out "$T/fetched" >/dev/null 2>&1 || fail "fetch --out failed"
[ "$(stat -c %a "$T/fetched")" = 700 ] || fail "fetch --out directory mode $(stat -c %a "$T/fetched")"
modes_ok "$T/fetched"
pm $A backup --out "$T/backup" >/dev/null 2>&1 || fail "backup failed"
modes_ok "$T/backup"
log "umask 000: node directory, blobs, spool, audit export, fetch --out and backup are owner-only"

# ---- deny by default -------------------------------------------------------------------
node_stop $A
node_set_conf $A dicom allowed_aes ""
node_start $A
wait_until 30 grep -q "listening on" "${NODE_LOG[A]}"
echoscu -aet ECHO -aec PACSMESH 127.0.0.1 "$P" >/dev/null 2>&1 && fail "an empty allowed_aes let ECHO in"
logged "association from AE ECHO at 127.0.0.1 refused: allowed_aes is empty"
node_stop $A
node_set_conf $A dicom allow_store_from_any yes
node_start $A
S3=$(gen_study "$T/s3" 1 1 SEC0003 "SEC^THREE" 20240103) || fail "gen_study failed"
wait_until 30 dstore $A "$T/s3"
findscu -v -aet PACS_A -aec PACSMESH -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID \
    127.0.0.1 "$P" >"$T/any.log" 2>&1
grep -qi "not.\?authori[sz]ed\|0x0\?124\b" "$T/any.log" || fail "C-FIND with an empty list: $(tail -n 3 "$T/any.log")"
logged "C-FIND from AE PACS_A at 127.0.0.1 refused: allowed_aes is empty, so no AE may find"
log "empty allowed_aes: everyone refused; with allow_store_from_any, stores accepted, queries refused"
nodes_alive $B
echo "PASS: $TEST_NAME"
