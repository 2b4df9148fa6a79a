# dicomweb_parts.py HEADERS BODY OUTDIR: splits a multipart/related answer (headers as
# curl -D wrote them) into OUTDIR/part-N (N from 1); prints the number of parts and
# each part's Content-Type, one per line.
import os, re, sys

headers, body, outdir = sys.argv[1:4]
ctype = ""
for line in open(headers, encoding="latin-1"):
    if line.lower().startswith("content-type:"):
        ctype = line.split(":", 1)[1].strip()
m = re.search(r'boundary="?([^";]+)"?', ctype)
if not ctype.startswith("multipart/related") or not m:
    sys.exit(f"not multipart/related: {ctype!r}")
data = open(body, "rb").read()
sep = b"--" + m.group(1).encode()
chunks = data.split(sep)
parts = []
for c in chunks[1:]:
    if c.startswith(b"--"):
        break
    head, _, payload = c.partition(b"\r\n\r\n")
    if payload.endswith(b"\r\n"):
        payload = payload[:-2]
    ct = re.search(rb"(?im)^content-type:\s*(.+?)\s*$", head)
    parts.append((ct.group(1).decode() if ct else "", payload))
os.makedirs(outdir, exist_ok=True)
print(len(parts))
for i, (ct, payload) in enumerate(parts, 1):
    open(os.path.join(outdir, f"part-{i}"), "wb").write(payload)
    print(ct)
