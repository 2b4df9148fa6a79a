#!/bin/bash
# Metrics by site and priority (issue 16): pacsmesh_worklist_site_items carries the
# acquiring site by member name, the priority and the state, and
# pacsmesh_turnaround_seconds is a histogram (cumulative buckets, +Inf = count, _sum)
# per site and priority, on every node (B shows A's studies under A's name).
# examples/grafana-pacsmesh.json, the dashboard, queries exactly these families.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

A=1 B=2
mesh_create 2
alloc_port
MPORT=$PORT
node_set_conf $B metrics listen "127.0.0.1:$MPORT"
conf_add $A worklist 'rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro'
wl_mesh_up
S=$T/studies
U=$(new_uid) V=$(new_uid) W=$(new_uid)
import_study $A "$S" "$U" CT HEAD "CT HEAD"
import_study $A "$S" "$V" CT HEAD "CT HEAD"
import_study $A "$S" "$W" CR CHEST "CHEST PA"
wait_until 30 item_is_all "$W" 'w["state"] == "unreported"'
printf 'synthetic report\n' >"$T/r.txt"
pm $B report "$U" --reporter dr.b --file "$T/r.txt" >/dev/null || fail "report at B failed"
wait_until 20 item_is_all "$U" 'w["state"] == "reported"'

scrape() { $PYTHON -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$MPORT"; }
# The worklist families are recounted at most every 30 s: restart B so its first scrape
# counts what is held now.
node_stop $B
node_start $B
wait_until 20 digests_equal $A $B
scrape >"$T/m.txt" || fail "scrape of B failed"
$PYTHON - "$T/m.txt" <<'PY' || fail "metrics by site: $(grep -E 'site_items|turnaround' "$T/m.txt" | head -n 30)"
import re, sys
text = open(sys.argv[1]).read()
def val(name, **labels):
    for line in text.splitlines():
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(got.get(k) == v for k, v in labels.items()) and len(got) == len(labels):
            return float(m.group(3))
    raise SystemExit(f"no sample {name} {labels}")
assert "# TYPE pacsmesh_turnaround_seconds histogram" in text
assert "# TYPE pacsmesh_worklist_site_items gauge" in text
assert val("pacsmesh_worklist_site_items", site="node1", priority="urgent", state="reported") == 1
assert val("pacsmesh_worklist_site_items", site="node1", priority="urgent", state="unreported") == 1
assert val("pacsmesh_worklist_site_items", site="node1", priority="routine", state="unreported") == 1
assert val("pacsmesh_turnaround_seconds_count", site="node1", priority="urgent") == 1
assert val("pacsmesh_turnaround_seconds_bucket", site="node1", priority="urgent", le="+Inf") == 1
assert val("pacsmesh_turnaround_seconds_bucket", site="node1", priority="urgent", le="300") == 1
assert val("pacsmesh_turnaround_seconds_count", site="node1", priority="routine") == 0
assert 0 < val("pacsmesh_turnaround_seconds_sum", site="node1", priority="urgent") < 300
PY
log "B's metrics: A's items under its name by priority and state; one urgent turnaround in the first bucket"
$PYTHON -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"]' "$(dirname "$0")/../examples/grafana-pacsmesh.json" ||
    fail "examples/grafana-pacsmesh.json is not a dashboard"
for fam in pacsmesh_worklist_site_items pacsmesh_turnaround_seconds_bucket pacsmesh_peers_up pacsmesh_fork_evidence; do
    grep -q "$fam" "$(dirname "$0")/../examples/grafana-pacsmesh.json" || fail "the dashboard does not use $fam"
    grep -q "^$fam" "$T/m.txt" || fail "the node does not serve $fam"
done
nodes_alive
echo "PASS: $TEST_NAME"
