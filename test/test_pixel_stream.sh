#!/bin/bash
# The pixel path streams: four real nodes on 127.0.0.1; A (1) holds a synthetic CT of
# 60 slices (512x512, 16-bit: ~31 MB, generated here, no patient data).
#
#  1. C-MOVE through B to a storage SCP: the first instance reaches the SCP while B is
#     still fetching the study (the SCP's reception hook stops A at once with SIGSTOP,
#     then asks B whether the study is cached yet: it must not be), every instance
#     arrives, in instance order, with A's pixel data.
#  2. Two of A's blob files are corrupted on disk (a byte in their pixel data). C-GET
#     of the study through C (which holds nothing of it; A and B do): every instance
#     arrives intact and in order; C's log names a corrupt copy, which came from A and
#     was fetched again from B.
#  3. WADO-RS of the study at D (cold): the multipart answer carries every instance,
#     in order, intact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init
command -v curl >/dev/null || skip "curl is not installed"

A=1 B=2 C=3 D=4
N=60
mesh_create 4
dicom_loopback $A $B $C $D
for i in $A $B $C $D; do
    # Listed explicitly: an empty list will refuse C-FIND/C-GET/C-MOVE.
    node_set_conf "$i" dicom allowed_aes "PACS_A, VIEWER_B, ECHO"
done
alloc_port
DEST_PORT=$PORT
node_set_conf $B dicom.destinations DEST_B "127.0.0.1:$DEST_PORT"
mesh_up 4
for i in $A $B $C $D; do wait_until 20 dicom_up "$i"; done

STUDY=$(gen_study "$T/in" 1 $N STREAM01 "SYNTHETIC^STREAM" 20240301 512) ||
    fail "cannot generate the study"
dstore $A "$T/in" >"$T/store.log" 2>&1 || fail "C-STORE into A failed: $(tail -5 "$T/store.log")"
instances_are() { [ "$(study_field "$1" "$STUDY" instances)" = "$N" ]; }
for i in $B $C $D; do wait_until 30 instances_are "$i"; done
cached_at() { [ "$(study_field "$1" "$STUDY" cached)" = true ]; }

# check_received DIR WHAT: DIR holds all N instances of the study with the pixel data A
# received, and their files were written in instance order (modification times).
check_received()
{
    "$PYD" - "$1" "$T/in" "$N" <<'EOF' || fail "$2: what arrived is not the study, whole and in order"
import glob, os, sys, pydicom
got, orig, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = {}
for f in glob.glob(orig + "/*.dcm"):
    ds = pydicom.dcmread(f)
    want[ds.SOPInstanceUID] = (int(ds.InstanceNumber), ds.PixelData)
files = [f for f in glob.glob(got + "/*") if os.path.isfile(f) and not f.endswith(".log")]
seen = []
for f in sorted(files, key=lambda f: os.stat(f).st_mtime_ns):
    ds = pydicom.dcmread(f)
    number, pixels = want.get(ds.SOPInstanceUID, (None, None))
    if pixels is None or ds.PixelData != pixels:
        sys.exit("%s: not one of the study's instances, or its pixel data differ" % f)
    seen.append(number)
if len(seen) != n or len(set(seen)) != n:
    sys.exit("%d instances arrived (%d distinct), not %d" % (len(seen), len(set(seen)), n))
if seen != sorted(seen):
    sys.exit("instances arrived out of order: %s" % seen)
EOF
}

# ---- 1. C-MOVE through B streams --------------------------------------------------------
mkdir -p "$T/moved"
cat >"$T/on_first.sh" <<EOF
#!/bin/bash
# Runs for every instance the storage SCP receives; acts on the first only.
mkdir "$T/first.lock" 2>/dev/null || exit 0
kill -STOP ${NODE_PID[A]}
"$PACSMESH" studies --dir "${NODE_DIR[B]}" --json >"$T/first-studies.json" 2>&1
kill -CONT ${NODE_PID[A]}
touch "$T/first.done"
EOF
chmod +x "$T/on_first.sh"
storescp -aet DEST_B -od "$T/moved" -xcr "$T/on_first.sh" "$DEST_PORT" >"$T/storescp.log" 2>&1 &
SCP_PID=$!
STARTED_PIDS+=("$SCP_PID")
scp_up() { echoscu -to 2 -aet ECHO -aec DEST_B 127.0.0.1 "$DEST_PORT" >/dev/null 2>&1; }
wait_until 20 scp_up
# A serves at a fifth of its speed until the first instance is out (stopped 80 ms of
# every 100): on a loaded machine the first sub-operation's association to the SCP and
# its hook may otherwise take longer than the whole fetch of a study this size.
(
    for _ in $(seq 600); do
        [ -e "$T/first.lock" ] && break
        kill -STOP "${NODE_PID[A]}" 2>/dev/null
        sleep 0.08
        kill -CONT "${NODE_PID[A]}" 2>/dev/null
        sleep 0.02
    done
) &
THROTTLE_PID=$!
STARTED_PIDS+=("$THROTTLE_PID")
dmove $B DEST_B -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" >"$T/move.log" 2>&1 ||
    fail "C-MOVE through B failed: $(tail -5 "$T/move.log")"
