"""bench/wado_timer.py URL [USER:PASSWORD]: one WADO-RS retrieve of a study, timed.

Prints "first_ms total_ms parts bytes": when the first part (instance) had wholly
arrived, when the answer ended, how many parts and bytes it carried. The body is read
and dropped (the client's disk is not measured)."""
import base64
import re
import sys
import time
import urllib.request

url = sys.argv[1]
req = urllib.request.Request(
    url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
if len(sys.argv) > 2:
    req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
t0 = time.monotonic()
with urllib.request.urlopen(req, timeout=600) as resp:
    boundary = re.search(r'boundary="?([^";]+)"?', resp.headers["Content-Type"]).group(1)
    marker = b"--" + boundary.encode()
    first_ms, seen, total, tail = None, 0, 0, b""
    while True:
        block = resp.read1(1 << 20)
        if not block:
            break
        total += len(block)
        data = tail + block
        seen += data.count(marker) - tail.count(marker)
        tail = data[-len(marker):]
        if first_ms is None and seen >= 2:  # the second delimiter ends the first part
            first_ms = (time.monotonic() - t0) * 1000
total_ms = (time.monotonic() - t0) * 1000
print("%.0f %.0f %d %d" % (first_ms or total_ms, total_ms, max(seen - 1, 0), total))
