#!/bin/bash
# A new node catches up a history of several thousand events from two origins
# (bench/gen_worklist) by the streaming of answers alone: with the periodic sync set to
# 15 s, once the first answer has arrived, every answer must end with the sender's sync
# hello while more remains, and the new node must ask again at once, until it holds
# everything, well within one interval. (An answer that sent one batch per origin and
# stopped, as once happened, left the node behind until the next periodic sync.) The burst of
# batches is stored in few transactions, signatures checked on every core: the digest
# and the event count agree at the end.
. "$(dirname "$0")/lib.sh"

GEN=$top_builddir/bench/gen_worklist
[ -x "$GEN" ] || fail "no $GEN (built by make)"
A=1 B=2
node_init $A
node_init $B
out=$(pm $A genesis --mesh "$TEST_NAME-$$" 2>&1) || fail "genesis failed: $out"
"$GEN" -s 2 "${NODE_DIR[A]}" 1500 >"$T/gen.out" 2>"$T/gen.err" || fail "gen_worklist failed: $(cat "$T/gen.err")"
join_with $B "$(admit_by $A $B)"
for i in $A $B; do
    node_set_conf $i gossip interval_ms 15000
    node_set_conf $i node log_level debug
done
node_start $A
total=$(events_count $A)
[ "$total" -gt 4000 ] || fail "the generated history has only $total events"
node_start $B
has_some() { [ "$(events_count $B)" -gt 1 ]; }
wait_until 40 has_some
wait_until 12 digests_equal
[ "$(events_count $B)" = "$total" ] || fail "B holds $(events_count $B) events, A $total"
[ "$(log_count $B 'in one transaction')" -ge 1 ] || fail "no burst was stored in one transaction"
[ "$(log_count $B 'refused')" = 0 ] || fail "B refused events: $(grep refused "${NODE_LOG[B]}" | head -3)"
log "caught up $total events in ${WAITED_MS} ms"
nodes_alive
exit 0
