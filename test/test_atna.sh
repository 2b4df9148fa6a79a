#!/bin/bash
# IHE ATNA ([audit] syslog): on a two-trust mesh of real `pacsmesh run` processes, A=1
# acquires and sends its audit messages over TCP, B=2 reads and sends over TLS. The
# repositories are test/atna_listener.py, which parses every message as RFC 5424 in
# RFC 6587 / RFC 5425 octet-counted frames and validates its XML against the DICOM
# audit message schema (test/dicom_audit_message.rng) with python3-lxml. Asserted:
# a C-STORE (110104 create), a C-FIND (110112, with who asked and the keys), a web
# sign-in and a refused one (110114), an association refused to an unknown AE (110113
# security alert), a C-GET at B of A's study (110104 read and 110103 at B, over TLS,
# after B refused a repository whose certificate its syslog_ca did not sign) and the
# transfer recorded by A, the serving node (110104 to B's node id); nothing lost while
# A's repository is down at first, and nothing lost when A is killed (kill -9) with
# messages queued and started again; every message valid.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
. "$(dirname "$0")/http_lib.sh"
dicom_init
/usr/bin/python3 -c 'import lxml.etree' 2>/dev/null || skip "python3-lxml is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

A=1 B=2
SCHEMA=$(dirname "$0")/dicom_audit_message.rng
LISTENER=$(dirname "$0")/atna_listener.py
mesh_create 2
dicom_loopback $A $B
alloc_port
TCP_PORT=$PORT
alloc_port
TLS_PORT=$PORT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null ||
    fail "openssl could not make a certificate"
for i in $A $B; do
    node_set_conf "$i" dicom allowed_aes "PACS_A VIEWER_B"
    node_set_conf "$i" audit syslog_retry 1s
done
node_set_conf $A audit syslog "tcp://127.0.0.1:$TCP_PORT"
node_set_conf $B audit syslog "tls://127.0.0.1:$TLS_PORT"
node_set_conf $B audit syslog_ca "$T/cert.pem"
node_set_conf $B audit syslog_app_name "pacsmesh-b"

GOT_A=$T/atna-a.jsonl GOT_B=$T/atna-b.jsonl
listen_a()
{
    rm -f "$T/stop-a"
    /usr/bin/python3 "$LISTENER" "$TCP_PORT" "$GOT_A" "$T/stop-a" "$SCHEMA" --limit 300 &
    LISTENER_A=$!
    STARTED_PIDS+=("$!")
    wait_until 10 tcp_reachable $A 127.0.0.1 "$TCP_PORT"
}
stop_a()
{
    touch "$T/stop-a"
    pid_wait_gone "$LISTENER_A" 10000 || fail "the TCP listener did not stop"
}
on_exit "touch '$T/stop-a' '$T/stop-b'"
all_valid()
{
    /usr/bin/python3 - "$1" <<'PY' || fail "an audit message did not hold: $(grep '"valid": false' "$1" | head -3)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in rows if not r["valid"]]
sys.exit(1 if bad or not rows else 0)
PY
}

log "1. A's repository is down: A stores, answers a C-FIND and a sign-in meanwhile"
mesh_up 2
gen_study "$T/s1" 1 3 PID-ATNA "AUDIT^ALICE" 20240102 >"$T/uid" || fail "gen_study failed"
UID1=$(cat "$T/uid")
dstore $A "$T/s1" >/dev/null 2>&1 || fail "storescu into A failed"
wait_until 30 eval '[ -n "$(dfind $B S STUDY StudyInstanceUID -k StudyInstanceUID='"$UID1"')" ]'
[ "$(dfind $A S STUDY PatientID -k PatientID=PID-ATNA)" = PID-ATNA ] || fail "C-FIND at A found nothing"
user_add $A auditor1 auditor
login $A auditor1
http $A POST /api/login -H 'Content-Type: application/json' -d '{"user":"auditor1","password":"wrong"}'
[ "$HSTATUS" = 401 ] || fail "a wrong password answered $HSTATUS"
echoscu -aet INTRUDER -aec PACSMESH 127.0.0.1 "${NODE_DICOM_PORT[A]}" >/dev/null 2>&1 &&
    fail "an AE not in allowed_aes was accepted"
wait_until 30 log_grew $A 'audit repository tcp://127.0.0.1:[0-9]+ not reached' 0

