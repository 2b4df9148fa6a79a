#!/bin/sh
# The main job: a three-trust mesh on this machine, each trust with its own reference
# PACS (Debian's Orthanc). Installs what is missing, builds, forms the mesh with the
# CLI, has trust A's PACS send a study to its node over DICOM, shows it on the network
# worklist at trust B, where a reporter claims it, retrieves it through B's node into
# B's PACS (C-MOVE), and reports it; then shows the report and the turnaround at A.
# Narrates each step ("== ..."), checks each step (and stops, saying which, if one did
# not happen), and leaves nothing running: it stops exactly the processes it started,
# by PID, and prints them ("demo: started ... (pid N)", "demo: stopped pids: ...").
#
# Everything listens on 127.0.0.1 only, except that Orthanc 1.10 has no bind-address
# setting: each Orthanc accepts HTTP from loopback clients only and DICOM only from
# its own node's AE at 127.0.0.1 (examples/demo-orthanc.json.in).
#
# Environment: BUILD_DIR (default ./build); DEMO_KEEP=1 keeps the work directory;
# DEMO_SKIP_BUILD=1 uses BUILD_DIR as it is (no package installs, no make: for
# test/test_demo.sh, which runs inside `make check`).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
pm=$build/pacsmesh
tests=/usr/lib/python3/dist-packages/pydicom/data/test_files
python=/usr/bin/python3

say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

# ---- what is needed ------------------------------------------------------------------

[ "${DEMO_SKIP_BUILD:-0}" = 1 ] || "$top/examples/install-deps.sh"
if ! command -v Orthanc >/dev/null 2>&1; then
    # The reference PACS: Debian's orthanc (only the program is used; the demo never
    # touches the system service the package may install).
    [ "$(id -u)" = 0 ] || die "Orthanc is not installed: run as root, or apt-get install orthanc"
    echo "installing: orthanc"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc >/dev/null ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc; } ||
        die "cannot install Debian's orthanc package"
fi
[ "${DEMO_SKIP_BUILD:-0}" = 1 ] || BUILD_DIR=$build "$top/examples/build.sh"
[ -x "$pm" ] || die "no pacsmesh at $pm after the build"

