#!/bin/bash
# Hostile DICOM against a running node (real sockets, the node's own process), one node
# on 127.0.0.1 made with the CLI:
#
#  1. Nesting: C-STOREs of 10,000-deep nested sequences (undefined length, defined
#     length, implicit VR private tags, UN per CP-246) and of 200,000 elements (over the
#     configured max_elements = 100000), from a raw client, while a second client keeps
#     sending C-ECHOs and stores a study: each hostile instance gets a failure status
#     (0xC000) with a comment, the node logs the reason with the calling AE, the good
#     instance after them on the same association is stored, the node keeps running,
#     and the second client never waits more than a second. `import` of the same files:
#     each skipped with the reason, exit status 1.
#  2. Stalled clients (read_timeout = 3s): connections that send nothing, half a PDU
#     header, part of an A-ASSOCIATE-RQ, or half a P-DATA-TF PDU on an established
#     association: C-ECHOs from another client meanwhile take less than a second each,
#     and the node closes every stalled connection after about read_timeout.
#  3. Hostile messages on the wire: a C-FIND whose identifier nests 10,000 sequences
#     (dcmtk parses identifiers in memory), a P-DATA-TF PDU claiming 4 GB, an
#     A-ASSOCIATE-RQ claiming 10 MB: each association ended with the reason logged,
#     the node alive and answering.
#  4. 500 idle associations (idle_timeout = 2s): all closed by the node about 2 s after
#     they went idle; with max_associations = 540 and max_associations_per_host = 520,
#     more from 127.0.0.1 and then from 127.0.0.2 are rejected with A-ASSOCIATE-RJ
#     (transient, local limit exceeded), logged with the limit's name; a C-ECHO still
#     gets through while 500 are open; afterwards the node's thread count returns to
#     what it was and its RSS to within 16 MiB of it (/proc/PID/status).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

HOSTILE="$PYD $top_srcdir/test/hostile_dicom.py"
CT_CLASS=1.2.840.10008.5.1.4.1.1.2
A=1
mesh_create 1
dicom_loopback $A
node_set_conf $A dicom max_elements 100000
node_set_conf $A dicom read_timeout 3s
node_set_conf $A dicom idle_timeout 2s
node_set_conf $A dicom max_associations 540
node_set_conf $A dicom max_associations_per_host 520
node_start $A
wait_until 20 dicom_up $A
PORT_A=${NODE_DICOM_PORT[A]}

# echo_loop OUT: C-ECHO every 0.2 s until killed; one line per echo: "ok MS" or "fail MS".
echo_loop()
{
    $PYTHON - "$PORT_A" >"$1" 2>&1 <<'EOF' &
import socket, struct, sys, time
port = int(sys.argv[1])
def item(t, b): return struct.pack(">BBH", t, 0, len(b)) + b
def pdu(t, b): return struct.pack(">BBI", t, 0, len(b)) + b
def recv_pdu(s):
    h = b""
    while len(h) < 6:
        c = s.recv(6 - len(h))
        if not c: raise EOFError
        h += c
    n = struct.unpack(">I", h[2:6])[0]
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return h[0], b
def elem(g, e, v): return struct.pack("<HHI", g, e, len(v)) + v
rq = struct.pack(">HH", 1, 0) + b"PACSMESH".ljust(16) + b"ECHO_LOOP".ljust(16) + b"\0" * 32
rq += item(0x10, b"1.2.840.10008.3.1.1.1")
rq += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
rq += item(0x50, item(0x51, struct.pack(">I", 16384)))
cmd = elem(0, 0x0002, b"1.2.840.10008.1.1\0") + elem(0, 0x0100, struct.pack("<H", 0x30)) + \
    elem(0, 0x0110, struct.pack("<H", 1)) + elem(0, 0x0800, struct.pack("<H", 0x0101))
cmd = elem(0, 0, struct.pack("<I", len(cmd))) + cmd
while True:
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(pdu(1, rq))
        t, _ = recv_pdu(s)
        assert t == 2
        s.sendall(pdu(4, struct.pack(">IBB", len(cmd) + 2, 1, 3) + cmd))
        t, _ = recv_pdu(s)
        assert t == 4
        s.sendall(pdu(5, b"\0\0\0\0"))
        recv_pdu(s)
        s.close()
        print("ok %d" % ((time.monotonic() - t0) * 1000), flush=True)
    except Exception as e:
        print("fail %d %s" % ((time.monotonic() - t0) * 1000, e), flush=True)
    time.sleep(0.2)
EOF
    ECHO_PID=$!
    STARTED_PIDS+=("$ECHO_PID")
}