first_done() { [ -e "$T/first.done" ]; }
wait_until 30 first_done
wait "$THROTTLE_PID" 2>/dev/null
pid_alive "${NODE_PID[A]}" || fail "A is gone"
kill -CONT "${NODE_PID[A]}" 2>/dev/null
"$PYD" - "$T/first-studies.json" "$STUDY" <<'EOF' || fail "the first instance did not reach the viewer before B had the whole study"
import json, sys
studies = json.load(open(sys.argv[1]))
s = next(s for s in studies if s["study_uid"] == sys.argv[2])
if s["cached"]:
    sys.exit("B had cached the whole study before the first instance went out")
EOF
all_moved() { [ "$(find "$T/moved" -type f | wc -l)" -ge "$N" ]; }
wait_until 60 all_moved
kill "$SCP_PID" 2>/dev/null
check_received "$T/moved" "C-MOVE through B"
wait_until 30 cached_at $B
log "C-MOVE through B: the first instance went out while B was still fetching; all $N in order"

# ---- 2. a corrupt copy at A is fetched again from B ---------------------------------------
# Instances 5 and 6 are corrupted at A: the fetch spreads consecutive instances over the
# holders that are up (A and B), so one of them, at least, is asked of A.
"$PYD" - "$T/in" "${NODE_DIR[A]}/blobs" <<'EOF2' || fail "cannot corrupt A's blobs"
import glob, os, sys, pydicom
victims = {pydicom.dcmread(f).SOPInstanceUID.encode()
           for f in glob.glob(sys.argv[1] + "/*.dcm")
           if int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber) in (5, 6)}
done = 0
for f in glob.glob(sys.argv[2] + "/??/*"):
    data = open(f, "rb").read()
    if any(uid in data for uid in victims):
        size = os.path.getsize(f)
        with open(f, "r+b") as out:
            out.seek(size - 1000)
            out.write(bytes([data[size - 1000] ^ 0xFF]))
        done += 1
if done != 2:
    sys.exit("found %d of A's blobs of instances 5 and 6" % done)
EOF2
dget $C "$T/got" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" >"$T/get.log" 2>&1 ||
    fail "C-GET through C failed: $(tail -5 "$T/get.log")"
check_received "$T/got" "C-GET through C with a corrupt copy at A"
grep -q "corrupt" "${NODE_LOG[C]}" || fail "C's log does not name the corrupt copy"
log "C-GET through C: A's corrupt copy was refused and fetched from another holder; all intact"

# ---- 3. WADO-RS streams too ----------------------------------------------------------------
printf 'rita-password\n' | pm $D user add rita --role reporter --reporter dr.rita >"$T/user.log" 2>&1 ||
    fail "cannot add a web user at D: $(cat "$T/user.log")"
curl -sS --max-time 120 -u rita:rita-password -o "$T/wado.body" -D "$T/wado.h" \
    -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' \
    "http://127.0.0.1:${NODE_HTTP_PORT[D]}/dicom-web/studies/$STUDY" || fail "WADO-RS at D failed"
grep -q "^HTTP/1.1 200" "$T/wado.h" || fail "WADO-RS at D answered $(head -1 "$T/wado.h")"
mkdir -p "$T/wado"
"$PYD" - "$T/wado.h" "$T/wado.body" "$T/wado" <<'EOF' || fail "cannot split the WADO-RS answer"
import re, sys, os, time
head = open(sys.argv[1]).read()
boundary = re.search(r"boundary=([^;\s]+)", head).group(1).strip('"').encode()
body = open(sys.argv[2], "rb").read()
parts = body.split(b"--" + boundary)[1:-1]
for k, p in enumerate(parts):
    data = p.split(b"\r\n\r\n", 1)[1]
    if data.endswith(b"\r\n"):
        data = data[:-2]
    path = os.path.join(sys.argv[3], "part%04d.dcm" % k)
    open(path, "wb").write(data)
    os.utime(path, ns=(k * 1000000, k * 1000000))  # the answer's order, for check_received
EOF
check_received "$T/wado" "WADO-RS at D"
log "WADO-RS at D: all $N instances, in order, intact"
