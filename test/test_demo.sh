#!/bin/bash
# The README's first command, examples/demo.sh, end to end against this build: every
# step it narrates happened (the narrated line AND its evidence in the transcript),
# and when it has finished nothing it started is left: every PID it printed is gone,
# every port it used is free, its work directory is removed.
# Skips (77) when Debian's orthanc, the reference PACS, is missing and cannot be
# installed here.
. "$(dirname "$0")/lib.sh"

if ! command -v Orthanc >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || skip "Orthanc (Debian package orthanc) is not installed and we are not root"
    log "installing Debian's orthanc for the demo"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc >"$T/apt.log" 2>&1 ||
        skip "Orthanc (Debian package orthanc) cannot be installed here: $(tail -n 1 "$T/apt.log")"
fi
command -v movescu >/dev/null || skip "dcmtk's movescu is missing"

# `make check` has built this tree: the demo must not run make in it while other tests
# use its programs (DEMO_SKIP_BUILD), nor install packages.
OUT=$T/demo.out
rc=0
TMPDIR=$T BUILD_DIR=$top_builddir DEMO_SKIP_BUILD=1 timeout 600 "$top_srcdir/examples/demo.sh" >"$OUT" 2>&1 || rc=$?
sed 's/^/# | /' "$OUT"
[ "$rc" = 0 ] || fail "the demo exited $rc"

# has TEXT WHY: the transcript holds a line containing TEXT.
has() { grep -qF -- "$1" "$OUT" || fail "the demo did not show: $2 (no line with '$1')"; }
# after HEADING TEXT WHY: a line containing TEXT follows the narrated HEADING.
after()
{
    # grep reads to the end (no -q): under pipefail an early exit would fail sed (SIGPIPE).
    sed -n "/^== $1/,\$p" "$OUT" | tail -n +2 | grep -F -- "$2" >/dev/null ||
        fail "after '== $1' the demo did not show: $3 (no line with '$2')"
}

study=1.3.6.1.4.1.5962.1.2.1.20040119072730.12322 # CT_small.dcm's study

for step in "Creating three trust nodes" "Trust A founds the mesh" "Trust A admits trust B" \
    "Trust A admits trust C" "Starting the three nodes" "Starting a reference PACS (Orthanc)" \
    "A CT arrives in trust A's PACS" "Trust A's PACS sends the CT to trust A's node over DICOM" \
    "The study is on the network worklist at trust B" "A reporter at trust B (dr.jones) claims it" \
    "Trust C sees the claim; a second claim from C is refused" \
    "dr.jones retrieves the study through B's node into B's PACS (C-MOVE" "dr.jones reports it" \
    "At trust A: the report, the turnaround, and the audit trail" \
    "Done: all three nodes hold the same views"; do
    grep -qF -- "== $step" "$OUT" || fail "the demo did not narrate: $step"
done

after "Starting the three nodes" "member  up" "the members up at B"
after "Trust A's PACS sends the CT" "1 instance(s) sent, 0 failed" "Orthanc A's C-STORE to node A"
sed -n '/^== The study is on the network worklist at trust B/,/^== /p' "$OUT" |
    grep -E "unreported .* CT .*$study" >/dev/null ||
    fail "trust B's worklist did not show the study unreported"
after "A reporter at trust B" "claimed $study for dr.jones" "the claim at B"
after "Trust C sees the claim" "is claimed by dr.jones" "the refusal at C naming the holder"
after "dr.jones retrieves the study" "Orthanc B (REST API) now holds instance" \
    "the study in Orthanc B after the C-MOVE"
after "At trust A" "CT head: no acute intracranial abnormality." "the report text at A"
after "At trust A" "by dr.jones" "the report's author at A"
sed -n '/^== At trust A/,$p' "$OUT" | grep -E '^[0-9a-f]{8} +routine +1 ' >/dev/null ||
    fail "the turnaround at A did not show one routine study"
after "At trust A" "report-submitted" "the report in A's audit log"
grep -E '^ok: [0-9]+ events verified' "$OUT" >/dev/null || fail "audit verify did not print 'ok: N events verified'"

# Nothing left: the PIDs it started, its ports, its work directory.
mapfile -t pids < <(sed -n 's/^demo: started .* (pid \([0-9]*\))$/\1/p' "$OUT")
[ "${#pids[@]}" = 6 ] || fail "expected 6 started processes (3 nodes, 3 Orthancs), saw ${#pids[@]}"
has "demo: stopped pids:" "that it stopped what it started"
for pid in "${pids[@]}"; do
    grep -q "^demo: stopped pids:.* $pid\b" "$OUT" || fail "the demo did not stop pid $pid"
    ! pid_alive "$pid" || fail "pid $pid, started by the demo, is still running"
done
mapfile -t ports < <(sed -n -e 's/.* on port \([0-9]*\)$/\1/p' \
    -e 's/.*DICOM port \([0-9]*\), REST http:\/\/127.0.0.1:\([0-9]*\)$/\1\n\2/p' "$OUT")
[ "${#ports[@]}" = 9 ] || fail "expected 9 DICOM and REST ports in the transcript, saw ${#ports[@]}"
# Nothing may still listen (TIME-WAIT remnants of closed connections are fine).
listening()
{
    $PYTHON -c 'import socket, sys
s = socket.socket()
s.settimeout(2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}
for p in "${ports[@]}"; do
    ! listening "$p" || fail "port $p, used by the demo, still accepts connections"
done
work=$(sed -n 's/^== Creating three trust nodes .* in \(.*\)$/\1/p' "$OUT")
[ -n "$work" ] && [ ! -e "$work" ] || fail "the demo's work directory '$work' was left behind"
log "demo: every step shown, ${#pids[@]} processes stopped, ${#ports[@]} ports free"
exit 0
