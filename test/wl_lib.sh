# test/wl_lib.sh: helpers for the worklist and audit integration tests (sourced after
# test/lib.sh, whose helpers it uses and never changes).
#
#   make_study DIR UID MODALITY BODY_PART DESCRIPTION [INSTANCES]
#       writes a small synthetic study (pydicom's CT_small.dcm as the pixel template,
#       every identifier replaced: no real patient data) into DIR/UID/.
#   new_uid           prints a fresh DICOM UID (2.25.<random>, PS3.5 B.2).
#   item I UID EXPR   evaluates EXPR on study UID's worklist object on node I (bound to
#                     w; prints "absent" when node I has no such item).
#   expect_exit CODE PATTERN CMD...  runs CMD; it must exit CODE and print one line on
#                     stderr matching PATTERN (grep -E, case-insensitive).
#   unchanged_by I CMD...  CMD must leave node I's digest and event count as they were.

# pydicom lives in the system interpreter's site packages, which lib.sh's quick
# "python3 -S" leaves out.
PYDICOM_PY=${PYDICOM_PY:-/usr/bin/python3}
PYDICOM_TEMPLATE=${PYDICOM_TEMPLATE:-/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm}

wl_need_pydicom()
{
    "$PYDICOM_PY" -c 'import pydicom' 2>/dev/null || skip "pydicom is not installed (apt-get install python3-pydicom)"
    [ -r "$PYDICOM_TEMPLATE" ] || skip "pydicom's test file $PYDICOM_TEMPLATE is missing"
}

new_uid()
{
    printf '2.25.%s\n' "$(od -An -N12 -tu8 /dev/urandom | tr -d ' \n' | cut -c1-30 | sed 's/^0*//')"
}

# make_study DIR UID MODALITY BODY_PART DESCRIPTION [INSTANCES]
make_study()
{
    "$PYDICOM_PY" - "$PYDICOM_TEMPLATE" "$@" <<'EOF' || fail "cannot write a synthetic study"
import os, sys, pydicom
from pydicom.uid import generate_uid
tpl, out, uid, modality, body, desc = sys.argv[1:7]
n = int(sys.argv[7]) if len(sys.argv) > 7 else 1
d = os.path.join(out, uid)
os.makedirs(d, exist_ok=True)
pid = "SYN" + uid[-8:].replace(".", "0")
# "OCT,CT": one series per modality, in that order, whichever order the node sorts
# them in (series and instance UIDs ascend with it).
mods = modality.split(",")
plan = list(zip(mods, sorted(generate_uid() for _ in mods)))
sops = iter(sorted(generate_uid() for _ in range(n * len(mods))))
for i, (modality, series) in ((i, p) for p in plan for i in range(n)):
    ds = pydicom.dcmread(tpl)
    ds.StudyInstanceUID = uid
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = next(sops)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = modality
    ds.BodyPartExamined = body
    ds.StudyDescription = desc
    ds.PatientName = "SYNTHETIC^TEST" + uid[-4:]
    ds.PatientID = pid
    ds.PatientBirthDate = "19700101"
    ds.AccessionNumber = "ACC" + uid[-6:].replace(".", "0")
    ds.InstanceNumber = i + 1 + n * [p[0] for p in plan].index(modality)
    ds.InstitutionName = "Synthetic"
    ds.ReferringPhysicianName = "SYNTHETIC^REF"
    ds.save_as(os.path.join(d, "%04d.dcm" % (ds.InstanceNumber - 1)), write_like_original=True)
EOF
}

# import_study I DIR UID MODALITY BODY_PART DESCRIPTION: makes and imports a study on
# node I.
import_study()
{
    local i=$1 dir=$2 uid=$3
    shift 3
    make_study "$dir" "$uid" "$@"
    local out
    out=$(pm "$i" import "$dir/$uid" 2>&1) || fail "import of $uid on node $i failed: $out"
}

# item I UID EXPR: EXPR evaluated on the worklist object w of study UID on node I.
item()
{
    local out
    out=$(pm "$1" worklist --json) || return 1
    printf '%s' "$out" | $PYTHON -c 'import json,sys
d = json.load(sys.stdin)
w = next((x for x in d if x["study_uid"] == sys.argv[1]), None)
if w is None:
    print("absent")
else:
    r = eval(sys.argv[2])
    print(str(r).lower() if isinstance(r, bool) else r)' "$2" "$3"
}

