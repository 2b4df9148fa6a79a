#!/bin/bash
# Prefetch on claim: a study acquired at trust A (1) is claimed for a reporter at node B
# (2): B fetches it in the background, so its cache holds the whole study within a
# deadline though nobody retrieved it, and the prefetch is not recorded as a read (no
# study-accessed event). A claim made at C (3) for the other study is not prefetched by
# B: only claims signed by this node warm its cache.
# Then A, the only holder of that other study, is killed and B is asked to fetch it: B
# waits for A's link instead of giving up at once, and once A is back the fetch
# completes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3
mesh_create 3
wl_mesh_up
S1=$(new_uid) S2=$(new_uid)
import_study $A "$T/studies" "$S1" CT CHEST "CT chest" 6
import_study $A "$T/studies" "$S2" CT HEAD "CT head" 4
for s in "$S1" "$S2"; do wait_until 30 item_is_all "$s" 'w["state"] == "unreported"'; done
cached_at() { [ "$(pmjson "$1" studies -- "next(s['cached'] for s in d if s['study_uid'] == '$2')")" = true ]; }
cached_at $B "$S1" && fail "B holds $S1 before any claim"

pm $B claim "$S1" --reporter dr.bell >/dev/null || fail "claim at B failed"
pm $C claim "$S2" --reporter dr.cole >/dev/null || fail "claim at C failed"
wait_until 30 cached_at $B "$S1"
log "B prefetched $S1 after the claim made there"
wait_until 30 item_is $B "$S2" 'w["state"] == "claimed"'
holds_for 2 not cached_at $B "$S2"
accessed=$(pmjson $B audit log -- "sum(1 for e in d if e['type'] == 'study-accessed')")
[ "$accessed" = 0 ] || fail "the prefetch was recorded as $accessed read(s)"
log "B did not prefetch $S2 (claimed at C), and recorded no read"

node_kill9 $A
pm $B fetch "$S2" >"$T/fetch.log" 2>&1 &
FETCH_PID=$!
STARTED_PIDS+=("$FETCH_PID")
waiting_for_a() { grep -q "study $S2: peer .* is not connected" "${NODE_LOG[B]}"; }
wait_until 20 waiting_for_a
node_start $A
wait "$FETCH_PID" || fail "the fetch at B gave up while A's link was being made again: $(cat "$T/fetch.log")"
cached_at $B "$S2" || fail "B does not hold $S2 after the fetch"
log "B waited for A's link to come back and fetched $S2"
