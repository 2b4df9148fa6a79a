#!/bin/bash
# Prometheus metrics from a running node ([metrics] listen): GET /metrics answers 200
# in the text format 0.0.4, every family has one HELP and one TYPE line, every sample
# is pacsmesh_* with a number, and the values follow what the node did (events held,
# peers up, C-STORE and C-FIND counts, worklist by state). Another path is 404. A node
# whose metrics port is taken refuses to start; a node without [metrics] runs as before.
. "$(dirname "$0")/lib.sh"

grep -qa pacsmesh_events_held "$PACSMESH" ||
    skip "this pacsmesh does not serve metrics yet (node/daemon/metrics_http.c is not wired into 'run')"
command -v storescu >/dev/null && command -v findscu >/dev/null || skip "dcmtk tools are missing"
DATA=/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm
[ -r "$DATA" ] || skip "python3-pydicom's test data ($DATA) is missing"

# http PATH: prints "STATUS<TAB>CONTENT-TYPE" then the body, from node 1's metrics port.
http()
{
    $PYTHON - "$METRICS_PORT" "$1" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(f"{r.status}\t{r.getheader('Content-Type')}")
sys.stdout.write(r.read().decode())
EOF
}

# metric NAME [LABELS]: the sample's value, e.g. metric pacsmesh_worklist_items 'state="claimed"'.
metric()
{
    local out
    out=$(http /metrics) || return 1
    printf '%s\n' "$out" | $PYTHON -c '
import sys
want = sys.argv[1] + ("{" + sys.argv[2] + "}" if sys.argv[2] else "")
for line in sys.stdin:
    if line.startswith(want + " "):
        print(line.split()[-1]); sys.exit(0)
sys.exit(1)' "$1" "${2:-}"
}

metric_at_least() { [ "$($PYTHON -c "print(float('$(metric "$1" "${3:-}")') >= $2)")" = True ]; }

mesh_create 2
alloc_port
METRICS_PORT=$PORT
node_set_conf 1 metrics listen "127.0.0.1:$METRICS_PORT"
node_start_all
wait_until 20 members_ok 1 2
wait_until 20 members_ok 2 2

# Format.
out=$(http /metrics) || fail "GET /metrics failed"
head=$(printf '%s\n' "$out" | head -n 1)
[ "$head" = "$(printf '200\ttext/plain; version=0.0.4; charset=utf-8')" ] ||
    fail "GET /metrics answered '$head'"
printf '%s\n' "$out" | tail -n +2 | $PYTHON -c '
import re, sys
helps, types, samples = {}, {}, []
for n, line in enumerate(sys.stdin, 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        name = line.split()[2]
        assert name not in helps, f"line {n}: second HELP for {name}"
        helps[name] = n
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        assert name not in types, f"line {n}: second TYPE for {name}"
        assert kind in ("counter", "gauge"), f"line {n}: type {kind}"
        types[name] = kind
    else:
        m = re.fullmatch(r"(pacsmesh_[a-zA-Z0-9_:]*)(\{[a-z_]+=\"[^\"]*\"\})? (\S+)", line)
        assert m, f"line {n} is not a sample: {line!r}"
        float(m.group(3))
        assert m.group(1) in types, f"line {n}: {m.group(1)} has no TYPE line before it"
        if types[m.group(1)] == "counter":
            assert m.group(1).endswith("_total"), f"counter {m.group(1)} is not named _total"
        samples.append(m.group(1))
need = ["pacsmesh_events_held", "pacsmesh_peers_up", "pacsmesh_gossip_events_ingested_total",
        "pacsmesh_fetch_bytes_total", "pacsmesh_fetch_last_duration_seconds",
        "pacsmesh_dicom_stores_total", "pacsmesh_dicom_finds_total", "pacsmesh_dicom_retrieves_total",
        "pacsmesh_cache_bytes", "pacsmesh_worklist_items", "pacsmesh_worklist_overdue",
        "pacsmesh_feed_head_seq", "pacsmesh_build_info"]
missing = [x for x in need if x not in samples]
assert not missing, f"missing metrics: {missing}"
print(f"# {len(samples)} samples in {len(types)} families")
' || fail "the exposition is not well formed (above)"

status_of() { local out; out=$(http "$1") && printf '%s\n' "${out%%$'\t'*}"; }
[ "$(status_of /)" = 404 ] || fail "GET / is not 404"
[ "$(status_of /metrics/x)" = 404 ] || fail "GET /metrics/x is not 404"

# The build's version, as `pacsmesh version` prints it.
version=$("$PACSMESH" version | head -n 1)
[ "$(metric pacsmesh_build_info "version=\"${version#pacsmesh }\"")" = 1 ] ||
    fail "no pacsmesh_build_info{version=\"${version#pacsmesh }\"} 1"

# Values follow what the node does.
[ "$(metric pacsmesh_peers_up)" = 1 ] || fail "pacsmesh_peers_up is not 1"
metric_at_least pacsmesh_events_held 2 || fail "pacsmesh_events_held < 2 (genesis, admission)"
[ "$(metric pacsmesh_dicom_stores_total)" = 0 ] || fail "C-STORE counted before any"
storescu -aet METRICS_T -aec PACSMESH 127.0.0.1 "${NODE_DICOM_PORT[1]}" "$DATA" ||
    fail "storescu to node 1 failed"
findscu -S -aet METRICS_T -aec PACSMESH -k QueryRetrieveLevel=STUDY -k StudyInstanceUID \
    127.0.0.1 "${NODE_DICOM_PORT[1]}" >/dev/null 2>&1 || fail "findscu to node 1 failed"
wait_until 10 metric_at_least pacsmesh_dicom_stores_total 1
wait_until 10 metric_at_least pacsmesh_dicom_finds_total 1
wait_until 20 metric_at_least pacsmesh_events_held 3 # the announcement
log "events held $(metric pacsmesh_events_held), stores $(metric pacsmesh_dicom_stores_total)," \
    "finds $(metric pacsmesh_dicom_finds_total), blob bytes $(metric pacsmesh_blob_bytes)"

# A node whose metrics port is taken does not start, and leaves nothing running.
node_stop 2
node_set_conf 2 metrics listen "127.0.0.1:$METRICS_PORT"
rc=0
out=$(timeout 20 "$PACSMESH" run --dir "${NODE_DIR[2]}" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "node 2 started (exit $rc) with its metrics port taken: $out"
printf '%s\n' "$out" | grep -q "127.0.0.1:$METRICS_PORT" ||
    fail "the refusal does not name the metrics address: $out"
port_bindable "${NODE_DICOM_PORT[2]}" || fail "node 2's DICOM port is in use after the refusal"
log "metrics port taken: refused with: $(printf '%s\n' "$out" | grep "$METRICS_PORT" | head -n 1)"
exit 0