# item_is I UID EXPR: true when EXPR holds for the item on node I (for wait_until).
item_is() { [ "$(item "$1" "$2" "$3")" = true ]; }

# item_is_all UID EXPR [NODES...]: true when EXPR holds on every node given (default:
# every node).
item_is_all()
{
    local uid=$1 expr=$2 i
    shift 2
    local nodes=("$@")
    [ ${#nodes[@]} = 0 ] && nodes=("${!NODE_DIR[@]}")
    for i in "${nodes[@]}"; do item_is "$i" "$uid" "$expr" || return 1; done
}

# expect_exit CODE PATTERN CMD...: CMD must exit CODE, saying why on stderr.
EXPECT_ERR=
expect_exit()
{
    local code=$1 pat=$2 rc=0
    shift 2
    EXPECT_ERR=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = "$code" ] || fail "expected exit $code, got $rc from: $* (stderr: $EXPECT_ERR)"
    [ -n "$EXPECT_ERR" ] || fail "no message on stderr from: $*"
    # grep reads all of it (not -q): under pipefail an early exit could fail printf
    # with SIGPIPE and read as no match.
    printf '%s\n' "$EXPECT_ERR" | grep -iE -- "$pat" >/dev/null ||
        fail "stderr of '$*' does not match /$pat/: $EXPECT_ERR"
    log "refused as expected (exit $rc): ${EXPECT_ERR%%$'\n'*}"
}

# unchanged_by I CMD...: runs CMD (which may fail); node I's digest and event count
# must be what they were.
unchanged_by()
{
    local i=$1
    shift
    local d0 e0 d1 e1
    d0=$(digest_of "$i") && e0=$(events_count "$i") || fail "cannot read node $i"
    "$@"
    d1=$(digest_of "$i") && e1=$(events_count "$i") || fail "cannot read node $i"
    [ "$d0" = "$d1" ] && [ "$e0" = "$e1" ] ||
        fail "'$*' changed node $i (digest $d0 -> $d1, events $e0 -> $e1)"
}

# conf_add I SECTION LINE: appends LINE to SECTION of node I's node.conf (for keys that
# may repeat, such as `rule`, which node_set_conf would replace).
conf_add()
{
    $PYTHON - "${NODE_DIR[$1]}/node.conf" "$2" "$3" <<'EOF' || fail "cannot edit node.conf"
import sys
path, section, line = sys.argv[1:4]
lines = open(path).read().split("\n")
out, cur, done = [], None, False
for l in lines:
    s = l.strip()
    if s.startswith("[") and s.endswith("]"):
        if cur == section and not done:
            out.append(line)
            done = True
        cur = s[1:-1]
    out.append(l)
if not done:
    if cur != section:
        out.append(f"[{section}]")
    out.append(line)
open(path, "w").write("\n".join(out) + ("" if out[-1] == "" else "\n"))
EOF
}

# status_field I EXPR: EXPR on node I's `status --json` (bound to d).
status_field() { pmjson "$1" status -- "$2"; }

# iso_now: the current time in the ISO 8601 UTC form `audit replay --until` takes.
iso_now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

# iso_of_ms MS: ms since the epoch as ISO 8601 UTC with milliseconds.
iso_of_ms() { date -u -d "@$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ; }

# wl_mesh_up [NODES...]: starts the nodes (default: every node) and waits until every
# one sees every other up. A peer whose CURVE handshake was refused because the
# refusing node had not yet learnt its admission is never redialled (libzmq 4.3 ends
# the session on a ZAP failure; see the report of issue 5), so the nodes are started
# once to learn the membership from the founder, then restarted: from then on every
# node knows every member before anyone dials it.
wl_mesh_up()
{
    local nodes=("$@") i
    [ ${#nodes[@]} = 0 ] && nodes=("${!NODE_DIR[@]}")
    for i in "${nodes[@]}"; do node_start "$i"; done
    wait_until 30 digests_equal "${nodes[@]}"
    for i in "${nodes[@]}"; do wait_until 30 is_member "$i" "${NODE_ID[${nodes[-1]}]}"; done
    for i in "${nodes[@]}"; do node_stop "$i"; done
    for i in "${nodes[@]}"; do node_start "$i"; done
    for i in "${nodes[@]}"; do wait_until 30 members_ok "$i" "${#nodes[@]}"; done
}
