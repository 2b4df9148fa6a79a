# test/dicom_lib.sh: DICOM helpers for the mesh integration tests (sourced after
# test/lib.sh, not run). Real dcmtk clients against real nodes, on 127.0.0.1 only.
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/dicom_lib.sh"
#   dicom_init                  # skips the test when dcmtk or pydicom is missing
#   mesh_create 3; dicom_loopback 1 2 3; node_start_all
#   gen_study "$T/s1" 3 4 PID1 "SYN^ONE" 20200315     # prints the study UID
#   dstore 1 "$T/s1"            # storescu into node 1
#   dfind 2 S STUDY StudyInstanceUID -k PatientID=PID1   # values, one per line
#   dget 2 "$T/got" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=$uid
#   same_datasets "$T/got" "$(node_blob_dir 1)"          # what A received
#
# pydicom needs the system interpreter with its site packages: $PYD, not lib.sh's
# $PYTHON (which starts without them, for speed).

PYD=${PYD:-/usr/bin/python3}
TF=/usr/lib/python3/dist-packages/pydicom/data/test_files
export TCP_NODELAY=1 # dcmtk clients: no Nagle delay on small DIMSE messages

dicom_init()
{
    local c
    for c in storescu findscu getscu movescu storescp echoscu dcmdump; do
        command -v "$c" >/dev/null || skip "dcmtk's $c is not installed"
    done
    "$PYD" -c 'import pydicom' 2>/dev/null || skip "pydicom is not installed for $PYD"
    [ -d "$TF" ] || skip "pydicom's test files are not in $TF"
}

# dicom_loopback I...: the nodes' DICOM services listen on 127.0.0.1 only.
dicom_loopback()
{
    local i
    for i in "$@"; do node_set_conf "$i" dicom bind 127.0.0.1; done
}

# dicom_up I: node I's DICOM edge answers C-ECHO (for wait_until).
dicom_up() { echoscu -to 2 -aet ECHO -aec PACSMESH 127.0.0.1 "${NODE_DICOM_PORT[$1]}" >/dev/null 2>&1; }

# dcm_attr FILE KEYWORD: the attribute's value (first value, no brackets).
dcm_attr() { dcmdump -q -Un +P "$2" "$1" 2>/dev/null | sed -n 's/^[^[]*\[\([^]]*\)\].*/\1/p' | head -n 1; }

# gen_study DIR NSERIES NPER [PATIENT_ID] [PATIENT_NAME] [STUDY_DATE] [ROWS] [MODALITY]
#   [ACCESSION]: writes a synthetic study (CT or MR image storage, Explicit VR Little
# Endian, random pixels; never patient data) to DIR as <SOPInstanceUID>.dcm and prints
# its Study Instance UID. ROWS x ROWS 16-bit pixels (default 16).
gen_study()
{
    mkdir -p "$1" || return 1
    "$PYD" - "$@" <<'EOF'
import os, sys, random
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid, ExplicitVRLittleEndian
out, nser, nper = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pid = sys.argv[4] if len(sys.argv) > 4 else "SYN0001"
name = sys.argv[5] if len(sys.argv) > 5 else "SYNTHETIC^PATIENT"
date = sys.argv[6] if len(sys.argv) > 6 else "20200315"
rows = int(sys.argv[7]) if len(sys.argv) > 7 else 16
mod = sys.argv[8] if len(sys.argv) > 8 else "CT"
acc = sys.argv[9] if len(sys.argv) > 9 else "ACC" + pid[-6:]
cls = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}[mod]
study = generate_uid()
pixels = os.urandom(rows * rows * 2)
for s in range(nser):
    series = generate_uid()
    for i in range(nper):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = cls
        ds.SOPInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime, ds.SeriesDate = date, "101500", date
        ds.AccessionNumber, ds.Modality = acc, mod
        ds.ReferringPhysicianName = "REFERRER^SYNTHETIC"
        ds.StudyDescription = "SYNTHETIC STUDY"
        ds.SeriesDescription = "SERIES %d" % (s + 1)
        ds.PatientName, ds.PatientID = name, pid
        ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
        ds.BodyPartExamined = "CHEST"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", s + 1, i + 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = rows
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        # Unique pixels per instance (first bytes), the rest shared: cheap and distinct.
        ds.PixelData = ds.SOPInstanceUID.encode()[:32].ljust(32, b"\0") + pixels[32:]
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = cls
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(os.path.join(out, ds.SOPInstanceUID + ".dcm"), write_like_original=False)
print(study)
EOF
}

