#!/usr/bin/python3
"""A trust's RIS for the tests: an HL7 v2 MLLP listener on 127.0.0.1 that parses every
message with python3-hl7, appends what it read as one JSON line to OUT, and answers
with an ACK (MSA AA and the message's control id). Runs until the file STOP exists
or LIMIT seconds have passed (bounded, like every test loop).

    ris_listener.py PORT OUT STOP [LIMIT]
"""
import json
import os
import socket
import sys
import time

import hl7

port, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
limit = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
deadline = time.time() + limit


def field(msg, seg, n):
    try:
        return msg.unescape(str(msg.segment(seg)[n]))
    except (KeyError, IndexError):
        return ""


def record(text):
    m = hl7.parse(text)
    control = str(m.segment("MSH")[10])
    obx = [m.unescape(str(s[5])) for s in m.segments("OBX")]
    row = {
        "type": str(m.segment("MSH")[9]),
        "control_id": control,
        "sending_facility": field(m, "MSH", 4),
        "receiving_application": field(m, "MSH", 5),
        "patient_id": field(m, "PID", 3),
        "patient_family": m.unescape(str(m.segment("PID")[5][0][0])),
        "accession": field(m, "OBR", 2),
        "study_uid": field(m, "OBR", 3),
        "status": field(m, "OBR", 25),
        "reporter": field(m, "OBR", 32),
        "obx": obx,
    }
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    return control


srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
srv.settimeout(0.2)
while time.time() < deadline and not os.path.exists(stop):
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    conn.settimeout(5)
    buf = b""
    try:
        while not buf.endswith(b"\x1c\x0d") and len(buf) < (1 << 22):
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
        if buf.startswith(b"\x0b") and buf.endswith(b"\x1c\x0d"):
            control = record(buf[1:-2].decode("utf-8"))
            ack = "MSH|^~\\&|RIS|TRUST|PACSMESH|A|%s||ACK^R01^ACK|A%s|P|2.5\rMSA|AA|%s\r" % (
                time.strftime("%Y%m%d%H%M%S"), control, control)
            conn.sendall(b"\x0b" + ack.encode() + b"\x1c\x0d")
    except (OSError, ValueError) as e:
        print("ris_listener: %s" % e, file=sys.stderr)
    finally:
        conn.close()
