#!/bin/bash
# Announcement growth benchmark (issue 15; printed numbers, not a test, not run by
# `make check`): the signed log bytes a study of N instances costs when sent in one
# association, and when sent one instance per association (as Orthanc's routing and
# many PACS forwarders send), with storescu into one running node; the same-run ratio;
# and the announcements each made. test/test_announce_growth.sh asserts the bound
# (at most 2x) on a smaller study.
#
#   cd build-dir && bash ../bench/bench_announce.sh [N]    (default 2000)
# Environment: top_builddir (default: the current directory), PM_KEEP_TMP=1 keeps the
# temporary directory.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
export top_builddir
. "$BENCH_DIR/../test/lib.sh"
. "$BENCH_DIR/../test/dicom_lib.sh"
dicom_init

N=${1:-2000}
mesh_create 1
dicom_loopback 1
mesh_up 1
wait_until 20 dicom_up 1

log_bytes() {
    rm -f "$T/log.pmaudit"
    "$PACSMESH" audit export --dir "${NODE_DIR[1]}" --out "$T/log.pmaudit" >/dev/null ||
        fail "audit export failed"
    stat -c %s "$T/log.pmaudit"
}
instances_are() { [ "$(study_field 1 "$1" instances)" = "$2" ]; }
announcements() { grep -c "announced study $1" "${NODE_LOG[1]}"; }

ONCE=$(gen_study "$T/once" 1 "$N" BENCH01 "SYNTHETIC^ONCE") || fail "cannot generate a study"
EACH=$(gen_study "$T/each" 1 "$N" BENCH02 "SYNTHETIC^EACH") || fail "cannot generate a study"
b0=$(log_bytes)
t0=$(date +%s%N)
dstore 1 "$T/once" >"$T/once.log" 2>&1 || fail "C-STORE failed: $(tail -5 "$T/once.log")"
wait_until 60 instances_are "$ONCE" "$N"
t1=$(date +%s%N)
b1=$(log_bytes)
for f in "$T"/each/*; do
    dstore 1 "$f" >>"$T/each.log" 2>&1 || fail "C-STORE of $f failed: $(tail -5 "$T/each.log")"
done
wait_until 60 instances_are "$EACH" "$N"
t2=$(date +%s%N)
b2=$(log_bytes)
once=$((b1 - b0)) each=$((b2 - b1))
printf 'study of %d instances, log bytes:\n' "$N"
printf '  one association              %9d bytes  %3d announcement(s)  %6.1f s\n' "$once" \
    "$(announcements "$ONCE")" "$(awk "BEGIN {print ($t1 - $t0) / 1e9}")"
printf '  one instance per association %9d bytes  %3d announcement(s)  %6.1f s\n' "$each" \
    "$(announcements "$EACH")" "$(awk "BEGIN {print ($t2 - $t1) / 1e9}")"
printf '  ratio                        %9.2f (target: at most 2)\n' "$(awk "BEGIN {print $each / $once}")"