# dstore I FILE|DIR... : storescu into node I (directories scanned); status of storescu.
dstore()
{
    local i=$1
    shift
    storescu -aet PACS_A -aec PACSMESH +sd +r -nh 127.0.0.1 "${NODE_DICOM_PORT[i]}" "$@"
}

# find_dir I MODEL LEVEL KEY [findscu args...]: runs C-FIND at node I (MODEL S: Study
# Root, P: Patient Root) at LEVEL asking for KEY, and prints a new directory holding
# one rsp*.dcm per response. Fails (with findscu's output) if findscu fails.
find_dir()
{
    local i=$1 model=$2 level=$3 key=$4 dir
    shift 4
    dir=$(mktemp -d "$T/find.XXXXXX") || return 1
    findscu -aet VIEWER_B -aec PACSMESH "-$model" -X -od "$dir" \
        -k QueryRetrieveLevel="$level" -k "$key" "$@" 127.0.0.1 "${NODE_DICOM_PORT[i]}" \
        >"$dir/findscu.log" 2>&1 || { cat "$dir/findscu.log" >&2; return 1; }
    echo "$dir"
}

# dfind I MODEL LEVEL KEY [findscu args...]: the value of KEY in every response, one
# per line, sorted (an empty value is an empty line).
dfind()
{
    local dir
    dir=$(find_dir "$@") || return 1
    "$PYD" - "$dir" "$4" <<'EOF' | sort
import glob, sys, pydicom
for f in sorted(glob.glob(sys.argv[1] + "/rsp*.dcm")):
    v = pydicom.dcmread(f).get(sys.argv[2], "")
    if isinstance(v, (list, pydicom.multival.MultiValue)):
        v = "\\".join(str(x) for x in v)
    print("" if v is None else str(v).strip())
EOF
    rm -rf "$dir"
}

# dcount I MODEL LEVEL KEY [findscu args...]: how many responses C-FIND gets.
dcount()
{
    local dir n
    dir=$(find_dir "$@") || return 1
    n=$(find "$dir" -name 'rsp*.dcm' | wc -l)
    rm -rf "$dir"
    echo "$n"
}

# dget I OUTDIR [getscu args...]: C-GET (Study Root) from node I into OUTDIR.
dget()
{
    local i=$1 out=$2
    shift 2
    mkdir -p "$out"
    getscu -aet VIEWER_B -aec PACSMESH -S -od "$out" "$@" 127.0.0.1 "${NODE_DICOM_PORT[i]}"
}

# dmove I DEST_AE [movescu args...]: C-MOVE (Study Root) at node I to DEST_AE.
dmove()
{
    local i=$1 dest=$2
    shift 2
    movescu -aet VIEWER_B -aec PACSMESH -S -aem "$dest" "$@" 127.0.0.1 "${NODE_DICOM_PORT[i]}"
}

# scp_start PORT DIR AE: a storage SCP on 127.0.0.1:PORT writing into DIR, as a C-MOVE
# destination: a small Python listener bound to loopback that runs `storescp --inetd`
# for each connection (storescp itself cannot bind one address). Sets SCP_PID.
scp_start()
{
    mkdir -p "$2"
    $PYTHON - "$1" "$2" "$3" >>"$T/scp-$1.log" 2>&1 <<'EOF' &
import socket, subprocess, sys
port, out, ae = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
while True:
    c, _ = s.accept()
    subprocess.Popen(["storescp", "--inetd", "-aet", ae, "+xa", "-od", out],
                     stdin=c.fileno(), stdout=c.fileno(), close_fds=True)
    c.close()
EOF
    SCP_PID=$!
    STARTED_PIDS+=("$SCP_PID")
    wait_until 10 tcp_reachable 0 127.0.0.1 "$1"
}

