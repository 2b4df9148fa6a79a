#!/bin/bash
# C-STORE edge cases on a mesh of two nodes A (1) and B (2) on 127.0.0.1, made with the
# CLI:
#
#  1. The same instance twice: a study sent again by storescu, then imported from the
#     files it was sent from (their meta header differs from the one the node wrote):
#     success each time, still one instance each, no new event, no new blob.
#  2. Stale spool files (left by a node killed in the middle of a C-STORE) are removed
#     when the node starts, and the start says so. The empty spool files a node makes
#     ahead: a C-STORE takes one; after kill -9 the next start removes them without
#     calling them stale; a clean stop removes them.
#  3. Disk full (a 24 MiB tmpfs under B's blobs, filled to under 16 MiB free; skipped
#     when this test may not mount): C-STORE answers 0xA700 with a comment, B logs it,
#     the association goes on (the next instance on it gets the same answer), and once
#     there is room again the instance is stored.
#  4. A revoked node: B is revoked by A; once B knows, C-STORE to B is refused (0xC000,
#     "this node has been revoked from the mesh"), logged.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

A=1 B=2
CT_CLASS=1.2.840.10008.5.1.4.1.1.2
mesh_create 2
dicom_loopback $A $B
mesh_up 2
for i in $A $B; do wait_until 20 dicom_up "$i"; done
instances_are() { [ "$(study_field "$1" "$2" instances)" = "$3" ]; } # I STUDY N
blob_count() { node_blobs "$1" | wc -l; }

# ---- 1. the same instance twice ------------------------------------------------------------------
S=$(gen_study "$T/s" 1 3 DUP0001 "DUPLICATE^SENT" 20240501) || fail "cannot generate a study"
dstore $A "$T/s" >/dev/null 2>&1 || fail "storescu into A failed"
wait_until 20 instances_are $A "$S" 3
wait_until 20 digests_equal
ev=$(events_count $A)
blobs=$(blob_count $A)
storescu -v -aet PACS_A -aec PACSMESH +sd -nh 127.0.0.1 "${NODE_DICOM_PORT[A]}" "$T/s" >"$T/again.log" 2>&1 ||
    fail "storescu of the same study again failed"
[ "$(grep -c "Received Store Response (Success)" "$T/again.log")" = 3 ] || fail "the re-sent instances were not all answered with success"
pm $A import "$T/s" >"$T/import.out" 2>&1 || { cat "$T/import.out"; fail "import of what came by C-STORE failed"; }
grep -q "^imported 3 instances" "$T/import.out" || { cat "$T/import.out"; fail "import did not take the 3 instances"; }
sleep 3 # a quiet period: anything to announce would be announced by now
instances_are $A "$S" 3 || fail "the study has $(study_field $A "$S" instances) instances after the re-sends"
[ "$(events_count $A)" = "$ev" ] || fail "events: $ev before the re-sends, $(events_count $A) after"
[ "$(blob_count $A)" = "$blobs" ] || fail "blobs: $blobs before the re-sends, $(blob_count $A) after"
[ "$(dcount $A S IMAGE SOPInstanceUID -k "StudyInstanceUID=$S")" = 3 ] || fail "C-FIND finds other than 3 instances"
log "re-sent by C-STORE and imported: still 3 instances, no new event, no new blob"

# ---- 2. stale spool files -------------------------------------------------------------------------
node_stop $A
spool="${NODE_DIR[A]}/blobs/spool"
head -c 2000 /dev/urandom >"$spool/rx-999999-1.dcm"
head -c 2000 /dev/urandom >"$spool/rx-999998-7.dcm"
node_start $A
wait_until 20 dicom_up $A
[ ! -e "$spool/rx-999999-1.dcm" ] && [ ! -e "$spool/rx-999998-7.dcm" ] ||
    fail "stale spool files left: $(ls "$spool")"
[ -z "$(find "$spool" -type f -size +0)" ] || fail "spool files with data left: $(find "$spool" -type f -size +0)"
grep -q "removed 2 stale spool files of an earlier run" "${NODE_LOG[A]}" || fail "A's start does not say it removed them"
log "stale spool files removed at start"