# ---- 1. nesting and element count over C-STORE -------------------------------------------
GOOD=$(gen_study "$T/good" 1 1 GOOD0001 "GOOD^HOSTILE" 20240101) || fail "cannot generate a study"
GOOD_FILE=$(ls "$T"/good/*.dcm)
GOOD_SOP=$(basename "$GOOD_FILE" .dcm)
STUDY2=$(gen_study "$T/other" 1 5 OTHER001 "OTHER^CLIENT" 20240102) || fail "cannot generate a study"
declare -A SOP
for kind in deep deep-defined deep-un; do
    SOP[$kind]=$($HOSTILE "$kind" "$T/$kind.dcm" 10000) || fail "cannot write $kind"
done
SOP[wide]=$($HOSTILE wide "$T/wide.dcm" 200000) || fail "cannot write wide"
SOP[deep-implicit]=$($HOSTILE deep-implicit "$T/deep-implicit.dcm" 10000) || fail "cannot write deep-implicit"
log "hostile files: $(ls -l "$T"/deep*.dcm "$T"/wide.dcm | awk '{printf "%s %s B; ", $NF, $5}' | sed "s|$T/||g")"

echo_loop "$T/echo.log"
sleep 0.5
raw_cstore "$PORT_A" "$CT_CLASS" "${SOP[deep]}:$T/deep.dcm" "${SOP[deep-defined]}:$T/deep-defined.dcm" \
    "${SOP[deep-un]}:$T/deep-un.dcm" "${SOP[wide]}:$T/wide.dcm" "$GOOD_SOP:$GOOD_FILE" \
    >"$T/raw.log" 2>&1 || { cat "$T/raw.log"; fail "raw C-STORE client failed"; }
RAW_TS=1.2.840.10008.1.2 raw_cstore "$PORT_A" "$CT_CLASS" \
    "${SOP[deep-implicit]}:$T/deep-implicit.dcm" >>"$T/raw.log" 2>&1 ||
    { cat "$T/raw.log"; fail "raw C-STORE client (implicit VR) failed"; }
# The other client stores a study in the middle of it all.
dstore $A "$T/other" >"$T/other.log" 2>&1 || { cat "$T/other.log"; fail "storescu of another client failed"; }
sleep 0.5
kill "$ECHO_PID"
sed 's/^/#   raw C-STORE: /' "$T/raw.log"
for kind in deep deep-defined deep-un wide deep-implicit; do
    st=$(awk -v u="${SOP[$kind]}" '$1 == u {print $2}' "$T/raw.log")
    [ "$st" = 0xc000 ] || fail "hostile $kind: status '$st', not 0xc000"
done
[ "$(awk -v u="$GOOD_SOP" '$1 == u {print $2}' "$T/raw.log")" = 0x0000 ] ||
    fail "the good instance after the hostile ones was not stored"
nodes_alive $A
for why in "refused: sequences nested deeper than 64 levels" "refused: more than 100000 elements"; do
    grep -q "C-STORE from RAW_SCU.*$why" "${NODE_LOG[A]}" || fail "A's log does not say '$why' with the calling AE"
done
log "A's log: $(grep -m1 "C-STORE from RAW_SCU.*nested" "${NODE_LOG[A]}" | cut -c1-160)"
echoes=$(grep -c '^ok' "$T/echo.log")
fails=$(grep -c '^fail' "$T/echo.log" || true)
slowest=$(awk '$1 == "ok" && $2 > m {m = $2} END {print m + 0}' "$T/echo.log")
[ "$fails" = 0 ] || { cat "$T/echo.log"; fail "$fails C-ECHOs of the other client failed during the attack"; }
[ "$echoes" -ge 3 ] || fail "only $echoes C-ECHOs during the attack"
[ "$slowest" -lt 1000 ] || fail "a C-ECHO of the other client took $slowest ms during the attack"
images_are() { [ "$(dfind "$1" S IMAGE SOPInstanceUID -k "StudyInstanceUID=$2" | wc -w)" = "$3" ]; }
wait_until 20 images_are $A "$STUDY2" 5
wait_until 20 images_are $A "$GOOD" 1
for kind in deep deep-defined deep-un wide deep-implicit; do
    [ "$(dcount $A S IMAGE SOPInstanceUID -k "SOPInstanceUID=${SOP[$kind]}")" = 0 ] ||
        fail "hostile $kind was stored"
done
leftovers=$(find "${NODE_DIR[A]}/blobs/spool" -type f -size +0) # (it keeps empty files made ahead)
[ -z "$leftovers" ] || fail "the spool holds leftovers: $leftovers"
log "C-STORE: 5 hostile data sets refused (0xc000), node alive, $echoes C-ECHOs of another client meanwhile (slowest $slowest ms), its 5 instances stored"

rc=0
pm $A import "$T/deep.dcm" "$T/deep-un.dcm" "$T/wide.dcm" >"$T/import.out" 2>"$T/import.err" || rc=$?
[ "$rc" = 1 ] || fail "import of hostile files only exited $rc, not 1"
grep -q "skipped $T/deep.dcm: refused: sequences nested deeper than 64 levels" "$T/import.err" ||
    { cat "$T/import.err"; fail "import did not skip the deep file with the reason"; }
grep -q "skipped $T/wide.dcm: refused: more than 100000 elements" "$T/import.err" ||
    { cat "$T/import.err"; fail "import did not skip the wide file with the reason"; }
log "import: hostile files skipped with the reason, exit 1"

# raw_py ARGS... <<'PY': python3 -S with test/dicom_raw.py importable as dr; argv[1:]
# are ARGS.
raw_py() { $PYTHON - "$top_srcdir/test" "$@"; }

# ---- 2. stalled clients ---------------------------------------------------------------------
raw_py "$PORT_A" >"$T/stall.log" 2>&1 <<'PY' || { cat "$T/stall.log"; fail "the stall client failed"; }
import socket, sys, time
sys.path.insert(0, sys.argv[1])
import dicom_raw as dr
port = int(sys.argv[2])
stalled = []
rq = dr.associate_rq()
for what, part in (("nothing", b""), ("half-header", rq[:3]), ("part-of-rq", rq[:40])):
    s = dr.connect(port)
    if part:
        s.sendall(part)
    stalled.append((what, s, time.monotonic()))
time.sleep(0.3)
print("echo_worst_ms", int(max(dr.echo(port) for _ in range(5))), flush=True)
s = dr.open_association(port)
s.sendall(dr.pdu(4, b"\0" * 100)[:50])
stalled.append(("half-p-data", s, time.monotonic()))
time.sleep(0.3)
print("echo_worst2_ms", int(max(dr.echo(port) for _ in range(3))), flush=True)
for what, s, t0 in stalled:
    s.settimeout(20)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    print("closed_after_ms %d %s" % ((time.monotonic() - t0) * 1000, what), flush=True)
PY
sed 's/^/#   /' "$T/stall.log"
for k in echo_worst_ms echo_worst2_ms; do
    v=$(awk -v k=$k '$1 == k {print $2}' "$T/stall.log")
    [ -n "$v" ] && [ "$v" -lt 1000 ] || fail "$k: a C-ECHO took '$v' ms while other connections stalled"
done
[ "$(grep -c '^closed_after_ms' "$T/stall.log")" = 4 ] || fail "not every stalled connection was closed"
awk '$1 == "closed_after_ms" && ($2 < 2500 || $2 > 5500) {bad = 1} END {exit bad}' "$T/stall.log" ||
    fail "a stalled connection was not closed after about read_timeout (3 s)"
grep -q "association with RAW_SCU (127.0.0.1): no complete PDU within 3 s: closed" "${NODE_LOG[A]}" ||
    fail "A's log does not say the stalled P-DATA-TF PDU was closed"
nodes_alive $A
log "stalled clients: C-ECHOs meanwhile under 1 s; each stalled connection closed after read_timeout"

# ---- 3. hostile messages on the wire ------------------------------------------------------------
$HOSTILE deep "$T/deep-id.raw" 10000 >/dev/null || fail "cannot write the hostile identifier"
raw_py "$PORT_A" "$T/deep-id.raw" >"$T/wire.log" 2>&1 <<'PY' || { cat "$T/wire.log"; fail "the wire client failed"; }
import socket, struct, sys
sys.path.insert(0, sys.argv[1])
import dicom_raw as dr
port = int(sys.argv[2])
def outcome(s):
    s.settimeout(10)
    try:
        t, b = dr.recv_pdu(s)
        return "abort" if t == 7 else "pdu-%d" % t
    except (EOFError, ConnectionResetError):
        return "closed"
    except socket.timeout:
        return "timeout"
s = dr.open_association(port, contexts=((dr.FIND_STUDY, dr.EVLE),))
dr.send_command(s, dr.command(0x0020, dr.FIND_STUDY, dataset=True, extra=dr.elem(0, 0x0700, b"\0\0")))
dr.send_data(s, open(sys.argv[3], "rb").read())
print("deep-identifier", outcome(s), flush=True)
s = dr.open_association(port)
s.sendall(struct.pack(">BBI", 4, 0, 0xFFFFFFF0) + b"\0" * 64)
print("huge-pdu", outcome(s), flush=True)
s = dr.connect(port)
s.sendall(struct.pack(">BBI", 1, 0, 10 * 1000 * 1000) + b"\0" * 64)
print("huge-rq", outcome(s), flush=True)
print("echo_ms", int(dr.echo(port)), flush=True)
PY
sed 's/^/#   /' "$T/wire.log"
for k in deep-identifier huge-pdu huge-rq; do
    case "$(awk -v k=$k '$1 == k {print $2}' "$T/wire.log")" in
    abort | closed) ;;
    *) fail "$k: the association was not ended" ;;
    esac
done
grep -q "^echo_ms" "$T/wire.log" || fail "no C-ECHO after the hostile messages"
for why in "C-FIND-RQ identifier refused: sequences nested deeper than 64 levels: aborted" \
    "P-DATA-TF PDU of 4294967280 bytes (at most" "A-ASSOCIATE-RQ PDU of 10000000 bytes (at most"; do
    grep -qF "$why" "${NODE_LOG[A]}" || fail "A's log does not say '$why'"
done
nodes_alive $A
log "hostile identifier, 4 GB PDU, 10 MB A-ASSOCIATE-RQ: each association ended, reason logged, node alive"

# ---- 4. 500 idle associations and the association limits -----------------------------------------
raw_py "$PORT_A" "${NODE_PID[A]}" >"$T/idle.log" 2>&1 <<'PY' || { cat "$T/idle.log"; fail "the idle client failed"; }
import select, sys, time
sys.path.insert(0, sys.argv[1])
import dicom_raw as dr
port, pid = int(sys.argv[2]), int(sys.argv[3])
time.sleep(2.5)  # what earlier sections left open has been closed
before = dr.proc_status(pid)
print("before", before["Threads"], before["VmRSS"], flush=True)
opened = []
def open_many(n, src):
    ok = rejected = 0
    reasons = set()
    for _ in range(n):
        try:
            opened.append((dr.open_association(port, calling=b"IDLE_SCU", src=src), time.monotonic()))
            ok += 1
        except dr.Rejected as r:
            rejected += 1
            reasons.add("%d:%s" % (r.type, r.body.hex()))
    return ok, rejected, ",".join(sorted(reasons))
t0 = time.monotonic()
ok, rej, _ = open_many(500, "127.0.0.1")
print("open500", ok, rej, "in", int((time.monotonic() - t0) * 1000), "ms", flush=True)
during = dr.proc_status(pid)
print("during", during["Threads"], during["VmRSS"], flush=True)
print("echo_ms", int(dr.echo(port)), flush=True)
print("more-same-host", *open_many(30, "127.0.0.1"), flush=True)
print("other-host", *open_many(30, "127.0.0.2"), flush=True)
# The node closes each after idle_timeout: time every close from its open.
closes = []
pending = {s.fileno(): (s, t) for s, t in opened}
deadline = time.monotonic() + 20
while pending and time.monotonic() < deadline:
    r, _, _ = select.select([s for s, _ in pending.values()], [], [], 1)
    for s in r:
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        if not data or data[0] == 7:  # closed, or an A-ABORT
            _, t = pending.pop(s.fileno())
            closes.append(time.monotonic() - t)
            s.close()
print("closed", len(closes), "of", len(opened), "min_ms", int(min(closes) * 1000),
      "max_ms", int(max(closes) * 1000), flush=True)
time.sleep(1.5)
after = dr.proc_status(pid)
print("after", after["Threads"], after["VmRSS"], flush=True)
PY
sed 's/^/#   /' "$T/idle.log"
read -r _ th0 rss0 < <(grep '^before' "$T/idle.log")
read -r _ th1 rss1 < <(grep '^during' "$T/idle.log")
read -r _ th2 rss2 < <(grep '^after' "$T/idle.log")
grep -q '^open500 500 0 ' "$T/idle.log" || fail "500 associations were not all accepted"
[ "$th1" -ge $((th0 + 500)) ] || fail "500 associations, but $th1 threads (from $th0)"
grep -q '^more-same-host 20 10 3:00020302$' "$T/idle.log" ||
    fail "the per-host limit did not accept 20 and reject 10 with A-ASSOCIATE-RJ (2, 3, 2)"
grep -q '^other-host 20 10 3:00020302$' "$T/idle.log" ||
    fail "the total limit did not accept 20 from another host and reject 10"
grep -q '^echo_ms' "$T/idle.log" || fail "no C-ECHO while 500 associations were open"
grep -q "rejected: 520 associations from that address at once (max_associations_per_host)" "${NODE_LOG[A]}" ||
    fail "A's log does not name max_associations_per_host"
grep -q "rejected: 540 associations at once (max_associations)" "${NODE_LOG[A]}" ||
    fail "A's log does not name max_associations"
read -r _ nclosed _ nopen _ minms _ maxms < <(grep '^closed' "$T/idle.log")
[ "$nclosed" = "$nopen" ] || fail "only $nclosed of $nopen idle associations were closed by the node"
[ "$minms" -ge 1800 ] && [ "$maxms" -le 8000 ] ||
    fail "idle associations closed after $minms..$maxms ms, not about idle_timeout (2 s)"
[ "$th2" -le $((th0 + 2)) ] || fail "threads: $th0 before, $th2 after the idle associations closed"
# Under AddressSanitizer freed memory sits in its quarantine instead of going back:
# the threads are checked there, the RSS only in a plain build.
# An ASan build carries the runtime's entry point; read from the binary itself (a pipe
# from ldd into grep -q, under pipefail, once read an ASan build as a plain one).
if grep -qa __asan_init "$PACSMESH"; then
    log "   (an AddressSanitizer build: RSS not compared, freed memory stays quarantined)"
else
    [ "$rss2" -le $((rss0 + 16384)) ] || fail "RSS: $rss0 kB before, $rss2 kB after"
fi
grep -q "association with IDLE_SCU (127.0.0.1) idle for 2 s: closed" "${NODE_LOG[A]}" ||
    fail "A's log does not say idle associations were closed"
nodes_alive $A
log "idle: $nopen associations closed after ${minms}-${maxms} ms; threads $th0 -> $th1 -> $th2, RSS $rss0 -> $rss1 -> $rss2 kB"

# ---- 5. query oddities (findscu) --------------------------------------------------------------------
[ "$(dcount $A S STUDY StudyInstanceUID)" -ge 2 ] || fail "fewer than 2 studies at A"
n=$(dcount $A S STUDY StudyInstanceUID -k "StudyInstanceUID=$GOOD\\") || fail "findscu failed"
[ "$n" = 1 ] || fail "a UID list with an empty element matched $n studies, not 1"
[ "$(dfind $A S STUDY StudyInstanceUID -k "StudyInstanceUID=$GOOD\\")" = "$GOOD" ] ||
    fail "a UID list with an empty element matched another study"
findscu -d -aet VIEWER_B -aec PACSMESH -S -k QueryRetrieveLevel=STUDY -k StudyDate=abc-xyz \
    -k StudyInstanceUID 127.0.0.1 "$PORT_A" >"$T/find-bad.log" 2>&1
grep -q "DIMSE Status *: 0xa900: Error: Data Set does not match SOP Class" "$T/find-bad.log" ||
    { cat "$T/find-bad.log"; fail "a malformed date range was not refused with A900"; }
grep -q "\[StudyDate: 'abc-xyz' is not a date or date range\].*ErrorComment" "$T/find-bad.log" ||
    { cat "$T/find-bad.log"; fail "the refusal does not say which value is malformed"; }
grep -q "Received Find Response\b.*Pending\|Status *: 0xff00" "$T/find-bad.log" && fail "a malformed date range matched studies"
grep -q "C-FIND from VIEWER_B (127.0.0.1) refused: StudyDate: 'abc-xyz' is not a date or date range" "${NODE_LOG[A]}" ||
    fail "A's log does not say the C-FIND was refused"
LONG_DESC=$(printf 'LONG DESCRIPTION %.0s' $(seq 1 6))  # 102 characters, LO allows 64
LONG=$(gen_study "$T/long" 1 1 LONG0001 "LONG^VALUES" 20240105) || fail "cannot generate a study"
"$PYD" - "$T/long" "$LONG_DESC" <<'EOF' || fail "cannot set the long description"
import glob, sys, pydicom
for f in glob.glob(sys.argv[1] + "/*.dcm"):
    ds = pydicom.dcmread(f)
    ds.StudyDescription = sys.argv[2]
    ds.save_as(f)
EOF
dstore $A "$T/long" >/dev/null 2>&1 || fail "storescu of the long-valued study failed"
images_are() { [ "$(dfind "$1" S IMAGE SOPInstanceUID -k "StudyInstanceUID=$2" | wc -w)" = "$3" ]; }
wait_until 20 images_are $A "$LONG" 1
got=$(dfind $A S STUDY StudyDescription -k "StudyInstanceUID=$LONG")
[ "$got" = "$(echo "$LONG_DESC" | sed 's/ *$//')" ] || fail "StudyDescription came back as '$got' (${#got} characters), not whole"
log "query oddities: empty UID list element matches nothing, 'abc-xyz' refused (A900), a ${#got}-character LO kept whole"

echo "PASS: $TEST_NAME"