# node_blob_dir I: node I's blob directory; node_blobs I: its blob files, one per line
# (blobs/xx/<64 hex>, the name being the BLAKE2b-256 of the content).
node_blob_dir() { echo "${NODE_DIR[$1]}/blobs"; }
node_blobs()
{
    find "${NODE_DIR[$1]}/blobs" -mindepth 2 -maxdepth 2 -type f \
        -regextype posix-extended -regex '.*/[0-9a-f]{2}/[0-9a-f]{64}' 2>/dev/null
}

# blobs_intact I: every blob file of node I hashes (b2sum -l 256) to its own name.
blobs_intact()
{
    local f h bad=0
    while IFS= read -r f; do
        h=$(b2sum -l 256 "$f" | cut -d' ' -f1)
        if [ "$h" != "$(basename "$f")" ]; then
            echo "corrupt blob at node $1: $f hashes to $h" >&2
            bad=1
        fi
    done < <(node_blobs "$1")
    return "$bad"
}

# same_datasets GOT REF: every DICOM file under GOT has a file under REF with the same
# SOP Instance UID and an equal data set (pydicom's equality: every element, pixel data
# included), ignoring the Part-10 meta header and DataSetTrailingPadding (FFFC,FFFC),
# which a sender's toolkit may drop (dcmtk does). Prints how many were compared.
# REF may hold more files (e.g. a node's whole blob store).
same_datasets()
{
    "$PYD" - "$1" "$2" <<'EOF'
import os, sys
import pydicom
def load(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                ds = pydicom.dcmread(p)
                uid = ds.SOPInstanceUID
            except Exception:
                continue
            out.setdefault(uid, []).append(ds)
    return out
got, ref = load(sys.argv[1]), load(sys.argv[2])
if not got:
    sys.exit("no DICOM file under " + sys.argv[1])
for uid, dss in got.items():
    for ds in dss:
        if uid not in ref:
            sys.exit("instance %s: not in %s" % (uid, sys.argv[2]))
        if (0xFFFC, 0xFFFC) in ds:
            del ds[0xFFFC, 0xFFFC]
        ok = False
        for r in ref[uid]:
            if (0xFFFC, 0xFFFC) in r:
                del r[0xFFFC, 0xFFFC]
            ok = ok or ds == r
        if not ok:
            sys.exit("instance %s: data set differs from the reference" % uid)
print(len(got))
EOF
}

# sop_uids DIR: the SOP Instance UIDs of the DICOM files under DIR, sorted.
sop_uids()
{
    "$PYD" - "$1" <<'EOF'
import os, sys, pydicom
u = set()
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        try:
            u.add(pydicom.dcmread(os.path.join(d, f), stop_before_pixels=True).SOPInstanceUID)
        except Exception:
            pass
print("\n".join(sorted(u)))
EOF
}

# study_blobs I STUDY_UID: the hashes (file names) of node I's blobs holding instances
# of the study, sorted.
study_blobs()
{
    node_blobs "$1" | "$PYD" -c 'import os, sys, pydicom
for p in sys.stdin.read().split():
    try:
        if pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID == sys.argv[1]:
            print(os.path.basename(p))
    except Exception:
        pass' "$2" | sort
}

# study_field I STUDY_UID FIELD: a field of `studies --json` at node I for the study.
study_field()
{
    pmjson "$1" studies -- "next((s['$3'] for s in d if s['study_uid'] == '$2'), 'absent')"
}

# raw_cstore PORT CLASS_UID [SOP_UID:FILE]...: one association to 127.0.0.1:PORT that
# sends each FILE's bytes as the data set of a C-STORE (Explicit VR Little Endian, or
# the transfer syntax UID in $RAW_TS; a
# Part-10 file's preamble and meta header are stripped, any other bytes go as they are:
# random bytes reach the node's parser untouched, which storescu never does). Prints
# one line per C-STORE: "SOP_UID 0xSTATUS", or "SOP_UID aborted" if the node aborted.
raw_cstore()
{
    "$PYD" - "$@" <<'EOF'
import os, socket, struct, sys
port, cls = int(sys.argv[1]), sys.argv[2].encode()
EVLE = os.environ.get("RAW_TS", "1.2.840.10008.1.2.1").encode()
def uid(u):
    return u + b"\0" if len(u) % 2 else u
def item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body
def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body
def elem(g, e, v):
    return struct.pack("<HHI", g, e, len(v)) + v
def recv_pdu(s):
    h = b""
    while len(h) < 6:
        c = s.recv(6 - len(h))
        if not c:
            return None, b""
        h += c
    t, _, n = struct.unpack(">BBI", h)
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None, b""
        b += c
    return t, b
s = socket.create_connection(("127.0.0.1", port), timeout=30)
rq = struct.pack(">HH", 1, 0) + b"PACSMESH".ljust(16) + b"RAW_SCU".ljust(16) + b"\0" * 32
rq += item(0x10, b"1.2.840.10008.3.1.1.1")
rq += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, cls) + item(0x40, EVLE))
rq += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.826.0.1.3680043.99.9"))
s.sendall(pdu(0x01, rq))
t, b = recv_pdu(s)
if t != 0x02:
    sys.exit("association refused (PDU type %s)" % t)
