#!/usr/bin/python3
# test/hostile_dicom.py: writes hostile DICOM files, byte by byte (no toolkit would
# write them). Used by test/test_dicom_hostile.sh and to seed the fuzz corpora.
#
#   hostile_dicom.py KIND OUT [N] [SOP_UID] [STUDY_UID] [PATIENT_ID]
#
# KIND:
#   deep        N nested sequences of undefined length (explicit VR LE) inside a valid
#               CT image header
#   deep-defined  the same with defined lengths
#   deep-implicit the same in implicit VR LE (unknown private tags of undefined length)
#   deep-un     N nested UN elements of undefined length (CP-246: read as sequences)
#   wide        N empty elements (a flat header of N elements)
#   huge-length an element claiming 0xFFFFFFF0 bytes
#   truncated   a valid header cut in the middle of a nested sequence
# The file is a Part-10 file (preamble, meta group) unless OUT ends in .raw, which gets
# the bare data set. The UIDs default to fresh ones; N defaults to 10000.
import os
import struct
import sys
import uuid

CT = b"1.2.840.10008.5.1.4.1.1.2"
EVLE = b"1.2.840.10008.1.2.1"
IVLE = b"1.2.840.10008.1.2"


def fresh_uid():
    return "2.25.%d" % uuid.uuid4().int


def pad(v, c=b" "):
    return v + c if len(v) % 2 else v


def ex(g, e, vr, v):  # explicit VR LE element
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(v)) + v
    return struct.pack("<HH2sH", g, e, vr, len(v)) + v


def im(g, e, v):  # implicit VR LE element
    return struct.pack("<HHI", g, e, len(v)) + v


def header(sop, study, series, pid, enc):
    el = ex if enc == "explicit" else (lambda g, e, vr, v: im(g, e, v))
    return (el(0x0008, 0x0016, b"UI", pad(CT, b"\0")) +
            el(0x0008, 0x0018, b"UI", pad(sop.encode(), b"\0")) +
            el(0x0008, 0x0060, b"CS", b"CT") +
            el(0x0010, 0x0010, b"PN", pad(b"HOSTILE^TEST")) +
            el(0x0010, 0x0020, b"LO", pad(pid.encode())) +
            el(0x0020, 0x000D, b"UI", pad(study.encode(), b"\0")) +
            el(0x0020, 0x000E, b"UI", pad(series.encode(), b"\0")))


ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def deep_undefined(n, opener):
    # opener: the header of one nested element of undefined length
    return (opener + ITEM) * n + (ITEM_END + SEQ_END) * n


def deep_defined(n):
    body = b""
    for _ in range(n):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
        body = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, len(item)) + item
    return body


def meta(ts, sop):
    els = (ex(0x0002, 0x0001, b"OB", b"\0\1") +
           ex(0x0002, 0x0002, b"UI", pad(CT, b"\0")) +
           ex(0x0002, 0x0003, b"UI", pad(sop.encode(), b"\0")) +
           ex(0x0002, 0x0010, b"UI", pad(ts, b"\0")) +
           ex(0x0002, 0x0012, b"UI", pad(b"1.2.826.0.1.3680043.99.1", b"\0")))
    return b"\0" * 128 + b"DICM" + ex(0x0002, 0x0000, b"UL", struct.pack("<I", len(els))) + els


def build(kind, n, sop, study, pid):
    series = fresh_uid()
    enc = "implicit" if kind == "deep-implicit" else "explicit"
    h = header(sop, study, series, pid, enc)
    if kind == "deep":
        body = deep_undefined(n, struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF))
    elif kind == "deep-defined":
        body = deep_defined(n)
    elif kind == "deep-implicit":
        body = deep_undefined(n, struct.pack("<HHI", 0x0009, 0x1010, 0xFFFFFFFF))
    elif kind == "deep-un":
        # the outer UN in explicit VR; inside it, CP-246 implicit VR LE
        inner = deep_undefined(n - 1, struct.pack("<HHI", 0x0009, 0x1010, 0xFFFFFFFF))
        body = (struct.pack("<HH2sHI", 0x0009, 0x1010, b"UN", 0, 0xFFFFFFFF) + ITEM + inner +
                ITEM_END + SEQ_END)
    elif kind == "wide":
        body = b"".join(struct.pack("<HH2sH", 0x0029, 0x1000 + (k % 0xEFFF), b"LO", 0)
                        for k in range(n))
    elif kind == "huge-length":
        body = struct.pack("<HH2sHI", 0x0029, 0x1010, b"OB", 0, 0xFFFFFFF0) + b"\0" * 64
    elif kind == "truncated":
        body = deep_undefined(20, struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF))
        body = body[:len(body) // 2 + 3]
    else:
        sys.exit("unknown kind " + kind)
    # Elements must be in tag order for a well-formed header; the hostile part goes
    # where its tag belongs: after (0008,...) / before (0010,...) for group 0009, at the
    # end otherwise. dcmtk reads either way.
    if kind in ("deep-implicit", "deep-un"):
        # the private creator of (0009,10xx), then the nesting, before (0010,0010)
        creator = (im(0x0009, 0x0010, pad(b"HOSTILE")) if enc == "implicit"
                   else ex(0x0009, 0x0010, b"LO", pad(b"HOSTILE")))
        split = h.index(struct.pack("<HH", 0x0010, 0x0010))
        ds = h[:split] + creator + body + h[split:]
    else:
        ds = h + body
    return ds, (IVLE if enc == "implicit" else EVLE)


def main():
    kind, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else 10000
    sop = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else fresh_uid()
    study = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else fresh_uid()
    pid = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else "HOSTILE01"
    ds, ts = build(kind, n, sop, study, pid)
    with open(out, "wb") as f:
        if not out.endswith(".raw"):
            f.write(meta(ts, sop))
        f.write(ds)
    print(sop)


if __name__ == "__main__":
    main()
