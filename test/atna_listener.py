#!/usr/bin/python3
"""A trust's audit record repository for the tests: a syslog listener on 127.0.0.1
over TCP (RFC 6587 octet counting) or TLS (RFC 5425, with --cert and --key). Each
message is parsed as RFC 5424 and its MSG, a DICOM audit message, validated with
python3-lxml against the RELAX NG schema given; one JSON line per message is appended
to OUT with what was read ("valid" false and "error" when anything did not hold). Runs
until the file STOP exists or LIMIT seconds have passed (bounded, like every test loop).

    atna_listener.py PORT OUT STOP SCHEMA [--cert C --key K] [--limit S]
"""
import argparse
import base64
import json
import os
import re
import socket
import ssl
import threading
import time
from datetime import datetime

from lxml import etree

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("out")
ap.add_argument("stop")
ap.add_argument("schema")
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--limit", type=float, default=300.0)
args = ap.parse_args()
deadline = time.time() + args.limit
schema = etree.RelaxNG(etree.parse(args.schema))
write_lock = threading.Lock()

HEADER = re.compile(
    rb"<(\d{1,3})>(\d{1,2}) (\S+) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) (-|\[.*?\]) ?(.*)\Z",
    re.S)


def coded(el):
    return None if el is None else el.get("csd-code")


def describe(xml):
    """The audit message's fields the tests look at."""
    doc = etree.fromstring(xml)
    ev = doc.find("EventIdentification")
    row = {
        "event_id": coded(ev.find("EventID")),
        "event_types": [coded(e) for e in ev.findall("EventTypeCode")],
        "action": ev.get("EventActionCode"),
        "outcome": ev.get("EventOutcomeIndicator"),
        "description": (ev.find("EventOutcomeDescription").text
                        if ev.find("EventOutcomeDescription") is not None else None),
        "participants": [{"user": p.get("UserID"), "requestor": p.get("UserIsRequestor"),
                          "host": p.get("NetworkAccessPointID"),
                          "roles": [coded(r) for r in p.findall("RoleIDCode")]}
                         for p in doc.findall("ActiveParticipant")],
        "source": doc.find("AuditSourceIdentification").get("AuditSourceID"),
        "objects": [],
    }
    for o in doc.findall("ParticipantObjectIdentification"):
        q = o.find("ParticipantObjectQuery")
        row["objects"].append({
            "id": o.get("ParticipantObjectID"), "type": o.get("ParticipantObjectTypeCode"),
            "role": o.get("ParticipantObjectTypeCodeRole"),
            "id_type": coded(o.find("ParticipantObjectIDTypeCode")),
            "name": (o.find("ParticipantObjectName").text
                     if o.find("ParticipantObjectName") is not None else None),
            "query": base64.b64decode(q.text).decode() if q is not None and q.text else None})
    return row


def record(frame, transport):
    row = {"transport": transport, "valid": False}
    try:
        m = HEADER.match(frame)
        if not m:
            raise ValueError("not an RFC 5424 message: %r" % frame[:80])
        pri, version, stamp, host, app, procid, msgid, sd, msg = m.groups()
        if int(pri) > 191 or version != b"1":
            raise ValueError("bad PRI or VERSION")
        datetime.strptime(stamp.decode().replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
        row.update(pri=int(pri), hostname=host.decode(), app=app.decode(),
                   procid=procid.decode(), msgid=msgid.decode())
        if msg.startswith(b"\xef\xbb\xbf"):
            msg = msg[3:]
        doc = etree.fromstring(msg)
        if not schema.validate(doc):
            raise ValueError("schema: %s" % schema.error_log.last_error)
        row.update(describe(msg))
        row["valid"] = True
    except Exception as e:  # recorded, so the test names what was wrong
        row["error"] = str(e)
    with write_lock:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        part = conn.recv(n - len(buf))
        if not part:
            raise EOFError
        buf += part
    return buf


def serve(conn, transport):
    conn.settimeout(1.0)
    try:
        while time.time() < deadline and not os.path.exists(args.stop):
            try:
                digits = b""
                while True:  # octet counting: LEN SP MSG
                    c = read_exact(conn, 1)
                    if c == b" ":
                        break
                    if not c.isdigit() or len(digits) > 9:
                        raise ValueError("bad frame length")
                    digits += c
                record(read_exact(conn, int(digits)), transport)
            except socket.timeout:
                continue
    except (EOFError, ValueError, OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


ctx = None
if args.cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", args.port))
srv.listen(8)
srv.settimeout(0.2)
while time.time() < deadline and not os.path.exists(args.stop):
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    try:
        if ctx:
            conn.settimeout(5.0)
            conn = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()
        continue
    threading.Thread(target=serve, args=(conn, "tls" if ctx else "tcp"), daemon=True).start()
srv.close()
