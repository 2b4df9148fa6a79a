#!/bin/bash
# Faults at the DICOM edge and in lazy fetch: four real nodes A (1), B (2), C (3) and
# D (4) on 127.0.0.1, made with the CLI.
#
#  1. Broken DICOM through `import` at B (pydicom's MR_truncated, rtplan_truncated and
#     badVR, random bytes, random bytes with a DICM marker) beside two good files: each
#     broken file is named on stderr with a one-line reason and skipped, the good ones
#     are imported, the exit status is 0 (something was imported; 1 when nothing was,
#     as `import` documents), nothing of a skipped file reaches the blob store.
#  2. Broken DICOM through C-STORE at B: storescu with the broken files and a good one
#     in one association (storescu itself refuses to send what it cannot parse), and a
#     raw C-STORE client that does put random bytes and a truncated data set on the
#     wire: each broken data set gets a failure status, the good instance that follows
#     on the same association is stored (success, found by C-FIND), B keeps running.
#  3. kill -9 of A in the middle of C-STORE associations, 10 rounds (50 instances of a
#     synthetic study each round, killed at a random moment, restarted): every
#     instance storescu saw acknowledged ("Received Store Response (Success)") is there
#     after the restart (C-FIND at IMAGE level at A), C-GET of the study returns every
#     one of them equal to what was sent, and every blob at A hashes to its name.
#  4. Corrupt holders: C and D cache a study of A (fetch, 3 instances); on disk, every
#     instance's blob file is corrupted at C (same size, flipped bytes) and D keeps good
#     ones; B spreads a study's instances over the holders that are up, so it asks C for
#     at least one and meets a corrupt copy while a good one exists; A is killed; `fetch` at B detects the hash mismatch (B's log names the
#     instance and the peer), takes that instance from the other holder and succeeds;
#     every blob cached at B hashes (b2sum -l 256) to its file name, and they are
#     exactly A's blobs of the study.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init
command -v b2sum >/dev/null || skip "b2sum (coreutils) is needed"

A=1 B=2 C=3 D=4
mesh_create 4
dicom_loopback $A $B $C $D
mesh_up 4
for i in $A $B $C $D; do wait_until 20 dicom_up "$i"; done
log "mesh of 4 up"

blob_count() { node_blobs "$1" | wc -l; }

