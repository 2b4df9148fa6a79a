#!/bin/bash
# Index benchmark (issue 15; printed numbers, not a test, not run by `make check`): one
# node whose store holds a generated mesh history of STUDIES studies of ten sites
# (bench/gen_worklist: patients with names from lists, accession numbers, the usual
# modalities). Prints the median over REPEAT runs, process start included, of the CLI
# commands users type, and, with the node running, the median of RUNS C-FINDs on one
# association (bench/dicom_find_timer.py: what a viewer waits for) of each query shape.
#
#   cd build-dir && bash ../bench/bench_index.sh [STUDIES]    (default 100000)
# Environment: top_builddir (default: the current directory), REPEAT (5), RUNS (20),
# PM_KEEP_TMP=1 keeps the temporary directory.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
export top_builddir
. "$BENCH_DIR/../test/lib.sh"

STUDIES=${1:-100000}
REPEAT=${REPEAT:-5}
RUNS=${RUNS:-20}
GEN=$top_builddir/bench/gen_worklist
PYD=/usr/bin/python3 # pydicom is in the system interpreter's packages
[ -x "$GEN" ] || fail "no $GEN (run make in $top_builddir)"
"$PYD" -c 'import pydicom' 2>/dev/null || fail "pydicom is needed (python3-pydicom)"

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# bench_cmd LABEL SHELL-COMMAND: median wall time of REPEAT runs, and the output size.
bench_cmd()
{
    local label=$1 cmd=$2 i t0 t1 walls="" out=$T/bench.out
    for ((i = 0; i < REPEAT; i++)); do
        t0=$(date +%s%N)
        bash -c "$cmd" >"$out" 2>"$T/bench.err" || fail "$label failed: $(cat "$T/bench.err")"
        t1=$(date +%s%N)
        walls+="$(((t1 - t0) / 1000000))"$'\n'
    done
    printf '  %-58s median %6s ms  (output %s lines)\n' "$label" \
        "$(printf '%s' "$walls" | median)" "$(wc -l <"$out")"
}

# bench_find LABEL KEY=VALUE...: C-FIND at STUDY level on one association.
bench_find()
{
    local label=$1
    shift
    local out
    out=$("$PYD" "$BENCH_DIR/dicom_find_timer.py" "${NODE_DICOM_PORT[1]}" PACSMESH "$RUNS" \
        StudyInstanceUID= "$@") || fail "C-FIND $label failed"
    read -r hits min med mean first <<<"$out"
    printf '  C-FIND %-51s median %6s ms  (min %s; %s matches; first match %s ms)\n' \
        "$label" "$med" "$min" "$hits" "$first"
}

node_init 1 big
node_set_conf 1 dicom allowed_aes VIEWER_B
pm 1 genesis --mesh bench-index >/dev/null || fail "genesis failed"
log "generating $STUDIES studies of 10 sites"
"$GEN" "${NODE_DIR[1]}" "$STUDIES" >"$T/gen.out" 2>"$T/gen.err" || fail "gen_worklist failed: $(cat "$T/gen.err")"
read -r _ gen_studies _ gen_events _ <"$T/gen.out"
log "$gen_studies studies, $gen_events events; store $(du -sh "${NODE_DIR[1]}/store" | cut -f1)" \
    "($(($(du -sk "${NODE_DIR[1]}/store" | cut -f1) * 1024 / gen_studies)) bytes per study)"
D=${NODE_DIR[1]}
ACC=$(printf 'ACC%010d' $((STUDIES / 2)))
one=$(pm 1 studies --accession "$ACC" --json | $PYTHON -c 'import json,sys; d=json.load(sys.stdin)[0]; print(d["study_uid"], d["patient_id"])') ||
    fail "no study with accession $ACC"
read -r UID1 PID1 <<<"$one"
pm 1 reporter add dr.bench --name "Bench Reporter" \
    --subspecialty neuro,chest,msk,abdo,breast,paeds,cardiac >/dev/null || fail "reporter add failed"

log "CLI, node stopped (median of $REPEAT, process start included); load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
bench_cmd "studies --patient-id $PID1 --json" "'$PACSMESH' studies --dir '$D' --patient-id '$PID1' --json"
bench_cmd "studies --accession $ACC --json" "'$PACSMESH' studies --dir '$D' --accession $ACC --json"
bench_cmd "audit log --study UID --json" "'$PACSMESH' audit log --dir '$D' --study '$UID1' --json"
bench_cmd "audit log --patient $PID1 --json" "'$PACSMESH' audit log --dir '$D' --patient '$PID1' --json"
REP1=$("$PACSMESH" audit log --dir "$D" --study "$UID1" --json |
    $PYTHON -c 'import json,sys; print(next((e["reporter"] for e in json.load(sys.stdin) if e.get("reporter")), "dr.bench"))')
bench_cmd "audit log --reporter $REP1 --json" "'$PACSMESH' audit log --dir '$D' --reporter '$REP1' --json"
bench_cmd "status" "'$PACSMESH' status --dir '$D'"
bench_cmd "worklist --state claimed --priority immediate --json" \
    "'$PACSMESH' worklist --dir '$D' --state claimed --priority immediate --json"
bench_cmd "worklist --overdue --subspecialty neuro --json" \
    "'$PACSMESH' worklist --dir '$D' --overdue --subspecialty neuro --json"
bench_cmd "next --reporter dr.bench --json" "'$PACSMESH' next --dir '$D' --reporter dr.bench --json"
# gen_worklist's workflow happens in the month before it ran: its last day and month.
DAY=$(date -u +%Y-%m-%d) MONTH_AGO=$(date -u -d '30 days ago' +%Y-%m-%d)
bench_cmd "tat --from $DAY --to $DAY --json" "'$PACSMESH' tat --dir '$D' --from $DAY --to $DAY --json"
bench_cmd "tat --from $MONTH_AGO --to $DAY --json" \
    "'$PACSMESH' tat --dir '$D' --from $MONTH_AGO --to $DAY --json"

node_start 1
log "C-FIND, node running (median of $RUNS on one association); load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
bench_find "AccessionNumber=$ACC" AccessionNumber="$ACC"
bench_find "PatientID=$PID1" PatientID="$PID1"
bench_find "PatientID=${PID1:0:9}* (prefix)" PatientID="${PID1:0:9}*"
bench_find "PatientName=KHALID^O* (prefix)" PatientName="KHALID^O*"
bench_find "PatientName=khal* (prefix, case-insensitive)" PatientName="khal*"
bench_find "ModalitiesInStudy=MG" ModalitiesInStudy=MG
bench_find "ModalitiesInStudy=US" ModalitiesInStudy=US
node_stop 1
log "done"