# ---- bookkeeping: work directory, processes, waiting ------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/pacsmesh-demo.XXXXXX")
pids=""
cleanup() {
    rc=$?
    trap - EXIT INT TERM
    set +e
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $pids; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$pid" 2>/dev/null; then
            echo "demo: pid $pid did not stop within 10 s of SIGTERM: killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    [ -n "$pids" ] && echo "demo: stopped pids:$pids"
    if [ "$rc" != 0 ]; then
        for f in "$work"/*.log; do
            [ -s "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
        done >&2
    fi
    if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# started NAME PID: remembers a process the demo started (and only those are stopped).
started() {
    pids="$pids $2"
    echo "demo: started $1 (pid $2)"
}

# wait_for SECONDS WHAT CMD...: polls CMD until it succeeds; after SECONDS the demo
# fails, saying WHAT did not happen.
wait_for() {
    limit=$1 what=$2
    shift 2
    end=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "$what did not happen within $limit s"
        sleep 0.2
    done
}

# A block of 20 free loopback ports, starting at a base derived from our PID.
ports_free() {
    "$python" -S - "$1" <<'EOF'
import socket, sys
base = int(sys.argv[1])
for p in range(base, base + 20):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}
base=$((30000 - 20 * ($$ % 200)))
tries=0
until ports_free "$base"; do
    tries=$((tries + 1))
    [ $tries -lt 50 ] || die "no block of 20 free ports found"
    base=$((base - 20))
done
# Ports: node mesh base+0..2, node web base+7..9, node DICOM base+10..12, Orthanc HTTP base+4..6,
# Orthanc DICOM base+14..16 (for trusts A, B, C).
idx() { printf '%s' "$1" | tr ABC 012; }
mesh_port() { echo $((base + $(idx "$1"))); }
node_dicom() { echo $((base + 10 + $(idx "$1"))); }
pacs_http() { echo $((base + 4 + $(idx "$1"))); }
pacs_dicom() { echo $((base + 14 + $(idx "$1"))); }
node_web() { echo $((base + 7 + $(idx "$1"))); } # each node's web server

# orthanc T METHOD PATH [BODY]: calls Orthanc T's REST API; prints the answer.
orthanc() {
    "$python" -S - "$(pacs_http "$1")" "$2" "$3" "${4:-}" <<'EOF'
import sys, urllib.request
port, method, path, body = sys.argv[1:5]
data = None
if body.startswith("@"):
    data = open(body[1:], "rb").read()
elif body:
    data = body.encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
with urllib.request.urlopen(req, timeout=60) as r:
    sys.stdout.write(r.read().decode())
EOF
}

# json EXPR: evaluates EXPR on the JSON document on stdin (bound to d) and prints it.
json() { "$python" -S -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

study=$(dcmdump +P StudyInstanceUID "$tests/CT_small.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
sop=$(dcmdump +P SOPInstanceUID "$tests/CT_small.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
[ -n "$study" ] && [ -n "$sop" ] || die "cannot read the sample CT's UIDs"

# ---- the mesh --------------------------------------------------------------------------

say "Creating three trust nodes (A, B, C) on this machine in $work"
for t in A B C; do
    "$pm" init --dir "$work/$t" --name "Trust $t" --listen "tcp://127.0.0.1:$(mesh_port $t)" \
        --dicom-port "$(node_dicom $t)" --ae "NODE_$t" >/dev/null
    # The DICOM service on loopback only, for the trust's PACS and viewer (from this
    # machine only); trust B's node may send studies to B's PACS.
    printf '\n[dicom]\nbind = 127.0.0.1\nallowed_aes = ORTHANC_%s@127.0.0.1 VIEWER_%s@127.0.0.1\n' \
        "$t" "$t" >>"$work/$t/node.conf"
    printf '\n[http]\nlisten = 127.0.0.1:%s\n' "$(node_web $t)" >>"$work/$t/node.conf"
    echo "trust $t: node $("$pm" id --dir "$work/$t" | cut -c1-16)..., DICOM AE NODE_$t on port $(node_dicom $t)"
done
printf '\n[dicom.destinations]\nORTHANC_B = 127.0.0.1:%s\n' "$(pacs_dicom B)" >>"$work/B/node.conf"

say "Trust A founds the mesh 'demo-network'"
"$pm" genesis --dir "$work/A" --mesh demo-network | tail -n 1
for t in B C; do
    say "Trust A admits trust $t; $t joins with the token"
    token=$("$pm" admit --dir "$work/A" "$("$pm" id --dir "$work/$t")" --name "Trust $t" \
        --endpoint "tcp://127.0.0.1:$(mesh_port $t)" | tail -n 1)
    "$pm" join --dir "$work/$t" "$token"
done

say "Starting the three nodes"
for t in A B C; do
    "$pm" run --dir "$work/$t" </dev/null 2>"$work/node-$t.log" &
    started "node $t" $!
done
all_up() {
    [ "$("$pm" digest --dir "$work/A")" = "$("$pm" digest --dir "$work/C")" ] &&
        [ "$("$pm" members --dir "$work/B" --json | json 'sum(1 for m in d if m["up"])')" = 3 ]
}
wait_for 30 "the three nodes seeing each other up" all_up
"$pm" members --dir "$work/B"

# ---- a reference PACS per trust --------------------------------------------------------

say "Starting a reference PACS (Orthanc) for each trust, each knowing its trust's node"
for t in A B C; do
    mkdir -p "$work/pacs-$t"
    sed -e "s|@NAME@|Trust $t PACS|" -e "s|@DIR@|$work/pacs-$t|" \
        -e "s|@HTTP_PORT@|$(pacs_http $t)|" -e "s|@DICOM_PORT@|$(pacs_dicom $t)|" \
        -e "s|@AET@|ORTHANC_$t|" -e "s|@NODE_AE@|NODE_$t|g" -e "s|@NODE_PORT@|$(node_dicom $t)|" \
        "$top/examples/demo-orthanc.json.in" >"$work/pacs-$t/orthanc.json"
    Orthanc --no-jobs "$work/pacs-$t/orthanc.json" </dev/null >"$work/pacs-$t.log" 2>&1 &
    started "Orthanc $t" $!
done
for t in A B C; do
    wait_for 60 "Orthanc $t answering on http://127.0.0.1:$(pacs_http $t)" orthanc "$t" GET /system
    echo "trust $t: PACS AE ORTHANC_$t, DICOM port $(pacs_dicom $t), REST http://127.0.0.1:$(pacs_http $t)"
done

# ---- the study's journey --------------------------------------------------------------

say "A CT arrives in trust A's PACS (uploaded to Orthanc A's REST API)"
id=$(orthanc A POST /instances "@$tests/CT_small.dcm" | json 'd["ID"]') ||
    die "Orthanc A did not take the CT"
echo "Orthanc A holds instance $id (SOP Instance UID $sop)"

say "Trust A's PACS sends the CT to trust A's node over DICOM (C-STORE, via Orthanc's REST API)"
out=$(orthanc A POST /modalities/NODE_A/store "{\"Resources\": [\"$id\"], \"Synchronous\": true}") ||
    die "Orthanc A could not C-STORE to node A"
echo "$out" | json '"Orthanc A -> node A: %d instance(s) sent, %d failed" % (d["InstancesCount"], d["FailedInstancesCount"])'
[ "$(echo "$out" | json 'd["FailedInstancesCount"]')" = 0 ] || die "a C-STORE to node A failed"

on_worklist() { "$pm" worklist --dir "$work/$1" --json | grep -q "\"$study\""; }
wait_for 30 "the study reaching trust B's worklist" on_worklist B
say "The study is on the network worklist at trust B"
"$pm" worklist --dir "$work/B"

say "A reporter at trust B (dr.jones) claims it"
"$pm" claim --dir "$work/B" "$study" --reporter dr.jones
claimed_at() { "$pm" worklist --dir "$work/$1" --json | grep -q '"claimed_by": "dr.jones"'; }
wait_for 30 "trust C seeing dr.jones's claim" claimed_at C
say "Trust C sees the claim; a second claim from C is refused, naming the holder"
rc=0
out=$("$pm" claim --dir "$work/C" "$study" --reporter dr.smith 2>&1) || rc=$?
printf '%s\n' "$out"
[ "$rc" = 1 ] || die "the second claim was not refused (exit $rc)"
printf '%s\n' "$out" | grep -q dr.jones || die "the refusal does not name the holder dr.jones"

say "dr.jones signs in to trust B's node in a browser and opens trust A's study in the OHIF viewer"
printf 'jones-demo-password\n' | "$pm" user add jones --dir "$work/B" --role reporter --reporter dr.jones
web_b="http://127.0.0.1:$(node_web B)"
curl -sf -u jones:jones-demo-password "$web_b/dicom-web/studies?StudyInstanceUID=$study" |
    json '"QIDO-RS at B finds %d study: %s" % (len(d), d[0]["00081030"].get("Value", [""])[0])' ||
    die "DICOMweb at node B does not find the study"
if [ -x /usr/bin/chromium ] && [ -d "$top/test/js/node_modules/puppeteer-core" ] &&
    [ -r "$top/viewer/ohif/dist/index.html" ] && command -v node >/dev/null; then
    ms=$(node "$top/test/js/ohif_open.js" "$web_b" jones jones-demo-password "$study" \
        "$work/ohif-at-trust-b.png") || die "OHIF at trust B did not show the study"
    echo "OHIF ($web_b/viewer/viewer?StudyInstanceUIDs=$study) drew the image in $ms ms;" \
        "pixel data fetched lazily from A; screenshot $work/ohif-at-trust-b.png"
else
    echo "(headless chromium, the OHIF build or test/js are missing: examples/install-deps.sh" \
        "installs them; fetching the image through WADO-RS instead)"
    curl -sf -u jones:jones-demo-password -o "$work/frame.bin" \
        "$web_b/dicom-web/studies/$study/metadata" || die "WADO-RS at node B failed"
    echo "WADO-RS metadata from node B: $(wc -c <"$work/frame.bin") bytes"
fi
"$pm" audit log --dir "$work/B" --study "$study" --json |
    json '"the read is on B'"'"'s log: " + ", ".join("%s by %s" % (e["type"], e.get("reporter")) for e in d if e["type"] == "study-accessed")'

say "dr.jones retrieves the study through B's node into B's PACS (C-MOVE to ORTHANC_B): pixel data fetched lazily from A"
movescu -aet VIEWER_B -aec NODE_B -aem ORTHANC_B -S -k QueryRetrieveLevel=STUDY \
    -k StudyInstanceUID="$study" 127.0.0.1 "$(node_dicom B)" || die "the C-MOVE through node B failed"
in_pacs_b() {
    [ "$(orthanc B POST /tools/lookup "$sop" | json 'len(d)')" -ge 1 ]
}
wait_for 30 "the instance arriving in Orthanc B" in_pacs_b
bid=$(orthanc B POST /tools/lookup "$sop" | json 'd[0]["ID"]')
# What Orthanc A sent and what Orthanc B received, as each PACS holds it.
download() {
    "$python" -S - "$(pacs_http "$1")" "$2" "$3" <<'EOF'
import sys, urllib.request
port, iid, out = sys.argv[1:4]
with urllib.request.urlopen(f"http://127.0.0.1:{port}/instances/{iid}/file", timeout=60) as r:
    open(out, "wb").write(r.read())
EOF
}
download A "$id" "$work/from-pacs-a.dcm"
download B "$bid" "$work/from-pacs-b.dcm"
# Every element, pixel data included, must match. Data Set Trailing Padding
# (FFFC,FFFC) has no meaning (PS3.10 7.2) and is not sent over the network (dcmtk
# drops it), so Orthanc A's stored copy may have it while nothing that travelled does.
"$python" - "$work/from-pacs-b.dcm" "$work/from-pacs-a.dcm" <<'EOF' ||
import sys, pydicom
a, b = (pydicom.dcmread(p) for p in sys.argv[1:3])
for ds in (a, b):
    if (0xFFFC, 0xFFFC) in ds:
        del ds[0xFFFC, 0xFFFC]
sys.exit(0 if a == b else 1)
EOF
    die "Orthanc B's copy differs from what trust A's PACS sent"
echo "Orthanc B (REST API) now holds instance $bid: exactly the data set trust A's PACS sent"

say "dr.jones reports it"
printf 'CT head: no acute intracranial abnormality.\n' >"$work/report.txt"
"$pm" report --dir "$work/B" "$study" --reporter dr.jones --file "$work/report.txt"
reported_at() { "$pm" reports --dir "$work/$1" "$study" --json | grep -q dr.jones; }
wait_for 30 "the report reaching trust A" reported_at A

say "At trust A: the report, the turnaround, and the audit trail"
"$pm" reports --dir "$work/A" "$study"
"$pm" tat --dir "$work/A"
"$pm" audit log --dir "$work/A" --study "$study"
"$pm" audit verify --dir "$work/A"
same_views() {
    a=$("$pm" digest --dir "$work/A") &&
        [ "$a" = "$("$pm" digest --dir "$work/B")" ] && [ "$a" = "$("$pm" digest --dir "$work/C")" ]
}
wait_for 30 "the three nodes converging" same_views
say "Done: all three nodes hold the same views ($("$pm" digest --dir "$work/A" | cut -c1-16)...); stopping everything"
