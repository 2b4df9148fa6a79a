# dicomweb_compare.py MINE THEIRS KEYTAG REQUIRED_TAGS...: compares two QIDO-RS answers
# (DICOM JSON arrays) entity by entity (matched on KEYTAG). Every tag in REQUIRED_TAGS
# must be in both with equal values; every other tag both hold must be equal too
# (RetrieveURL and the character set excepted). Prints what differs; exit 1 if anything.
import json, sys

mine, theirs = (json.load(open(p)) for p in sys.argv[1:3])
key, required = sys.argv[3], sys.argv[4:]
skip = {"00081190", "00080005", "00080201"}


def norm(attr, tag=None):
    v = attr.get("Value", [])
    v = [x if not isinstance(x, float) or x != int(x) else int(x) for x in v]
    # ModalitiesInStudy is a set: its order carries no meaning.
    return sorted(v) if tag == "00080061" else v


def index(answer, name):
    out = {}
    for e in answer:
        k = e.get(key, {}).get("Value", [None])[0]
        if k is None:
            sys.exit(f"{name}: an entity without {key}")
        out[k] = e
    return out


a, b = index(mine, "pacsmesh"), index(theirs, "orthanc")
bad = []
if set(a) != set(b):
    bad.append(f"entities differ: pacsmesh {sorted(a)} orthanc {sorted(b)}")
for k in sorted(set(a) & set(b)):
    x, y = a[k], b[k]
    for t in required:
        if t not in x or t not in y:
            bad.append(f"{k}: {t} missing from {'pacsmesh' if t not in x else 'orthanc'}")
    for t in sorted(set(x) & set(y) - skip):
        if norm(x[t], t) != norm(y[t], t) or x[t]["vr"] != y[t]["vr"]:
            bad.append(f"{k}: {t} pacsmesh {x[t]} orthanc {y[t]}")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