log "2. it comes up: every message arrives after the retry, parsed and valid"
listen_a
wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110104" and m["action"] == "C" and any(o["id"] == "'"$UID1"'" for o in m["objects"]) and any(o["id"] == "PID-ATNA" and o["name"] == "AUDIT^ALICE" for o in m["objects"])'
wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110112" and m["participants"][0]["user"] == "VIEWER_B" and m["participants"][0]["host"] == "127.0.0.1" and "PatientID=PID-ATNA" in m["objects"][0]["query"]'
wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110114" and m["outcome"] == "0" and m["participants"][0]["user"] == "auditor1" and m["event_types"] == ["110122"]'
wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110114" and m["outcome"] == "4" and m["participants"][0]["user"] == "auditor1"'
wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110113" and m["event_types"] == ["110126"] and m["participants"][0]["user"] == "INTRUDER" and m["outcome"] == "4"'
atna_has "$GOT_A" 'm["pri"] == 85 and m["msgid"] == "IHE+RFC-3881" and m["app"] == "pacsmesh" and m["transport"] == "tcp"' ||
    fail "the syslog header is not PRI 85, MSGID IHE+RFC-3881, APP-NAME pacsmesh"

log "3. B reads A's study by C-GET: B reports it over TLS, A reports serving it to B"
# First a repository whose certificate syslog_ca did not sign: B sends it nothing.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=impostor" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/bad-key.pem" -out "$T/bad-cert.pem" 2>/dev/null ||
    fail "openssl could not make the impostor's certificate"
/usr/bin/python3 "$LISTENER" "$TLS_PORT" "$T/impostor.jsonl" "$T/stop-bad" "$SCHEMA" \
    --cert "$T/bad-cert.pem" --key "$T/bad-key.pem" --limit 300 &
IMPOSTOR=$!
STARTED_PIDS+=("$!")
on_exit "touch '$T/stop-bad'"
dget $B "$T/got" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$UID1" >/dev/null 2>&1 ||
    fail "C-GET at B failed"
[ "$(find "$T/got" -type f | wc -l)" = 3 ] || fail "C-GET at B did not bring the 3 instances"
wait_until 30 log_grew $B 'TLS handshake with 127.0.0.1:[0-9]+ failed: .*certificate verify failed' 0
[ -s "$T/impostor.jsonl" ] && fail "B sent audit messages to a repository with an unknown certificate"
touch "$T/stop-bad"
pid_wait_gone "$IMPOSTOR" 10000 || fail "the impostor listener did not stop"
/usr/bin/python3 "$LISTENER" "$TLS_PORT" "$GOT_B" "$T/stop-b" "$SCHEMA" --cert "$T/cert.pem" \
    --key "$T/key.pem" --limit 300 &
STARTED_PIDS+=("$!")
wait_until 30 atna_has "$GOT_B" 'm["event_id"] == "110104" and m["action"] == "R" and m["participants"][0]["user"] == "VIEWER_B@127.0.0.1" and any(o["id"] == "'"$UID1"'" for o in m["objects"]) and m["transport"] == "tls"'
wait_until 30 atna_has "$GOT_B" 'm["event_id"] == "110103" and any(o["id"] == "'"$UID1"'" for o in m["objects"]) and m["app"] == "pacsmesh-b"'
wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110104" and m["action"] == "R" and m["participants"][0]["user"] == "'"${NODE_ID[B]}"'" and any(o["id"] == "'"$UID1"'" for o in m["objects"])'
grep -q "serving pixel data of study $UID1 to peer ${NODE_ID[B]:0:16}" "${NODE_LOG[A]}" ||
    fail "A's log does not name the study served and the peer"

log "4. kill -9 of A with queries queued for a repository that is down: none lost"
stop_a
for k in 1 2 3 4 5; do
    dcount $A S STUDY StudyInstanceUID -k PatientID="KILL-$k" >/dev/null || fail "C-FIND $k failed"
done
node_kill9 $A
node_start $A
unsent=$(pmjson $A status -- 'd["audit"]["unsent"]')
[ "$unsent" -ge 5 ] || fail "status counts $unsent unsent audit messages, not the 5 queries"
listen_a
for k in 1 2 3 4 5; do
    wait_until 30 atna_has "$GOT_A" 'm["event_id"] == "110112" and "PatientID=KILL-'"$k"'" in m["objects"][0]["query"]'
done

wait_until 30 eval '[ "$(pmjson $A status -- '"'"'d["audit"]["unsent"]'"'"')" = 0 ]'

log "5. every message received is a valid RFC 5424 message with a valid audit message"
all_valid "$GOT_A"
all_valid "$GOT_B"
log "A: $(wc -l <"$GOT_A") messages, B: $(wc -l <"$GOT_B") messages, all valid"
nodes_alive
log "PASS"
