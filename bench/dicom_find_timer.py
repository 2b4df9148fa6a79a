#!/usr/bin/python3
"""C-FIND latency without process start-up: one association to 127.0.0.1:PORT
(called AE ARGV[2]), then RUNS Study Root C-FINDs at STUDY level with the keys given
as KEYWORD=VALUE, each timed from the request's first byte to the final response, and
to the first match (what a viewer shows first, for a query of many matches).
Prints: "<matches> <min_ms> <median_ms> <mean_ms> <median_first_match_ms>" (the last
"-" when nothing matches).

    dicom_find_timer.py PORT AE RUNS PatientID=P0001000 [StudyDate=...]

Used by bench/bench_dicom.sh, for pacsmesh and Orthanc alike. Plain sockets and
pydicom (to encode the identifier); no network library."""
import socket
import statistics
import struct
import sys
import time

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

FIND = b"1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND
EVLE = b"1.2.840.10008.1.2.1"


def item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body


def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body


def elem(g, e, v):
    return struct.pack("<HHI", g, e, len(v)) + v


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed")
        b += c
    return b


def recv_pdu(s):
    t, _, n = struct.unpack(">BBI", recv_exact(s, 6))
    return t, recv_exact(s, n)


def status_of(cmd):
    i = 0
    while i + 8 <= len(cmd):
        g, e, n = struct.unpack("<HHI", cmd[i:i + 8])
        if (g, e) == (0, 0x0900):
            return struct.unpack("<H", cmd[i + 8:i + 10])[0]
        i += 8 + n
    return None


def main():
    port, ae, runs = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientName = ""
    ds.StudyDate = ""
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        setattr(ds, k, v)
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    ident = buf.getvalue()

    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rq = struct.pack(">HH", 1, 0) + ae.ljust(16) + b"VIEWER_B".ljust(16) + b"\0" * 32
    rq += item(0x10, b"1.2.840.10008.3.1.1.1")
    rq += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, FIND) + item(0x40, EVLE))
    rq += item(0x50, item(0x51, struct.pack(">I", 131072)) +
               item(0x52, b"1.2.826.0.1.3680043.99.9"))
    s.sendall(pdu(0x01, rq))
    t, _ = recv_pdu(s)
    if t != 0x02:
        sys.exit("association refused")
    times, firsts, matches = [], [], 0
    for run in range(runs):
        uid = FIND + b"\0"
        cmd = elem(0, 0x0002, uid) + elem(0, 0x0100, struct.pack("<H", 0x20)) + \
            elem(0, 0x0110, struct.pack("<H", run + 1)) + elem(0, 0x0700, struct.pack("<H", 0)) + \
            elem(0, 0x0800, struct.pack("<H", 0))
        cmd = elem(0, 0, struct.pack("<I", len(cmd))) + cmd
        msg = pdu(0x04, struct.pack(">IBB", len(cmd) + 2, 1, 3) + cmd)
        msg += pdu(0x04, struct.pack(">IBB", len(ident) + 2, 1, 2) + ident)
        t0 = time.perf_counter()
        s.sendall(msg)
        n, command, done = 0, b"", False
        while not done:
            t, body = recv_pdu(s)
            if t != 0x04:
                sys.exit("association ended (PDU type %d)" % t)
            i = 0
            while i < len(body):
                plen = struct.unpack(">I", body[i:i + 4])[0]
                ctl, data = body[i + 5], body[i + 6:i + 4 + plen]
                i += 4 + plen
                if ctl & 1:
                    command += data
                    if ctl & 2:
                        st = status_of(command)
                        command = b""
                        if st in (0xFF00, 0xFF01):
                            if n == 0:
                                firsts.append((time.perf_counter() - t0) * 1000)
                            n += 1
                        else:
                            done = True
        times.append((time.perf_counter() - t0) * 1000)
        matches = n
    s.sendall(pdu(0x05, b"\0\0\0\0"))
    try:
        recv_pdu(s)
    except Exception:
        pass
    first = "%.2f" % statistics.median(firsts) if firsts else "-"
    print("%d %.2f %.2f %.2f %s" % (matches, min(times), statistics.median(times),
                                    statistics.mean(times), first))


if __name__ == "__main__":
    main()
