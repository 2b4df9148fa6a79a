#!/bin/bash
# Damage on disk is found (issue 16; docs/operations.md, Checking a node):
#   - `check` on healthy nodes (the origin, and a node holding a fetched copy) re-derives
#     the views from the events, finds them equal, and verifies every blob's hash;
#   - a blob file changed on disk is named by `check` (exit 1);
#   - a truncated data.mdb gives every command a clear message naming the file, not a
#     "Bus error" (SIGBUS), and so does a data.mdb overwritten with garbage.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2
mesh_create 2
wl_mesh_up
S=$T/studies
U=$(new_uid)
import_study $A "$S" "$U" CT HEAD "CT HEAD"
wait_until 30 item_is_all "$U" 'w["state"] == "unreported"'
pm $B fetch "$U" >/dev/null || fail "fetch at B failed"
wait_until 30 digests_equal $A $B

for i in $A $B; do
    out=$(pm $i check) || fail "check on healthy node $i failed: $out"
    printf '%s\n' "$out" | grep -q "^ok: .* views match; [1-9][0-9]* blobs" || fail "check on node $i: $out"
done
log "1. healthy: $(pm $A check)"

blob=$(find "${NODE_DIR[A]}/blobs" -mindepth 2 -type f -name '[0-9a-f]*' | head -n 1)
[ -n "$blob" ] || fail "no blob file on A"
cp "$blob" "$T/blob.orig"
printf 'X' | dd of="$blob" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_exit 1 "damaged" pm $A check
out=$(pm $A check 2>/dev/null) && fail "check passed with a changed blob"
printf '%s\n' "$out" | grep -q "DAMAGED blob $(basename "$blob")" || fail "check does not name the changed blob: $out"
cp "$T/blob.orig" "$blob"
pm $A check >/dev/null || fail "check after repairing the blob failed"
log "2. a changed blob file is named; once repaired, check passes"

node_stop $B
cp "${NODE_DIR[B]}/store/data.mdb" "$T/data.orig"
size=$(stat -c %s "$T/data.orig")
truncate -s $((size / 2)) "${NODE_DIR[B]}/store/data.mdb"
for cmd in status worklist check digest; do
    rc=0
    err=$(pm $B $cmd 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 1 ] || fail "$cmd on a truncated store exited $rc (135 is SIGBUS): $err"
    printf '%s\n' "$err" | grep -q "data.mdb is truncated" || fail "$cmd does not name data.mdb: $err"
done
log "3. truncated data.mdb: $(pm $B status 2>&1 | head -n 1)"
head -c 65536 /dev/urandom >"${NODE_DIR[B]}/store/data.mdb"
rc=0
err=$(pm $B status 2>&1 >/dev/null) || rc=$?
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q "data.mdb is damaged" || fail "garbage data.mdb: exit $rc: $err"
log "   garbage data.mdb: $(printf '%s\n' "$err" | head -n 1)"
cp "$T/data.orig" "${NODE_DIR[B]}/store/data.mdb"
node_start $B
pm $B check >/dev/null || fail "check after putting data.mdb back failed"
log "4. import shows progress: plain lines on stderr when it is not a terminal"
. "$(dirname "$0")/dicom_lib.sh"
gen_study "$T/many" 1 400 PIDMANY "SYN^MANY" 20240303 64 >/dev/null || fail "gen_study failed"
t0=$(now_ms)
pm $A import "$T/many" >"$T/imp.out" 2>"$T/imp.err" || fail "import failed: $(cat "$T/imp.err")"
took=$(($(now_ms) - t0))
grep -q "imported 400 instances" "$T/imp.out" || fail "import result: $(cat "$T/imp.out")"
lines=$(grep -cE "^pacsmesh: imported [0-9]+ files, [0-9.]+ MB, [0-9.]+ MB/s$" "$T/imp.err" || true)
if [ "$took" -gt 2500 ]; then
    [ "$lines" -ge 1 ] || fail "an import of ${took} ms printed no progress line: $(cat "$T/imp.err")"
    log "   ${took} ms, $lines progress lines, e.g. $(head -n 1 "$T/imp.err")"
elif [ "$took" -lt 2000 ]; then
    [ "$lines" = 0 ] || fail "an import of ${took} ms printed $lines progress lines (one every 2 s)"
    log "   the import took ${took} ms: too quick for a progress line (one every 2 s)"
else # 2-2.5 s: the first line is due at 2 s of the import itself; either is right
    log "   the import took ${took} ms, near the first line's 2 s: $lines progress lines"
fi
nodes_alive
echo "PASS: $TEST_NAME"
