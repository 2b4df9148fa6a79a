#!/bin/bash
# SIGHUP reloads node.conf in the running node (issue 16; docs/operations.md):
#   - a new worklist rule takes effect for the next study, older items keep theirs;
#   - an association in progress during the reload is not dropped (every instance of a
#     C-STORE running across the SIGHUP is stored, storescu succeeds);
#   - a file with an error is reported and the configuration in use kept (the rule
#     still applies); a restart-only key is named in the log;
#   - the node never exits on SIGHUP.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
wl_need_pydicom
dicom_init

A=1
mesh_create 1
dicom_loopback $A
node_start $A
S=$T/studies
X=$(new_uid) Y=$(new_uid) Z=$(new_uid)
import_study $A "$S" "$X" CT HEAD "CT HEAD"
wait_until 20 item_is $A "$X" 'w["priority"] == "routine" and w["subspecialty"] == ""'
log "1. before: CT HEAD is routine, no sub-specialty"

reloads() { log_count $A "reloaded .*node.conf"; }
kept() { log_count $A "reload: .*keeping the configuration in use"; }
n0=$(reloads)
conf_add $A worklist 'rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro'
# A C-STORE of many instances runs across the reload.
BIG=$(gen_study "$T/big" 1 150 PIDBIG "SYN^BIG" 20240202) || fail "gen_study failed"
storescu -v -aet PACS_A -aec PACSMESH +sd +r -nh 127.0.0.1 "${NODE_DICOM_PORT[A]}" "$T/big" \
    >"$T/big.out" 2>&1 &
STORE=$!
STARTED_PIDS+=("$STORE")
wait_until 20 grep -q "Received Store Response" "$T/big.out"
kill -HUP "${NODE_PID[A]}"
wait_until 20 log_grew $A "reloaded .*node.conf" "${n0:-0}"
wait "$STORE" || fail "the C-STORE running across SIGHUP failed: $(tail -n 5 "$T/big.out")"
node_alive $A || fail "the node exited on SIGHUP"
wait_until 20 item_is $A "$BIG" 'w["state"] == "unreported"'
n=$(pmjson $A studies -- "next((s.get('instances', s.get('instance_count')) for s in d if s['study_uid'] == '$BIG'), None)")
[ "$n" = 150 ] || fail "the association across the reload stored $n of 150 instances"
log "   the association across the reload stored its study ($n instances)"
import_study $A "$S" "$Y" CT HEAD "CT HEAD"
wait_until 20 item_is $A "$Y" 'w["priority"] == "urgent" and w["subspecialty"] == "neuro"'
item_is $A "$X" 'w["priority"] == "routine"' || fail "the reload changed an existing item"
log "2. after SIGHUP: the new rule sets urgent/neuro on the next CT HEAD; the old item is unchanged"

k0=$(kept)
# The bad file also changes the rule: had any of it been taken, Z would be immediate.
sed -i 's/: priority=urgent subspecialty=neuro/: priority=immediate subspecialty=neuro/' "${NODE_DIR[A]}/node.conf"
printf '[worklist]\nno_such_key = 1\n' >>"${NODE_DIR[A]}/node.conf"
kill -HUP "${NODE_PID[A]}"
wait_until 20 log_grew $A "reload: .*keeping the configuration in use" "${k0:-0}"
grep "reload: .*keeping" "${NODE_LOG[A]}" | tail -n 1 | grep -q "no_such_key" ||
    fail "the reload error does not name the bad key: $(grep 'reload:' "${NODE_LOG[A]}" | tail -n 1)"
node_alive $A || fail "the node exited on a bad reload"
# The CLI refuses the bad file too; the study comes by C-STORE into the running node.
make_study "$S" "$Z" CT HEAD "CT HEAD"
dstore $A "$S/$Z" >/dev/null 2>&1 || fail "C-STORE after the bad reload failed"
$PYTHON - "${NODE_DIR[A]}/node.conf" <<'PY' || fail "cannot edit node.conf"
import sys
p = sys.argv[1]
lines = [l for l in open(p).read().split("\n") if l.strip() != "no_such_key = 1"]
open(p, "w").write("\n".join(lines))
PY
wait_until 20 item_is $A "$Z" 'w["priority"] == "urgent" and w["subspecialty"] == "neuro"'
log "3. a bad file is reported ($(grep 'reload:' "${NODE_LOG[A]}" | tail -n 1 | sed 's/.*reload: //')); the rule in use still applies"

node_set_conf $A gossip fanout 5
n1=$(reloads)
kill -HUP "${NODE_PID[A]}"
wait_until 20 log_grew $A "reloaded .*node.conf" "${n1:-0}"
grep -q "reload: \[gossip\] changed; it takes effect when the node next starts" "${NODE_LOG[A]}" ||
    fail "a restart-only change is not named in the log"
W=$(new_uid)
import_study $A "$S" "$W" CT HEAD "CT HEAD"
wait_until 20 item_is $A "$W" 'w["priority"] == "immediate"'
log "4. the fixed file is taken (the changed rule applies); a restart-only key is named in the log"
nodes_alive
echo "PASS: $TEST_NAME"
