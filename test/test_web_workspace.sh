#!/bin/bash
# The workspace pages in a real browser (headless Debian chromium, puppeteer-core):
# a reporter at trust A signs in, filters to urgent neuro work, claims an item, opens
# it in OHIF and reports it; a reporter at trust B sees the claim within seconds and
# cannot claim it; the coordinator's dashboard shows the backlog and a turnaround
# chart whose numbers equal `pacsmesh tat --json`; the auditor finds the reporter's
# access by patient id and exports it as CSV; a page for another role explains and
# changes nothing; names and report text holding HTML are shown as text; the pages
# carry on with a peer down. Screenshots go to test/screenshots/ in the build tree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/http_lib.sh"
wl_need_pydicom
JS=$top_srcdir/test/js
[ -x /usr/bin/chromium ] || skip "Debian's chromium is not installed (examples/install-deps.sh)"
command -v node >/dev/null || skip "node is not installed (examples/install-deps.sh)"
[ -d "$JS/node_modules/puppeteer-core" ] || skip "test/js/node_modules is missing (examples/install-deps.sh)"
[ -r "$top_srcdir/viewer/ohif/dist/index.html" ] || skip "the OHIF viewer is not installed (examples/install-deps.sh)"
SHOTS=$top_builddir/test/screenshots
mkdir -p "$SHOTS"

# ws STEP NODE USER ARGS...: one browser step; its JSON goes to $T/body.
ws()
{
    local step=$1 i=$2 user=$3
    shift 3
    timeout 240 node "$JS/workspace.js" "$step" "http://127.0.0.1:${NODE_HTTP_PORT[i]}" "$user" \
        "$user-password" "$SHOTS" "$@" >"$T/body" 2>"$T/ws.err" ||
        fail "browser step $step as $user failed: $(tail -n 5 "$T/ws.err")"
}

