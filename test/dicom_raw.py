# test/dicom_raw.py: a DICOM upper layer client in raw bytes, for tests that must send
# what no toolkit sends (half PDUs, hostile identifiers, hundreds of idle associations).
# Standard library only (runs under python3 -S). Imported by the test scripts:
#   sys.path.insert(0, top_srcdir + "/test"); import dicom_raw as dr
import socket
import struct
import time

VERIFICATION = b"1.2.840.10008.1.1"
FIND_STUDY = b"1.2.840.10008.5.1.4.1.2.2.1"
CT_STORAGE = b"1.2.840.10008.5.1.4.1.1.2"
IVLE = b"1.2.840.10008.1.2"
EVLE = b"1.2.840.10008.1.2.1"


def uid(u):
    return u + b"\0" if len(u) % 2 else u


def item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body


def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body


def elem(g, e, v):  # implicit VR little endian, as commands are
    return struct.pack("<HHI", g, e, len(v)) + v


def identity_item(kind, primary, secondary=b"", positive=True):
    """A user identity negotiation sub-item (PS3.7 D.3.3.7): kind 1 user, 2 user and
    passcode, 5 JWT (here: a token)."""
    body = struct.pack(">BBH", kind, 1 if positive else 0, len(primary)) + primary
    body += struct.pack(">H", len(secondary)) + secondary
    return item(0x58, body)


def associate_rq(called=b"PACSMESH", calling=b"RAW_SCU", contexts=((VERIFICATION, IVLE),),
                 max_pdu=16384, identity=None):
    rq = struct.pack(">HH", 1, 0) + called.ljust(16) + calling.ljust(16) + b"\0" * 32
    rq += item(0x10, b"1.2.840.10008.3.1.1.1")
    for i, (abstract, ts) in enumerate(contexts):
        rq += item(0x20, bytes([2 * i + 1, 0, 0, 0]) + item(0x30, abstract) + item(0x40, ts))
    user = item(0x51, struct.pack(">I", max_pdu)) + item(0x52, b"1.2.826.0.1.3680043.99.9")
    if identity:
        user += identity_item(*identity)
    rq += item(0x50, user)
    return pdu(0x01, rq)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed")
        b += c
    return b


def recv_pdu(s):
    h = recv_exact(s, 6)
    t, _, n = struct.unpack(">BBI", h)
    return t, recv_exact(s, n)


def connect(port, src=None, timeout=30, tls=None):
    """tls: (certificate, key, CA) PEM paths for DICOM TLS, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(tls[0], tls[1])
        ctx.load_verify_locations(tls[2])
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def open_association(port, calling=b"RAW_SCU", contexts=((VERIFICATION, IVLE),), src=None,
                     timeout=30, called=b"PACSMESH", identity=None, tls=None):
    """An established association's socket, or raises with the rejection bytes."""
    s = connect(port, src, timeout, tls)
    s.sendall(associate_rq(called=called, calling=calling, contexts=contexts, identity=identity))
    t, b = recv_pdu(s)
    if t != 0x02:
        s.close()
        raise Rejected(t, b)
    return s


class Rejected(Exception):
    def __init__(self, t, body):
        Exception.__init__(self, "PDU type %d %s" % (t, body.hex()))
        self.type, self.body = t, body


def command(field, cls, msg_id=1, dataset=False, extra=b""):
    c = elem(0, 0x0002, uid(cls)) + elem(0, 0x0100, struct.pack("<H", field)) + \
        elem(0, 0x0110, struct.pack("<H", msg_id)) + extra + \
        elem(0, 0x0800, struct.pack("<H", 0x0001 if dataset else 0x0101))
    return elem(0, 0, struct.pack("<I", len(c))) + c


def send_command(s, cmd, pcid=1):
    s.sendall(pdu(0x04, struct.pack(">IBB", len(cmd) + 2, pcid, 3) + cmd))


def send_data(s, data, pcid=1, frag=16000):
    for k in range(0, max(len(data), 1), frag):
        part = data[k:k + frag]
        last = 2 if k + frag >= len(data) else 0
        s.sendall(pdu(0x04, struct.pack(">IBB", len(part) + 2, pcid, last) + part))


def status_of(body):
    """The (0000,0900) Status of the command in one P-DATA-TF PDU body, or None."""
    body = body[6:]
    i = 0
    while i + 8 <= len(body):
        g, e, n = struct.unpack("<HHI", body[i:i + 8])
        if (g, e) == (0, 0x0900):
            return struct.unpack("<H", body[i + 8:i + 10])[0]
        i += 8 + n
    return None


def echo(port, calling=b"RAW_ECHO", timeout=10):
    """One association, one C-ECHO, release; returns the milliseconds it took."""
    t0 = time.monotonic()
    s = open_association(port, calling=calling, timeout=timeout)
    send_command(s, command(0x0030, VERIFICATION))
    t, b = recv_pdu(s)
    if t != 0x04 or status_of(b) != 0:
        raise RuntimeError("C-ECHO failed: PDU type %d" % t)
    s.sendall(pdu(0x05, b"\0\0\0\0"))
    recv_pdu(s)
    s.close()
    return (time.monotonic() - t0) * 1000


MOVE_STUDY = b"1.2.840.10008.5.1.4.1.2.2.2"


def move_study(s, dest, study_uid, pcid=1):
    """C-MOVE of one study (Study Root) on an open association whose context pcid is
    MOVE_STUDY; returns the final status."""
    extra = elem(0, 0x0600, dest.ljust(16)) + elem(0, 0x0700, struct.pack("<H", 0))
    send_command(s, command(0x0021, MOVE_STUDY, dataset=True, extra=extra), pcid)
    ids = elem(0x0008, 0x0052, b"STUDY ") + elem(0x0020, 0x000D, uid(study_uid))
    send_data(s, ids, pcid)
    for _ in range(10000):
        t, b = recv_pdu(s)
        if t != 0x04:
            raise RuntimeError("C-MOVE: PDU type %d" % t)
        st = status_of(b)
        if st is not None and st not in (0xFF00, 0xFF01):
            return st
    raise RuntimeError("C-MOVE: no final response")


def release(s):
    s.sendall(pdu(0x05, b"\0\0\0\0"))
    recv_pdu(s)
    s.close()


def proc_status(pid):
    """Threads and VmRSS (kB) of a process, from /proc/PID/status."""
    out = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("Threads", "VmRSS"):
            out[k] = int(v.split()[0])
    return out
