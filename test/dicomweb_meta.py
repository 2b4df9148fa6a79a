# dicomweb_meta.py MINE THEIRS: WADO-RS metadata (arrays of DICOM JSON instances) must
# hold the same instances with the same attributes and values; bulk data may be a
# BulkDataURI or InlineBinary on either side (different URIs), the meta header and
# group lengths are not part of the data set. Prints what differs; exit 1 if anything.
import json, struct, sys


def f32(values):
    # An FL value is a float32: "9.69999981" and "9.699999809265137" are the same one.
    return [struct.unpack("f", struct.pack("f", v))[0] if isinstance(v, (int, float)) else v
            for v in values]

mine, theirs = (json.load(open(p)) for p in sys.argv[1:3])
def index(a):
    return {e["00080018"]["Value"][0]: e for e in a}
def keep(tag):
    return not tag.startswith("0002") and not tag.endswith("0000")
a, b = index(mine), index(theirs)
bad = []
if set(a) != set(b):
    bad.append(f"instances differ: {sorted(a)} vs {sorted(b)}")
for sop in sorted(set(a) & set(b)):
    x = {t: v for t, v in a[sop].items() if keep(t)}
    y = {t: v for t, v in b[sop].items() if keep(t)}
    if set(x) != set(y):
        bad.append(f"{sop}: tags only here {sorted(set(x) - set(y))}, only there {sorted(set(y) - set(x))}")
    for t in sorted(set(x) & set(y)):
        u, v = x[t], y[t]
        if u.get("vr") != v.get("vr"):
            bad.append(f"{sop} {t}: vr {u.get('vr')} vs {v.get('vr')}")
        elif "Value" in u or "Value" in v:
            uv, vv = u.get("Value"), v.get("Value")
            if u.get("vr") in ("FL", "OF") and uv and vv:
                uv, vv = f32(uv), f32(vv)
            if uv != vv:
                bad.append(f"{sop} {t}: {str(u)[:120]} vs {str(v)[:120]}")
for line in bad[:20]:
    print(line)
sys.exit(1 if bad else 0)
