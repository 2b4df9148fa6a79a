#!/bin/bash
# Announcements grow with the study, not with its square: two real nodes on 127.0.0.1.
# A takes a study of N instances in one association, then another of N sent one
# instance per association (as many PACS forwarders send), with storescu. Both reach
# B with every instance; the second costs at most twice the log bytes of the first
# (the signed log as `audit export` writes it); the first association of the second
# study is on the worklist at once, before the rest has arrived.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init

A=1 B=2
N=150
mesh_create 2
dicom_loopback $A $B
mesh_up 2
wait_until 20 dicom_up $A

log_bytes() {
    rm -f "$T/log.pmaudit"
    "$PACSMESH" audit export --dir "${NODE_DIR[A]}" --out "$T/log.pmaudit" >/dev/null ||
        fail "audit export failed"
    stat -c %s "$T/log.pmaudit"
}
instances_at() { [ "$(study_field "$1" "$2" instances)" = "$3" ]; }

log "1. one association"
ONCE=$(gen_study "$T/once" 1 $N GROW01 "SYNTHETIC^ONCE") || fail "cannot generate a study"
before=$(log_bytes)
dstore $A "$T/once" >"$T/once.log" 2>&1 || fail "C-STORE failed: $(tail -5 "$T/once.log")"
wait_until 30 instances_at $A "$ONCE" $N
wait_until 30 instances_at $B "$ONCE" $N
after_once=$(log_bytes)

log "2. one instance per association"
EACH=$(gen_study "$T/each" 1 $N GROW02 "SYNTHETIC^EACH") || fail "cannot generate a study"
first=1
for f in "$T"/each/*; do
    dstore $A "$f" >>"$T/each.log" 2>&1 || fail "C-STORE of $f failed: $(tail -5 "$T/each.log")"
    if [ "$first" = 1 ]; then
        # A new study is announced as its first association ends, not after a pause.
        wait_until 10 instances_at $A "$EACH" 1
        first=0
    fi
done
wait_until 30 instances_at $A "$EACH" $N
wait_until 30 instances_at $B "$EACH" $N
after_each=$(log_bytes)

once=$((after_once - before)) each=$((after_each - after_once))
events=$(grep -c "announced study $EACH" "${NODE_LOG[A]}")
log "log bytes: $once for one association, $each for $N associations ($events announcements)"
[ "$each" -le $((2 * once)) ] ||
    fail "one instance per association cost $each log bytes, more than twice $once"
[ "$events" -lt $((N / 4)) ] || fail "$events announcements for $N associations"
node_stop $B
"$PACSMESH" check --dir "${NODE_DIR[B]}" >"$T/check.log" 2>&1 ||
    fail "check of B failed: $(tail -5 "$T/check.log")"
exit 0
