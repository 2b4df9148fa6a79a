#!/bin/bash
# The audit trail of a multi-node scenario (docs/pacsmesh.1, Audit), through the CLI only:
#   - an export from any node verifies (exit 0);
#   - `audit replay FILE --until T` at moments between the steps reproduces the digest
#     every node showed at that moment;
#   - every single-byte change of the export, at >= 200 random positions (and at the
#     magic, the framing and the trailer), makes `audit verify` fail with exit 1;
#   - `audit log --json` lists the SPEC's event types, study-accessed with its study and
#     reader;
#   - a revoked node: its events before the revocation stand; an event it wrote after
#     the revocation (it was cut off and did not know) is flagged with its origin and
#     seq when an auditor verifies the union of its log and the mesh's.
# Trusts A=1, B=2, C=3 and D=4 (D is revoked).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2 C=3 D=4
FLIPS=${FLIPS:-240}
mesh_create 4
conf_add $A worklist 'rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro double_read=yes'
wl_mesh_up

declare -a STEP_NAME=() STEP_MS=() STEP_DIGEST=()
# step NAME: the nodes have converged after NAME; records the digest and the moment.
step()
{
    local nodes=($A $B $C)
    node_alive $D && nodes+=($D)
    wait_until 30 digests_equal "${nodes[@]}"
    STEP_NAME+=("$1")
    STEP_DIGEST+=("$(digest_of $A)")
    STEP_MS+=("$(now_ms)")
    sleep 0.05 # the next step's events carry a later wall time than the recorded moment
    log "step '$1': digest ${STEP_DIGEST[-1]:0:16}"
}

S=$T/studies
U1=$(new_uid) U2=$(new_uid)
step "mesh formed"
import_study $A "$S" "$U1" CT HEAD "CT HEAD" 3
import_study $B "$S" "$U2" MR KNEE "MR KNEE"
step "two studies announced"
pm $B claim "$U1" --reporter dr.bell >/dev/null || fail "claim failed"
pm $D claim "$U2" --reporter dr.dunn >/dev/null || fail "claim at D failed"
step "claimed at B and D"
pm $D release "$U2" --reporter dr.dunn >/dev/null || fail "release at D failed"
out=$(USER=dr.bell pm $B fetch "$U1" 2>&1) || fail "fetch at B failed: $out"
step "released at D; B read A's study"
printf 'CT head: no acute abnormality.\n' >"$T/r.txt"
pm $B report "$U1" --reporter dr.bell --file "$T/r.txt" >/dev/null || fail "report failed"
step "reported at B"
pm $C verify "$U1" --reporter dr.cole >/dev/null || fail "verify failed"
step "verified at C"

log "an export from every node verifies"
for i in $A $B $C $D; do
    pm $i audit export --out "$T/n$i.audit" >/dev/null || fail "export on node $i failed"
    out=$(pm $i audit verify "$T/n$i.audit" 2>&1) || fail "verify of node $i's export failed: $out"
done
cmp -s "$T/n$A.audit" "$T/n$C.audit" || fail "converged nodes A and C exported different files"
pm $B audit verify >/dev/null || fail "audit verify of B's own store failed"
log "   $out"

log "replay at the recorded moments reproduces the digests the nodes showed"
for k in "${!STEP_MS[@]}"; do
    until_iso=$(iso_of_ms "${STEP_MS[k]}")
    got=$(pm $C audit replay "$T/n$A.audit" --until "$until_iso" --json |
        $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["digest"])') ||
        fail "replay until $until_iso failed"
    [ "$got" = "${STEP_DIGEST[k]}" ] ||
        fail "replay until $until_iso (after '${STEP_NAME[k]}'): digest $got, the nodes showed ${STEP_DIGEST[k]}"
    log "   after '${STEP_NAME[k]}' ($until_iso): $got"