mesh_create 2
conf_add 1 worklist 'rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro'
conf_add 1 worklist 'rule = modality=MR : subspecialty=neuro double_read=yes'
# Due a second after it arrives: an orphan (past due, unclaimed) for the dashboard.
conf_add 1 worklist 'rule = description=LATE* : due=1s'
wl_mesh_up 1 2
HEAD1=$(new_uid) CHEST=$(new_uid) EVIL=$(new_uid) DONE=$(new_uid) LATE=$(new_uid)
import_study 1 "$T/studies" "$LATE" CR CHEST "LATE chest"
import_study 1 "$T/studies" "$HEAD1" CT HEAD "CT head" 2
import_study 1 "$T/studies" "$CHEST" CR CHEST "Chest X-ray"
import_study 1 "$T/studies" "$DONE" CR CHEST "Chest X-ray, reported"
# A study whose patient name and description are markup: shown as text everywhere.
make_study "$T/evil" "$EVIL" CT HEAD "<script>alert('desc')</script>"
"$PYDICOM_PY" - "$T/evil/$EVIL/0000.dcm" <<'EOF' || fail "cannot write the hostile study"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
ds.PatientName = "<img src=x onerror=alert(1)>"
ds.save_as(sys.argv[1], write_like_original=True)
EOF
out=$(pm 1 import "$T/evil/$EVIL" 2>&1) || fail "import of the hostile study failed: $out"
PID1=$("$PYDICOM_PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).PatientID)' "$T/studies/$HEAD1/0000.dcm")
user_add 2 rita reporter dr.rita
user_add 1 bob reporter dr.bob
user_add 1 carol coordinator
user_add 1 audrey auditor
pm 1 reporter add dr.rita --name "Dr Rita" --subspecialty neuro >/dev/null || fail "reporter add"
pm 1 reporter add dr.bob --name "Dr Bob" >/dev/null || fail "reporter add"
# One final report today, for the turnaround chart.
printf 'Chest clear.\n' >"$T/done.txt"
pm 1 claim "$DONE" --reporter dr.bob >/dev/null || fail "claim of $DONE"
pm 1 report "$DONE" --reporter dr.bob --file "$T/done.txt" >/dev/null || fail "report of $DONE"
for u in $HEAD1 $CHEST $EVIL $DONE; do wait_until 20 item_is 2 "$u" True; done

log "1. a reporter at B: sign in, urgent neuro work, claim A's study, OHIF, report"
ws reporter 2 rita "$HEAD1" "$EVIL"
cp "$T/body" "$T/reporter.json"
check()
{
    $PYTHON - "$T/body" "$@" <<'EOF' || fail "the page showed otherwise: $(head -c 1500 "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
for expr in sys.argv[2:]:
    if not eval(expr):
        sys.exit(f"not true: {expr}")
EOF
}
check "d['landed'] == '/worklist'" \
    "'priority=urgent' in d['url'] and 'subspecialty=neuro' in d['url']" \
    "'$HEAD1' in d['filtered'] and '$EVIL' in d['filtered'] and '$CHEST' not in d['filtered']" \
    "all('urgent' in c[5] for c in d['filtered_cells'])" \
    "'dr.rita' in d['claim_message'] or 'claim' in d['claim_message'].lower()" \
    "'StudyInstanceUIDs=$HEAD1' in d['viewer_url']" \
    "'nvestigational' not in d['viewer_text'] and 'Scrolling Through Images' not in d['viewer_text']" \
    "d['state_after'] == 'reported'" \
    "d['xss_cells'][0] == '<img src=x onerror=alert(1)>'" \
    "d['xss_cells'][2] == \"<script>alert('desc')</script>\"" \
    "d['xss_elements'] == 0 and d['report_elements'] == 0" \
    "'<script>alert(\"report\")</script>' in d['report_shown']"
wait_until 20 item_is 1 "$HEAD1" 'w["state"] == "reported"'
pmjson 1 reports "$HEAD1" -- 'd[0]["reporter"]' | grep -qx dr.rita || fail "the report is not dr.rita's"
log "   urgent neuro rows shown, claimed, OHIF drew it, reported; markup shown as text"

log "2. a reporter at A sees a claim made at B within seconds and cannot take it"
CLAIMED=$(new_uid)
import_study 1 "$T/studies" "$CLAIMED" CT HEAD "CT head, second"
wait_until 20 item_is 2 "$CLAIMED" True
( sleep 3; pm 2 claim "$CLAIMED" --reporter dr.rita >/dev/null ) &
ws watcher 1 bob "$CLAIMED" dr.rita
check "d['claim_button'] is False" "d['refusal']['status'] == 409" \
    "'dr.rita' in d['refusal']['body']['error']" "d['seen_after_ms'] < 30000"
log "   seen at A $(jq_body 'd["seen_after_ms"]') ms after the page opened (the claim was made 3 s in); the claim answers: $(jq_body 'd["refusal"]["body"]["error"]')"

log "   a claim lost between the list and the click: the page names the holder"
RACE=$(new_uid)
import_study 1 "$T/studies" "$RACE" CR CHEST "Chest X-ray, raced"
wait_until 20 item_is 2 "$RACE" True
ws lostclaim 1 bob "$RACE" dr.rita "http://127.0.0.1:${NODE_HTTP_PORT[2]}" rita rita-password
check "'dr.rita' in d['message']" "d['error_shown']"
log "   the page said: $(jq_body 'd["message"]')"

log "   a double read: the second reader at A reads B's report and verifies it"
MR1=$(new_uid)
import_study 1 "$T/studies" "$MR1" MR HEAD "MR head"
wait_until 20 item_is 2 "$MR1" 'w["double_read"]'
printf 'MR head: normal.\n' >"$T/mr.txt"
pm 2 claim "$MR1" --reporter dr.rita >/dev/null || fail "claim of $MR1"
pm 2 report "$MR1" --reporter dr.rita --file "$T/mr.txt" >/dev/null || fail "report of $MR1"
wait_until 20 item_is 1 "$MR1" 'w["state"] == "reported"'
ws verify 1 bob "$MR1"
check "'dr.rita' in d['previous'] and 'MR head: normal.' in d['previous']"
wait_until 20 item_is 1 "$MR1" 'w["state"] == "verified"'

log "3. the coordinator's dashboard: backlog, and turnaround equal to pacsmesh tat"
FROM=$(date -u -d '-6 days' +%Y-%m-%d) TO=$(date -u +%Y-%m-%d)
ws coordinator 1 carol "$FROM" "$TO"
cp "$T/body" "$T/dash.json"
pm 1 tat --from "$FROM" --to "$TO" --by site,priority,day --json >"$T/tat.json" || fail "tat --json failed"
$PYTHON - "$T/dash.json" "$T/tat.json" "${NODE_ID[1]}" "$CHEST" <<'EOF' || fail "the dashboard differs from pacsmesh tat"
import json, sys
d, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
site = sys.argv[3]
want = sorted((g["site"], g["priority"], g["day"], g["count"], g["median_s"], g["p90_s"]) for g in t)
got = sorted((r["site"], r["priority"], r["day"], r["count"], r["median_s"], r["p90_s"]) for r in d["table"])
pts = sorted((p["day"], p["count"], p["median_s"], p["p90_s"]) for p in d["chart"])
assert want and got == want, (got, want)
assert pts == sorted(w[2:] for w in want), (pts, want)
assert d["landed"] == "/dashboard", d["landed"]
bl = {(b["site"], b["priority"], b["subspecialty"]): b["open"] for b in d["backlog"]}
assert bl.get((site, "urgent", "neuro"), 0) >= 2 and bl.get((site, "routine", ""), 0) >= 1, bl
assert any(r[0] == "dr.rita" and r[4] == "2" and r[5] == "2" for r in d["load"]), d["load"]
assert len(d["nodes"]) == 2 and all(n[2] == "up" for n in d["nodes"]), d["nodes"]
print(len(want), "turnaround points")
EOF
log "   chart points equal tat --json; backlog per site x priority x sub-specialty shown"

wait_until 20 item_is 1 "$LATE" 'w["overdue"] and w["state"] == "unreported"'
ws assign 1 carol "$LATE" dr.bob
check "d['error'] is False and 'dr.bob' in d['message']" "d['left_orphans']"
wait_until 20 item_is_all "$LATE" 'w["claimed_by"] == "dr.bob" and w["assigned_by"] == "carol"'
log "   an orphan assigned in one click: claimed by dr.bob, assigned by carol, on both nodes"

log "4. the auditor finds the reporter's access by patient id; CSV export"
ws auditor 1 audrey "$PID1"
check "d['landed'] == '/audit'" \
    "any(e['type'] == 'study-accessed' and e['user'] == 'dr.rita' and e['study'] == '$HEAD1' for e in d['events'])" \
    "any(e['type'] == 'item-claimed' and e['user'] == 'dr.rita' for e in d['events'])" \
    "d['csv'].startswith('\"time\",\"type\",\"reporter\"') and '\"dr.rita\"' in d['csv']" \
    "len(d['csv'].strip().split('\r\n')) == len(d['events']) + 1"
log "   $(jq_body 'len(d["events"])') events for patient $PID1, study-accessed by dr.rita among them"

ws signout 1 bob
check "d['me_status'] == 401" "d['after_worklist'] == '/?next=/worklist'" "d['sign_in_shown']"
log "   signed out: the session ends (401), a page asks to sign in again"

log "5. the wrong role: the page explains and nothing changes"
before=$(pm 1 digest)
ws wrongrole 1 audrey dashboard
check "'not for your role' in d['message'] and 'auditor' in d['message']" "d['page_shown'] is False"
ws wrongrole 2 rita audit
check "'not for your role' in d['message']" "d['page_shown'] is False"
[ "$(pm 1 digest)" = "$before" ] || fail "a refused page changed the views"
http 1 POST /api/assign -u audrey:audrey-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$CHEST\",\"reporter\":\"dr.bob\"}"
expect_status 403

log "6. paging and the turnaround options, and their refusals"
pm 1 worklist --state open --json >"$T/open.json" || fail "worklist --state open"
for off in 0 2 4 6 8; do pm 1 worklist --state open --limit 2 --offset $off --json; done >"$T/pages.json"
$PYTHON - "$T/open.json" "$T/pages.json" <<'EOF' || fail "the pages do not add up to the list"
import json, sys
full = [w["study_uid"] for w in json.load(open(sys.argv[1]))]
dec, text, pages, i = json.JSONDecoder(), open(sys.argv[2]).read(), [], 0
while text[i:].strip():
    while text[i].isspace():
        i += 1
    doc, i = dec.raw_decode(text, i)
    pages += [w["study_uid"] for w in doc]
assert len(full) >= 3 and pages == full[:10], (pages, full)
EOF
# Reported items are not on the due index: the page is cut from the sorted keys.
pm 1 worklist --state reported --json >"$T/rep.json" || fail "worklist --state reported"
for off in 0 1 2; do pm 1 worklist --state reported --limit 1 --offset $off --json; done >"$T/rep-pages.json"
pm 1 worklist --limit 3 --offset 1 --json >"$T/all-page.json" || fail "a page of every item"
pm 1 worklist --json >"$T/all.json" || fail "worklist"
$PYTHON - "$T/rep.json" "$T/rep-pages.json" "$T/all.json" "$T/all-page.json" <<'EOF' || fail "pages of reported items differ from the list"
import json, sys
def docs(path):
    dec, text, out, i = json.JSONDecoder(), open(path).read(), [], 0
    while text[i:].strip():
        while text[i].isspace():
            i += 1
        doc, i = dec.raw_decode(text, i)
        out += doc
    return out
full, pages = docs(sys.argv[1]), docs(sys.argv[2])
assert len(full) >= 2 and pages == full[:3], (pages, full)
assert docs(sys.argv[4]) == docs(sys.argv[3])[1:4]
EOF
[ "$(pmjson 1 tat --by reporter -- 'sum(g["count"] for g in d if g["reporter"] == "dr.rita")')" = 2 ] ||
    fail "tat --by reporter does not count dr.rita's final reports: $(pm 1 tat --by reporter --json)"
[ "$(pmjson 1 tat --by modality --from 2000-01-01 -- 'sorted(g["modality"] for g in d)')" = "['CR', 'CT', 'MR']" ] ||
    fail "tat --by modality: $(pm 1 tat --by modality --json)"
[ "$(pmjson 1 tat --to 2000-01-01 -- 'len(d)')" = 0 ] || fail "tat --to 2000-01-01 is not empty"
expect_exit 2 "limit" pm 1 worklist --limit 0
expect_exit 2 "offset needs" pm 1 worklist --offset 3
expect_exit 2 "state" pm 1 worklist --state opened
expect_exit 2 "by" pm 1 tat --by colour
expect_exit 2 "from" pm 1 tat --from 2026-02-31
expect_exit 2 "before" pm 1 tat --from 2026-03-02 --to 2026-03-01
http 1 GET "/api/worklist?limit=many" -u bob:bob-password
expect_status 400
http 1 GET "/api/worklist?mine=true" -u carol:carol-password
expect_status 403
http 1 GET "/api/worklist?mine=true&state=claimed" -u bob:bob-password
expect_status 200
# bob holds the orphan assigned to him in step 3, and nothing of anyone else's.
[ "$(jq_body 'all(w["claimed_by"] == "dr.bob" for w in d)')" = true ] ||
    fail "mine=true shows another reporter's items"
[ "$(jq_body "[w['study_uid'] for w in d] == ['$LATE']")" = true ] ||
    fail "mine=true does not show the item assigned to bob"

http 1 GET /web/../users -u bob:bob-password
expect_status 400
http 1 GET /web/nonexistent.js
expect_status 404
# No page answers without a user: each sends the browser to sign in, and back.
for page in /worklist /dashboard /audit; do
    http 1 GET "$page" -D "$T/h"
    expect_status 302
    grep -qi "^location: /?next=$page" "$T/h" || fail "$page without a user: $(cat "$T/h")"
done
http 1 GET /worklist -D "$T/h" -u bob:bob-password
expect_status 200
grep -qi "^content-security-policy: default-src 'self'" "$T/h" || fail "the pages carry no CSP"

log "7. trust B down: the pages at A carry on, the dashboard shows B down"
node_stop 2
ws reporter-simple 1 bob
check "d['rows'] >= 4"
wait_until 30 is_down 1 "${NODE_ID[2]}"
ws coordinator 1 carol "$FROM" "$TO"
check "any(n[2] == 'DOWN' for n in d['nodes'])"
log "   screenshots in $SHOTS: $(cd "$SHOTS" && ls | tr '\n' ' ')"
log "PASS"
