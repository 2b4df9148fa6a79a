#!/usr/bin/python3
"""Exits 0 if two DICOM files hold the same data set (every element, pixel data
included), ignoring the Part-10 file meta header, which a DICOM receiver writes
itself: over the network only the data set travels."""
import sys
import pydicom

a, b = (pydicom.dcmread(p) for p in sys.argv[1:3])
# Data Set Trailing Padding is not part of what a sender transmits (storescu drops it).
for d in (a, b):
    if (0xFFFC, 0xFFFC) in d:
        del d[0xFFFC, 0xFFFC]
if a != b:
    print(f"data sets differ: {sys.argv[1]} {sys.argv[2]}", file=sys.stderr)
    sys.exit(1)
