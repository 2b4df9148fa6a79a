#!/bin/bash
# bench/bench_workspace.sh: the workspace pages over a large worklist (issue 12).
# Printed numbers, not a test, not run by `make check`:
#   a running node whose store holds STUDIES generated worklist items across 10 sites
#   (bench/gen_worklist: signed announcements, claims, reports, as gossip delivers
#   them); then, median over REPEAT runs:
#     GET /api/worklist?limit=51                 (the page's first request: open items)
#     GET /api/worklist?limit=51&offset=10000    (deep in the list)
#     GET /api/worklist?state=open&priority=urgent&subspecialty=neuro&limit=51
#     GET /api/backlog, GET /api/tat?from=&to=&by=site,priority,day (last 14 days)
#     the worklist page in headless Chromium: navigation until the first rows show;
#     the dashboard once (screenshots in test/screenshots/bench/ of the build tree)
#
#   cd build-dir && bash ../bench/bench_workspace.sh [STUDIES]     (default 100000)
# Environment: top_builddir (default: the current directory), REPEAT (5).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(pwd)}"
export top_builddir
export top_srcdir=${top_srcdir:-$BENCH_DIR/..}
. "$BENCH_DIR/../test/lib.sh"
. "$BENCH_DIR/../test/wl_lib.sh"
. "$BENCH_DIR/../test/http_lib.sh"
STUDIES=${1:-100000}
REPEAT=${REPEAT:-5}
GEN=$top_builddir/bench/gen_worklist
JS=$top_srcdir/test/js
[ -x "$GEN" ] || fail "no $GEN (run make in $top_builddir)"
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

mesh_create 1
node_set_conf 1 node log_level warn
t0=$(now_ms)
"$GEN" "${NODE_DIR[1]}" "$STUDIES" >"$T/gen.out" || fail "gen_worklist failed"
log "generated $(cut -d' ' -f2 "$T/gen.out") studies in $((($(now_ms) - t0) / 1000)) s; store $(du -sh "${NODE_DIR[1]}/store" | cut -f1)"
node_start 1
user_add 1 rita reporter dr.rita
user_add 1 carol coordinator
pm 1 status | grep -E '^worklist' | sed 's/^/  /'
BASE=http://127.0.0.1:${NODE_HTTP_PORT[1]}

# api LABEL PATH: median wall time of REPEAT GETs, and the answer's size.
api()
{
    local label=$1 path=$2 i times=""
    for ((i = 0; i < REPEAT; i++)); do
        times+="$(curl -sS -o "$T/out" -w '%{time_total}' -u rita:rita-password "$BASE$path" |
            awk '{printf "%d", $1 * 1000}')"$'\n'
    done
    printf '  %-64s median %6s ms  (%s items, %s bytes)\n' "$label" "$(printf '%s' "$times" | median)" \
        "$($PYTHON -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d) if isinstance(d, list) else len(d.get("groups", [])))' "$T/out")" \
        "$(wc -c <"$T/out")"
}
log "REST API over $STUDIES items (load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs)"
api "GET /api/worklist?limit=51 (first page, open items)" "/api/worklist?state=open&limit=51"
api "GET /api/worklist?limit=51&offset=10000" "/api/worklist?state=open&limit=51&offset=10000"
api "GET /api/worklist?priority=urgent&subspecialty=neuro&limit=51" "/api/worklist?state=open&priority=urgent&subspecialty=neuro&limit=51"
api "GET /api/worklist?state=reported&limit=51 (no due order: sorted whole)" "/api/worklist?state=reported&limit=51"
api "GET /api/backlog" "/api/backlog"
FROM=$(date -u -d '-13 days' +%Y-%m-%d) TO=$(date -u +%Y-%m-%d)
api "GET /api/tat?from=$FROM&to=$TO&by=site,priority,day" "/api/tat?from=$FROM&to=$TO&by=site,priority,day"
api "GET /api/tat (every final report, by site and priority)" "/api/tat"
if [ -d "$JS/node_modules/puppeteer-core" ] && [ -x /usr/bin/chromium ]; then
    SHOTS=$top_builddir/test/screenshots/bench
    out=$(timeout 300 node "$JS/workspace.js" timing "$BASE" rita rita-password "$SHOTS" 2>"$T/ws.err") ||
        fail "the browser timing failed: $(tail -n 3 "$T/ws.err")"
    printf '%s' "$out" >"$T/body"
    log "the worklist page in Chromium, navigation to first rows: runs $(jq_body 'd["runs"]') ms," \
        "median $(jq_body 'sorted(d["runs"])[2]') ms; $(jq_body 'd["range"]'), then $(jq_body 'd["second_page"]')"
    t0=$(now_ms)
    timeout 300 node "$JS/workspace.js" coordinator "$BASE" carol carol-password "$SHOTS" "$FROM" "$TO" \
        >"$T/body" 2>"$T/ws.err" || fail "the dashboard failed: $(tail -n 3 "$T/ws.err")"
    log "the dashboard in Chromium (sign-in, backlog, $(jq_body 'len(d["chart"])') turnaround points):" \
        "$(($(now_ms) - t0)) ms with the browser's start; screenshots in $SHOTS"
fi
