#!/bin/sh
# The main job: a three-trust mesh on this machine. Installs what is missing, builds,
# forms the mesh with the CLI, sends a study to trust A over DICOM, shows it on the
# network worklist at trust B, where a reporter claims it, retrieves it through B's
# node, and reports it; then shows the report and the turnaround at trust A.
# Narrates each step and leaves nothing running.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/examples/install-deps.sh"
BUILD_DIR=${BUILD_DIR:-$top/build} "$top/examples/build.sh"
pm=${BUILD_DIR:-$top/build}/pacsmesh
tests=/usr/lib/python3/dist-packages/pydicom/data/test_files
work=$(mktemp -d /tmp/pacsmesh-demo.XXXXXX)
pids=""
cleanup() {
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
say() { printf '\n== %s\n' "$*"; }
# Waits up to $1 seconds for the command to succeed.
wait_for() {
    limit=$1; shift
    end=$(( $(date +%s) + limit ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || { echo "demo: timed out waiting for: $*" >&2; exit 1; }
        sleep 0.1
    done
}
base=$(( 20000 + $$ % 1000 * 20 ))
export TCP_NODELAY=1

say "Creating three trust nodes (A, B, C) on this machine in $work"
for t in A B C; do
    n=$(printf '%s' "$t" | tr ABC 012)
    "$pm" init --dir "$work/$t" --name "Trust $t" --listen "tcp://127.0.0.1:$((base + n))" \
        --dicom-port "$((base + 10 + n))" --ae "NODE_$t" >/dev/null
done
say "Trust A founds the mesh 'demo-network'"
"$pm" genesis --dir "$work/A" --mesh demo-network | tail -1
for t in B C; do
    n=$(printf '%s' "$t" | tr ABC 012)
    say "Trust A admits trust $t; $t joins with the token"
    token=$("$pm" admit --dir "$work/A" "$("$pm" id --dir "$work/$t")" --name "Trust $t" \
        --endpoint "tcp://127.0.0.1:$((base + n))" | tail -1)
    "$pm" join --dir "$work/$t" "$token"
done
say "Starting the three nodes"
for t in A B C; do
    "$pm" run --dir "$work/$t" 2>"$work/$t.log" &
    pids="$pids $!"
done
wait_for 20 sh -c "[ \"\$('$pm' digest --dir '$work/A')\" = \"\$('$pm' digest --dir '$work/C')\" ] && \
    '$pm' members --dir '$work/B' --json | grep -c '\"up\": true' | grep -qx 3"
"$pm" members --dir "$work/B"

say "Trust A's PACS sends a CT to its node over DICOM (C-STORE)"
storescu -aet PACS_A -aec NODE_A 127.0.0.1 $((base + 10)) "$tests/CT_small.dcm"
study=$(dcmdump +P StudyInstanceUID "$tests/CT_small.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
wait_for 20 sh -c "'$pm' worklist --dir '$work/B' --json | grep -q '$study'"
say "The study is on the network worklist at trust B"
"$pm" worklist --dir "$work/B"

say "A reporter at trust B (dr.jones) claims it"
"$pm" claim --dir "$work/B" "$study" --reporter dr.jones
wait_for 20 sh -c "'$pm' worklist --dir '$work/C' --json | grep -q 'dr.jones'"
say "Trust C sees the claim; a second claim from C is refused, naming the holder"
"$pm" claim --dir "$work/C" "$study" --reporter dr.smith || true

say "dr.jones opens the study through B's node (C-GET): pixel data fetched lazily from A"
mkdir -p "$work/viewer"
getscu -aet VIEWER_B -aec NODE_B -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$study" \
    -od "$work/viewer" 127.0.0.1 $((base + 11))
/usr/bin/python3 "$top/examples/same-dataset.py" "$work/viewer/"* "$tests/CT_small.dcm"
echo "the viewer received exactly the data set trust A's PACS sent"

say "dr.jones reports it"
printf 'CT head: no acute intracranial abnormality.\n' >"$work/report.txt"
"$pm" report --dir "$work/B" "$study" --reporter dr.jones --file "$work/report.txt"
wait_for 20 sh -c "'$pm' reports --dir '$work/A' '$study' --json | grep -q dr.jones"
say "At trust A: the report, the turnaround, and the audit trail"
"$pm" reports --dir "$work/A" "$study"
"$pm" tat --dir "$work/A"
"$pm" audit log --dir "$work/A" --study "$study"
"$pm" audit verify --dir "$work/A"
say "Done: all three nodes hold the same views ($("$pm" digest --dir "$work/A" | cut -c1-16)...)"