done
# The replayed worklist at the claim step shows the claim.
got=$(pm $A audit replay "$T/n$A.audit" --until "$(iso_of_ms "${STEP_MS[2]}")" --json |
    $PYTHON -c 'import json,sys
d = json.load(sys.stdin)
print(next(w["state"] + ":" + str(w["claimed_by"]) for w in d["worklist"] if w["study_uid"] == sys.argv[1]))' "$U1")
[ "$got" = claimed:dr.bell ] || fail "replayed worklist at the claim step: $got"

log "audit log --json lists the SPEC's event types"
pm $A audit log "$T/n$A.audit" --json >"$T/log.json" || fail "audit log failed"
$PYTHON - "$T/log.json" "$U1" "${NODE_ID[B]}" <<'EOF' || fail "audit log lacks what the man page lists"
import json, sys
log, study, b = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
types = {e["type"] for e in log}
want = {"genesis", "member-admitted", "study-announced", "item-claimed", "item-released",
        "report-submitted", "report-verified", "study-accessed"}
missing = want - types
assert not missing, f"missing event types {missing} (have {types})"
for e in log:
    for k in ("origin", "seq", "lamport", "time", "type"):
        assert k in e, f"{k} missing from {e}"
acc = [e for e in log if e["type"] == "study-accessed"]
assert any(e.get("study_uid") == study and e.get("reporter") == "dr.bell" and e["origin"] == b
           for e in acc), f"no study-accessed by dr.bell at B for the study: {acc}"
for t in ("item-claimed", "report-submitted", "report-verified"):
    assert all(e.get("study_uid") and e.get("reporter") for e in log if e["type"] == t), t
order = [(e["lamport"], e["origin"], e["seq"]) for e in log]
assert order == sorted(order), "events are not in the total order"
print(f"# {len(log)} events, types {sorted(types)}")
EOF
n=$(pm $A audit log "$T/n$A.audit" --study "$U1" --json | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" -ge 5 ] || fail "audit log --study lists $n events of the study"

log "every single-byte change of the export fails verification (${FLIPS} random positions)"
$PYTHON - "$T/n$A.audit" "$PACSMESH" "$FLIPS" "$T/flip" <<'EOF' || fail "a changed byte was not detected"
import os, random, subprocess, sys
path, pm, n, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = open(path, "rb").read()
rng = random.Random(int.from_bytes(os.urandom(8), "little"))
size = len(data)
# The magic, the version, the first record's framing, the trailer; then random ones.
fixed = [0, 14, 15, 16, 17, 18, 21, 22, size - 33, size - 32, size - 1]
positions = fixed + [rng.randrange(size) for _ in range(n - len(fixed))]
located = inrecord = 0
for pos in positions:
    b = bytearray(data)
    b[pos] ^= rng.randrange(1, 256)
    open(tmp, "wb").write(b)
    r = subprocess.run([pm, "audit", "verify", tmp], capture_output=True, text=True)
    if r.returncode != 1:
        print(f"FAIL: byte {pos} of {size} changed: audit verify exited {r.returncode}\n{r.stdout}{r.stderr}")
        sys.exit(1)
    if 17 <= pos < size - 33:
        inrecord += 1
        located += "origin" in r.stdout or "byte" in r.stderr
print(f"# {len(positions)} single-byte changes over {size} bytes: every one fails (exit 1); "
      f"{located} of {inrecord} inside records say where (origin/seq or byte offset)")
EOF

log "a revoked node: events before the revocation stand, one after it is flagged"
node_stop $D # D is cut off: it will not hear of its revocation
pm $A revoke "${NODE_ID[D]}" --reason "laptop stolen" >/dev/null || fail "revoke failed"
# What stands of D is what the revocation says its approver held (sequence numbers, which
# D cannot backdate, unlike its Lamport clock): "its events up to seq N stand".
d_before=$(pm $A audit log --json | $PYTHON -c 'import json,sys,re
ev = [e for e in json.load(sys.stdin) if e["type"] == "member-revoked"][-1]
print(re.search(r"up to seq (\d+) stand", ev["detail"]).group(1))') || fail "no cut in the revocation"
for i in $A $B $C; do wait_until 20 is_not_member $i "${NODE_ID[D]}"; done
# D, unaware, keeps working (a reporter claims and releases at its console).
for k in 1 2 3 4 5 6; do
    pm $D claim "$U2" --reporter dr.dunn >/dev/null || fail "claim at D failed"
    pm $D release "$U2" --reporter dr.dunn >/dev/null || fail "release at D failed"
done
pm $A audit export --out "$T/mesh.audit" >/dev/null || fail "export after the revocation failed"
pm $A audit verify "$T/mesh.audit" >/dev/null ||
    fail "the mesh's log (D's events before its revocation, and the revocation) must verify"
pm $D audit export --out "$T/d.audit" >/dev/null || fail "export on D failed"
pm $D audit verify "$T/d.audit" >/dev/null || fail "D's own log (no revocation in it) must verify"
# The auditor merges the two logs (every record once, in the total order, trailer
# recomputed as audit-format.md says) and verifies the union.
$PYTHON - "$T/mesh.audit" "$T/d.audit" "$T/union.audit" <<'EOF' || fail "cannot merge the logs"
import hashlib, struct, sys
MAGIC = b"PACSMESH-AUDIT\n1\n"
def records(path):
    d = open(path, "rb").read()
    assert d.startswith(MAGIC)
    i, out = len(MAGIC), []
    while d[i:i+1] != b"Z":
        kind, n = d[i:i+1], struct.unpack(">I", d[i+1:i+5])[0]
        out.append((kind, d[i+5:i+5+n]))
        i += 5 + n
    return out
seen, events = set(), []
for path in sys.argv[1:3]:
    for kind, env in records(path):
        if kind == b"E" and env not in seen:
            seen.add(env)
            events.append(env)
out = bytearray(MAGIC)
for env in events:
    out += b"E" + struct.pack(">I", len(env)) + env
open(sys.argv[3], "wb").write(bytes(out) + b"Z" + hashlib.blake2b(bytes(out), digest_size=32).digest())
EOF
# Put the union in the total order (lamport, origin, seq), read by `audit log`.
pm $A audit log "$T/union.audit" --json >"$T/union.json" || fail "audit log of the union failed"
$PYTHON - "$T/union.audit" "$T/union.json" "$T/union.sorted.audit" <<'EOF' || fail "cannot sort the union"
import hashlib, json, struct, sys
MAGIC = b"PACSMESH-AUDIT\n1\n"
d = open(sys.argv[1], "rb").read()
i, recs = len(MAGIC), []
while d[i:i+1] != b"Z":
    n = struct.unpack(">I", d[i+1:i+5])[0]
    recs.append(d[i:i+5+n]); i += 5 + n
log = json.load(open(sys.argv[2]))
assert len(log) == len(recs)
keyed = sorted(zip([(e["lamport"], e["origin"], e["seq"]) for e in log], recs))
out = MAGIC + b"".join(r for _, r in keyed)
open(sys.argv[3], "wb").write(out + b"Z" + hashlib.blake2b(out, digest_size=32).digest())
EOF
rc=0
pm $A audit verify "$T/union.sorted.audit" >"$T/v.out" 2>"$T/v.err" || rc=$?
[ "$rc" = 1 ] || fail "the union with D's post-revocation events verified (exit $rc): $(cat "$T/v.out")"
pm $A audit log "$T/union.sorted.audit" --json >"$T/union.json"
$PYTHON - "$T/union.json" "${NODE_ID[D]}" "$T/v.out" "$d_before" <<'EOF' || fail "the flagged events are not exactly D's after its revocation"
import json, re, sys
log, d, out, d_before = json.load(open(sys.argv[1])), sys.argv[2], open(sys.argv[3]).read(), int(sys.argv[4])
rev = next(e for e in log if e["type"] == "member-revoked" and d in e.get("detail", ""))
at = (rev["lamport"], rev["origin"], rev["seq"])
# After the revocation means past its cut (the sequence its approver held), whatever
# Lamport clock D gave its later events.
after = {e["seq"] for e in log if e["origin"] == d and e["seq"] > d_before}
before = {e["seq"] for e in log if e["origin"] == d} - after
fails = {int(s): why for o, s, why in re.findall(r"FAIL origin ([0-9a-f]{64}) seq (\d+): (.*)", out) if o == d}
flagged = set(fails)
others = [l for l in out.splitlines() if l.startswith("FAIL") and d not in l]
assert after, "D wrote nothing after its revocation in the total order"
assert flagged == after, f"flagged {sorted(flagged)}, D's events after the revocation {sorted(after)}"
assert not others, f"other events flagged: {others}"
first = min(after)
reasons = sorted(set(fails.values()))
assert reasons == ["author was revoked before this event"], f"reasons given: {reasons}"
assert set(range(1, d_before + 1)) <= before, "D's events from before the revocation must stand"
print(f"# D's seqs 1..{max(before)} stand; seqs {sorted(after)} flagged (revocation at lamport {at[0]}); "
      f"seq {first}: '{fails[first]}'; reasons given: {reasons}")
EOF
head -n 2 "$T/v.out" | sed 's/^/#   /'
nodes_alive $A $B $C
echo "PASS: $TEST_NAME"