# ---- 1. broken files through import ----------------------------------------------------
mkdir -p "$T/broken"
for f in MR_truncated badVR rtplan_truncated; do cp "$TF/$f.dcm" "$T/broken/"; done
head -c 4000 /dev/urandom >"$T/broken/random.bin"
{ head -c 128 /dev/urandom; printf 'DICM'; head -c 3000 /dev/urandom; } >"$T/broken/random-dicm.dcm"
GOOD=$(gen_study "$T/good" 1 2 GOOD0001 "GOOD^IMPORT" 20220202) || fail "cannot generate a study"
cp "$T"/good/*.dcm "$T/broken/"
before=$(blob_count $B)
rc=0
pm $B import "$T/broken" >"$T/import.out" 2>"$T/import.err" || rc=$?
cat "$T/import.out" "$T/import.err" | sed 's/^/#   /'
[ "$rc" = 0 ] || fail "import with good and broken files exited $rc"
for f in MR_truncated.dcm rtplan_truncated.dcm random.bin random-dicm.dcm; do
    [ "$(grep -c "skipped $T/broken/$f: ." "$T/import.err")" = 1 ] ||
        fail "import did not report $f as skipped with a reason"
done
# badVR.dcm has a bad VR that dcmtk reads through (it has all its UIDs): a PACS built
# on dcmtk stores it too. Either way it is one line, and counted.
badvr=0
grep -q "skipped $T/broken/badVR.dcm: ." "$T/import.err" || badvr=1
grep -q "^imported $((2 + badvr)) instances, $((5 - badvr)) skipped" "$T/import.out" ||
    fail "import printed the wrong counts"
[ "$(blob_count $B)" = "$((before + 2 + badvr))" ] || fail "blobs at B: $before -> $(blob_count $B)"
instances_are() { [ "$(study_field "$1" "$2" instances)" = "$3" ]; } # I STUDY N
wait_until 20 instances_are $B "$GOOD" 2
rc=0
pm $B import "$T/broken/random.bin" "$T/broken/MR_truncated.dcm" >/dev/null 2>"$T/import2.err" || rc=$?
[ "$rc" = 1 ] || fail "import of broken files only exited $rc, not 1"
[ "$(grep -c skipped "$T/import2.err")" = 2 ] || fail "import of broken files only: not both reported"
nodes_alive $B
log "import: broken files skipped with reasons, good ones imported, exit 0 (1 if none)"

# ---- 2. broken files through C-STORE ---------------------------------------------------
GOOD2=$(gen_study "$T/good2" 1 3 GOOD0002 "GOOD^STORE" 20220203) || fail "cannot generate a study"
G2=($(ls "$T"/good2/*.dcm))
storescu -v -aet PACS_X -aec PACSMESH -nh 127.0.0.1 "${NODE_DICOM_PORT[B]}" \
    "$TF/MR_truncated.dcm" "$TF/rtplan_truncated.dcm" "${G2[0]}" >"$T/storescu-bad.log" 2>&1
s0=$(basename "${G2[0]}" .dcm)
grep -q "Received Store Response (Success)" "$T/storescu-bad.log" ||
    { cat "$T/storescu-bad.log"; fail "storescu: the good file after broken ones was not stored"; }
# On the wire, what storescu never sends: random bytes and a truncated data set.
printf '\x08\x00\x16\x00UI\x1a\x00' >"$T/junk.bin"
head -c 3000 /dev/urandom >>"$T/junk.bin"
head -c 2000 /dev/urandom >"$T/random2.bin"
MRT_SOP=$("$PYD" -c 'import pydicom, sys
print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$TF/MR_truncated.dcm")
CT_CLASS=1.2.840.10008.5.1.4.1.1.2
s1=$(basename "${G2[1]}" .dcm)
raw_cstore "${NODE_DICOM_PORT[B]}" "$CT_CLASS" "1.2.826.0.1.3680043.99.9.1:$T/random2.bin" \
    "1.2.826.0.1.3680043.99.9.2:$T/junk.bin" "$MRT_SOP:$TF/MR_truncated.dcm" \
    "$s1:${G2[1]}" >"$T/raw.log" 2>&1 || { cat "$T/raw.log"; fail "raw C-STORE client failed"; }
sed 's/^/#   raw C-STORE: /' "$T/raw.log"
for u in 1.2.826.0.1.3680043.99.9.1 1.2.826.0.1.3680043.99.9.2 "$MRT_SOP"; do
    st=$(awk -v u="$u" '$1 == u {print $2}' "$T/raw.log")
    case "$st" in
    0x0000 | "" | no-status | aborted) fail "broken data set $u: status '$st', not a failure status" ;;
    0xb*) fail "broken data set $u: only a warning ($st)" ;;
    esac
done
[ "$(awk -v u="$s1" '$1 == u {print $2}' "$T/raw.log")" = 0x0000 ] ||
    fail "the good instance after broken ones on one association was not stored"
nodes_alive $B
dicom_up $B || fail "B's DICOM edge stopped answering"
images_are() { [ "$(dfind "$1" S IMAGE SOPInstanceUID -k "StudyInstanceUID=$2" | wc -w)" = "$3" ]; }
wait_until 20 images_are $B "$GOOD2" 2
found=$(dfind $B S IMAGE SOPInstanceUID -k "StudyInstanceUID=$GOOD2")
for u in "$s0" "$s1"; do echo "$found" | grep -qx "$u" || fail "good instance $u not found at B"; done
[ "$(dcount $B S IMAGE SOPInstanceUID -k "SOPInstanceUID=$MRT_SOP")" = 0 ] ||
    fail "the truncated MR was stored"
blobs_intact $B || fail "a blob at B does not match its hash"
log "C-STORE: broken data sets refused with failure statuses; good ones beside them stored"

# ---- 3. kill -9 in the middle of C-STORE associations -----------------------------------
KS=$(gen_study "$T/kill" 1 50 KILL0001 "KILL^ROUNDS" 20230303 96) || fail "cannot generate a study"
: >"$T/acked"
acked_of() # LOG: the SOP UIDs storescu saw acknowledged with success
{
    awk '/Sending file: /{f = $NF; sub(/.*\//, "", f); sub(/\.dcm$/, "", f)}
         /Received Store Response \(Success\)/{if (f != "") print f; f = ""}' "$1"
}
t0=$(now_ms)
storescu -v -aet PACS_A -aec PACSMESH +sd -to 10 -ta 10 -td 10 127.0.0.1 "${NODE_DICOM_PORT[A]}" \
    "$T/kill" >"$T/kill-0.log" 2>&1 || fail "storescu of the kill study failed"
full_ms=$(($(now_ms) - t0))
acked_of "$T/kill-0.log" >>"$T/acked"
[ "$(sort -u "$T/acked" | wc -l)" = 50 ] || fail "round 0: $(sort -u "$T/acked" | wc -l) acknowledged, not 50"
# Round 0 stored all 50: the rounds below resend duplicates (a success) while the node
# dies. To test fresh instances too, each round also brings 5 new ones of the study.
log "kill rounds: a full association takes ${full_ms} ms"
RANDOM=$$
for round in 1 2 3 4 5 6 7 8 9 10; do
    mkdir -p "$T/kill-r$round"
    "$PYD" - "$T/kill" "$T/kill-r$round" "$round" <<'EOF' || fail "cannot make new instances"
import os, sys, pydicom
from pydicom.uid import generate_uid
src = sorted(os.listdir(sys.argv[1]))[0]
for k in range(5):
    ds = pydicom.dcmread(os.path.join(sys.argv[1], src))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = 100 * int(sys.argv[3]) + k
    ds.save_as(os.path.join(sys.argv[2], ds.SOPInstanceUID + ".dcm"))
EOF
    cp "$T"/kill-r$round/*.dcm "$T/kill/"
    storescu -v -aet PACS_A -aec PACSMESH +sd -to 10 -ta 10 -td 10 127.0.0.1 \
        "${NODE_DICOM_PORT[A]}" "$T/kill" >"$T/kill-$round.log" 2>&1 &
    scu=$!
    STARTED_PIDS+=("$scu")
    # The fault itself: kill -9 at a random moment of the association.
    sleep "$(awk -v r=$RANDOM -v ms="$full_ms" 'BEGIN {printf "%.3f", (r % (ms + 1)) / 1000}')"
    node_kill9 $A
    pid_wait_gone "$scu" 20000 || fail "storescu did not end after the node died"
    wait "$scu" 2>/dev/null
    acked_of "$T/kill-$round.log" >>"$T/acked"
    node_start $A
    wait_until 20 dicom_up $A
    want=$(sort -u "$T/acked" | wc -l)
    have_all() { [ "$(dfind $A S IMAGE SOPInstanceUID -k "StudyInstanceUID=$KS" | sort -u |
        comm -13 - <(sort -u "$T/acked") | wc -l)" = 0 ]; }
    wait_until 20 have_all
    log "round $round: $(acked_of "$T/kill-$round.log" | wc -l) acknowledged in this association, $want in all: all present after the restart"
done
nodes_alive $A
blobs_intact $A || fail "a blob at A does not match its hash after the kills"
dget $A "$T/kill-got" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$KS" >"$T/kill-get.log" 2>&1 ||
    { cat "$T/kill-get.log"; fail "C-GET of the kill study failed"; }
missing=$(sop_uids "$T/kill-got" | comm -13 - <(sort -u "$T/acked") | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged instances are not retrievable"
n=$(same_datasets "$T/kill-got" "$T/kill") || fail "C-GET after the kills: data differs from what was sent"
log "kill -9 x10: all $(sort -u "$T/acked" | wc -l) acknowledged instances retrievable and intact ($n retrieved)"

# ---- 4. a corrupt holder ------------------------------------------------------------------
FS=$(gen_study "$T/fetch" 1 3 FETCH0001 "FETCH^CORRUPT" 20240404 64) || fail "cannot generate a study"
dstore $A "$T/fetch" >/dev/null 2>&1 || fail "storescu into A failed"
holds() # I STUDY NODE_ID: node I's views list NODE_ID among the study's holders
{
    [ "$(pmjson "$1" studies -- "'$3' in next((s['holders'] for s in d if s['study_uid'] == '$2'), [])")" = true ]
}
wait_until 20 holds $C "$FS" "${NODE_ID[A]}"
wait_until 20 holds $D "$FS" "${NODE_ID[A]}"
pm $C fetch "$FS" >/dev/null 2>&1 || fail "fetch at C failed"
pm $D fetch "$FS" >/dev/null 2>&1 || fail "fetch at D failed"
wait_until 20 holds $B "$FS" "${NODE_ID[C]}"
wait_until 20 holds $B "$FS" "${NODE_ID[D]}"
# B spreads the instances over C and D, so it asks C for at least one: corrupt all of
# C's copies; D's stay good, so every instance has a good holder.
ahashes=$(study_blobs $A "$FS")
[ "$(echo "$ahashes" | wc -l)" = 3 ] || fail "A holds $(echo "$ahashes" | wc -l) blobs of the study, not 3"
corrupt() # I HASH: flips 4 bytes in the middle of node I's blob HASH, keeping its size
{
    local f="${NODE_DIR[$1]}/blobs/${2:0:2}/$2" size
    [ -f "$f" ] || fail "node $1 does not hold blob $2"
    size=$(stat -c %s "$f")
    chmod u+w "$f"
    printf '\xff\x00\xff\x00' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none ||
        fail "cannot corrupt $f"
    [ "$(stat -c %s "$f")" = "$size" ] || fail "corrupting changed the size of $f"
    [ "$(b2sum -l 256 "$f" | cut -d' ' -f1)" != "$2" ] || fail "$f is not corrupt"
}
H=($ahashes)
for h in "${H[@]}"; do corrupt $C "$h"; done
log "corrupted C's (${NODE_ID[C]:0:8}) copies of the study; D's (${NODE_ID[D]:0:8}) are good"
node_kill9 $A
wait_until 30 is_down $B "${NODE_ID[A]}"
pm $B fetch "$FS" --out "$T/fetched" >"$T/fetchB.log" 2>&1 ||
    { cat "$T/fetchB.log"; fail "fetch at B failed although a good holder is up"; }
grep -E "fetch: instance (${H[0]:0:16}|${H[1]:0:16}|${H[2]:0:16}) from peer ${NODE_ID[C]:0:8}: .*signed hash \(corrupt\)" \
    "${NODE_LOG[B]}" >"$T/mismatch" || fail "B's log does not show the hash mismatch"
log "B's log: $(head -n 1 "$T/mismatch")"
blobs_intact $B || fail "B cached a corrupt blob"
bhashes=$(for h in $ahashes; do [ -f "${NODE_DIR[B]}/blobs/${h:0:2}/$h" ] && echo "$h"; done)
[ "$bhashes" = "$ahashes" ] || fail "B does not hold exactly the signed blobs of the study"
n=$(same_datasets "$T/fetched" "$T/fetch") || fail "the fetched study differs from what A received"
[ "$n" = 3 ] || fail "fetch wrote $n instances, not 3"
nodes_alive $B $C $D
log "corrupt holder detected by hash; fetched from the good holder; nothing corrupt at B"
echo "PASS: $TEST_NAME"