msg_id = 1
for arg in sys.argv[3:]:
    sop, path = arg.split(":", 1)
    data = open(path, "rb").read()
    if data[128:132] == b"DICM":  # Part 10: skip preamble and meta group
        glen = struct.unpack("<I", data[140:144])[0]
        data = data[144 + glen:]
    cmd = elem(0, 0x0002, uid(cls)) + elem(0, 0x0100, struct.pack("<H", 1)) + \
        elem(0, 0x0110, struct.pack("<H", msg_id)) + elem(0, 0x0700, struct.pack("<H", 0)) + \
        elem(0, 0x0800, struct.pack("<H", 0)) + elem(0, 0x1000, uid(sop.encode()))
    cmd = elem(0, 0, struct.pack("<I", len(cmd))) + cmd
    msg_id += 1
    s.sendall(pdu(0x04, struct.pack(">IBB", len(cmd) + 2, 1, 3) + cmd))
    frag = 16000
    for k in range(0, max(len(data), 1), frag):
        part = data[k:k + frag]
        last = 2 if k + frag >= len(data) else 0
        s.sendall(pdu(0x04, struct.pack(">IBB", len(part) + 2, 1, last) + part))
    t, b = recv_pdu(s)
    if t != 0x04:
        print(sop, "aborted")
        sys.stdout.flush()
        sys.exit(0)
    body, status = b[6:], None  # one PDV: length, pcid, control, command bytes
    i = 0
    while i + 8 <= len(body):
        g, e, n = struct.unpack("<HHI", body[i:i + 8])
        if (g, e) == (0, 0x0900):
            status = struct.unpack("<H", body[i + 8:i + 10])[0]
        i += 8 + n
    print(sop, "0x%04x" % status if status is not None else "no-status")
    sys.stdout.flush()
s.sendall(pdu(0x05, b"\0\0\0\0"))
recv_pdu(s)
s.close()
EOF
}

# mesh_up N: starts nodes 1..N and waits until every node sees all N members up.
#
# A workaround, reported as a product bug: a node that connects to a peer before that
# peer has learnt of its admission is refused by the peer's ZAP handler, and with
# libzmq 4.3 the refused DEALER never retries, so the two stay "down" to each other
# for good. Once every node holds every event (equal digests), a restart of the nodes
# that do not see everyone up cannot be refused any more.
mesh_up()
{
    local n=$1 i all_ok deadline
    node_start_all
    wait_until 30 digests_equal
    deadline=$(($(now_ms) + 6000))
    while :; do
        all_ok=1
        for ((i = 1; i <= n; i++)); do members_ok "$i" "$n" || all_ok=0; done
        [ "$all_ok" = 1 ] && return 0
        [ "$(now_ms)" -ge "$deadline" ] && break
        sleep 0.2
    done
    log "not every member is up at every node: restarting them (see mesh_up)"
    for ((i = 1; i <= n; i++)); do node_stop "$i"; done
    node_start_all
    for ((i = 1; i <= n; i++)); do wait_until 30 members_ok "$i" "$n"; done
}

# atna_has FILE PYTHON-CONDITION: some valid audit message m that test/atna_listener.py
# wrote to FILE (one JSON object a line) satisfies the condition.
atna_has()
{
    [ -f "$1" ] && /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(eval(sys.argv[2], {"m": m}) for m in rows if m["valid"]) else 1)
PY
}