made_ahead() { find "$spool" -maxdepth 1 -name "rx-${NODE_PID[A]}-*.dcm" -size 0 | sort; }
made_ahead_at_least() { [ "$(made_ahead | wc -l)" -ge "$1" ]; }
wait_until 20 made_ahead_at_least 8
before=$(made_ahead)
AH=$(gen_study "$T/ahead" 1 1 AHEAD0001 "MADE^AHEAD" 20240501) || fail "cannot generate a study"
dstore $A "$T/ahead" >/dev/null 2>&1 || fail "storescu into A failed"
wait_until 20 instances_are $A "$AH" 1
[ -n "$(comm -23 <(echo "$before") <(made_ahead))" ] || fail "the C-STORE did not take a spool file made ahead"
[ -z "$(find "$spool" -type f -size +0)" ] || fail "spool files with data left: $(find "$spool" -type f -size +0)"
stale_said=$(log_count $A "stale spool files")
killed=${NODE_PID[A]}
node_kill9 $A
[ -n "$(find "$spool" -name "rx-$killed-*")" ] || fail "no file made ahead was left by kill -9 (nothing to check)"
node_start $A
wait_until 20 dicom_up $A
[ -z "$(find "$spool" -name "rx-$killed-*")" ] || fail "files made ahead before kill -9 left: $(find "$spool" -name "rx-$killed-*")"
[ "$(log_count $A "stale spool files")" = "$stale_said" ] || fail "the start called empty files made ahead stale"
wait_until 20 made_ahead_at_least 1
node_stop $A
[ -z "$(find "$spool" -name "rx-*")" ] || fail "a clean stop left spool files: $(find "$spool" -name "rx-*")"
node_start $A
wait_until 20 dicom_up $A
log "spool files made ahead: one taken by a C-STORE, removed quietly after kill -9 and by a clean stop"

# ---- 3. disk full -------------------------------------------------------------------------------------
FULL=$(gen_study "$T/full" 1 2 FULL0001 "DISK^FULL" 20240502 256) || fail "cannot generate a study"
F=($(ls "$T"/full/*.dcm))
F0=$(basename "${F[0]}" .dcm) F1=$(basename "${F[1]}" .dcm)
node_stop $B
mnt="${NODE_DIR[B]}/blobs"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=24m tmpfs "$mnt" 2>/dev/null; then
    on_exit "umount '$mnt' 2>/dev/null"
    node_start $B
    wait_until 20 dicom_up $B
    dd if=/dev/zero of="$mnt/filler" bs=1M count=10 status=none
    raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "$F0:${F[0]}" "$F1:${F[1]}" >"$T/full.log" 2>&1 ||
        { cat "$T/full.log"; fail "raw C-STORE to the full node failed"; }
    sed 's/^/#   /' "$T/full.log"
    for u in "$F0" "$F1"; do
        [ "$(awk -v u="$u" '$1 == u {print $2}' "$T/full.log")" = 0xa700 ] || fail "disk full: $u not answered with 0xa700"
    done
    grep -q "C-STORE from RAW_SCU (127.0.0.1) refused: the disk of .* is full" "${NODE_LOG[B]}" || fail "B's log does not say the disk is full"
    storescu -v -aet PACS_B -aec PACSMESH -nh 127.0.0.1 "${NODE_DICOM_PORT[B]}" "${F[0]}" >"$T/full2.log" 2>&1
    grep -q "Received Store Response (Refused: OutOfResources)" "$T/full2.log" ||
        { cat "$T/full2.log"; fail "storescu did not get Out of resources"; }
    rm -f "$mnt/filler"
    raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "$F0:${F[0]}" >"$T/full3.log" 2>&1
    [ "$(awk -v u="$F0" '$1 == u {print $2}' "$T/full3.log")" = 0x0000 ] ||
        { cat "$T/full3.log"; fail "with room again, the instance was not stored"; }
    nodes_alive $B
    log "disk full: 0xa700 with a comment, logged, the association went on; stored once there was room"
else
    log "disk full: not tested (this test may not mount a tmpfs)"
    node_start $B
    wait_until 20 dicom_up $B
fi

# ---- 4. a revoked node --------------------------------------------------------------------------------
# B hears of its revocation only from A, which drops B's links once B is revoked: both
# links must be up (B may just have restarted) for the revocation to reach it first.
wait_until 30 is_up $A "${NODE_ID[B]}"
wait_until 30 is_up $B "${NODE_ID[A]}"
pm $A revoke "${NODE_ID[B]}" --reason "test: revoked node refuses C-STORE" >/dev/null || fail "revoke failed"
wait_until 20 state_is $B "${NODE_ID[B]}" revoked
R=$(gen_study "$T/rev" 1 1 REV0001 "REVOKED^NODE" 20240503) || fail "cannot generate a study"
R0=$(basename "$(ls "$T"/rev/*.dcm)" .dcm)
raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "$R0:$(ls "$T"/rev/*.dcm)" >"$T/rev.log" 2>&1 ||
    { cat "$T/rev.log"; fail "raw C-STORE to the revoked node failed"; }
[ "$(awk -v u="$R0" '$1 == u {print $2}' "$T/rev.log")" = 0xc000 ] || { cat "$T/rev.log"; fail "the revoked node did not refuse with 0xc000"; }
grep -q "instance $R0 from RAW_SCU (127.0.0.1) refused: this node has been revoked from the mesh" "${NODE_LOG[B]}" ||
    fail "B's log does not say it was revoked"
[ "$(dcount $B S IMAGE SOPInstanceUID -k "SOPInstanceUID=$R0")" = 0 ] || fail "the revoked node stored the instance"
nodes_alive $A $B
log "revoked node: C-STORE refused with 0xc000, logged"
echo "PASS: $TEST_NAME"
