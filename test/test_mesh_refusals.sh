#!/bin/bash
# What the mesh port refuses is logged within a rate limit, counted in the metrics and
# sent as an ATNA security alert: bytes that are not a ZeroMQ handshake (random bytes,
# an HTTP request, a ZMTP greeting with the NULL mechanism) from many connections
# give one log line (one offender: at most one line every 10 s), while
# pacsmesh_mesh_refused_total{reason="protocol"} counts every one; the node keeps
# serving. The admin socket refuses a request over 64 KiB with a clear error, counts
# it, and answers the next one.
. "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import lxml.etree' 2>/dev/null || skip "python3-lxml is not installed"

mesh_create 1
alloc_port
METRICS_PORT=$PORT
alloc_port
SYSLOG_PORT=$PORT
node_set_conf 1 metrics listen "127.0.0.1:$METRICS_PORT"
node_set_conf 1 audit syslog "tcp://127.0.0.1:$SYSLOG_PORT"
node_set_conf 1 audit syslog_retry 1s
GOT=$T/atna.jsonl
/usr/bin/python3 "$(dirname "$0")/atna_listener.py" "$SYSLOG_PORT" "$GOT" "$T/stop" \
    "$(dirname "$0")/dicom_audit_message.rng" --limit 300 &
STARTED_PIDS+=("$!")
on_exit "touch '$T/stop'"
node_start 1
metric()
{
    curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk -v m="$1" '$1 == m { print $2 }'
}
# An ATNA security alert (110113, node authentication 110126) about the mesh port.
has_alert()
{
    [ -f "$GOT" ] && /usr/bin/python3 - "$GOT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(m["valid"] and m["event_id"] == "110113" and m["event_types"] == ["110126"]
                  and m["outcome"] == "4" for m in rows) else 1)
PY
}
metric_at_least() { [ "$(metric "$1" | cut -d. -f1)" -ge "$2" ] 2>/dev/null; }

log "1. garbage on the mesh port from 20 connections"
MESH_PORT=${NODE_EP[1]##*:}
$PYTHON - "$MESH_PORT" <<'PY' || fail "could not send the garbage"
import os, socket, sys, time
port = int(sys.argv[1])
greeting_null = b"\xff" + b"\x00" * 8 + b"\x01\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
payloads = [os.urandom(64), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", greeting_null]
for i in range(20):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(payloads[i % 3])
        s.settimeout(2)
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
PY
wait_until 20 metric_at_least 'pacsmesh_mesh_refused_total{reason="protocol"}' 20
lines=$(log_count 1 'refused handshake from .*not a ZeroMQ CURVE handshake')
counted=$(metric 'pacsmesh_mesh_refused_total{reason="protocol"}')
log "refusals counted: $counted; logged: $lines"
[ "$lines" -ge 1 ] || fail "no refusal was logged"
[ "$lines" -le 2 ] || fail "$lines log lines for one offender within seconds (the limit is one per 10 s)"
pm 1 status >/dev/null || fail "the node stopped answering after the garbage"
wait_until 30 has_alert
grep -q '"valid": false' "$GOT" && fail "an audit message did not hold: $(grep '"valid": false' "$GOT" | head -1)"

log "2. the admin socket: a request over 64 KiB is refused with a clear error"
ADMIN=ipc://${NODE_DIR[1]}/admin.sock
reply=$("$top_builddir/test/admin_request" "$ADMIN" 100000) || fail "no reply to an oversized request"
case $reply in *"too large"*) ;; *) fail "the oversized request was answered: $reply" ;; esac
grep -q 'refused an admin request of 100000 bytes' "${NODE_LOG[1]}" || fail "the refusal is not logged"
reply=$("$top_builddir/test/admin_request" "$ADMIN" 100) || fail "no reply to a small request"
case $reply in *'"peers"'*) ;; *) fail "a small request after the refusal: $reply" ;; esac
[ "$(metric pacsmesh_admin_oversized_total)" = 1 ] || fail "the oversized request is not counted"
nodes_alive
log "PASS"
