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
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

HOSTILE="$PYD $top_srcdir/test/hostile_dicom.py"
CT_CLASS=1.2.840.10008.5.1.4.1.1.2
A=1
mesh_create 1
dicom_loopback $A
node_set_conf $A dicom max_elements 100000
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
[ -z "$(ls -A "${NODE_DIR[A]}/blobs/spool")" ] || fail "the spool holds leftovers: $(ls "${NODE_DIR[A]}/blobs/spool")"
log "C-STORE: 5 hostile data sets refused (0xc000), node alive, $echoes C-ECHOs of another client meanwhile (slowest $slowest ms), its 5 instances stored"

rc=0
pm $A import "$T/deep.dcm" "$T/deep-un.dcm" "$T/wide.dcm" >"$T/import.out" 2>"$T/import.err" || rc=$?
[ "$rc" = 1 ] || fail "import of hostile files only exited $rc, not 1"
grep -q "skipped $T/deep.dcm: refused: sequences nested deeper than 64 levels" "$T/import.err" ||
    { cat "$T/import.err"; fail "import did not skip the deep file with the reason"; }
grep -q "skipped $T/wide.dcm: refused: more than 100000 elements" "$T/import.err" ||
    { cat "$T/import.err"; fail "import did not skip the wide file with the reason"; }
log "import: hostile files skipped with the reason, exit 1"

echo "PASS: $TEST_NAME"
