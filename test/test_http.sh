#!/bin/bash
# The web server: users, sign-in, sessions, tokens, roles; the REST API answering the
# CLI's JSON; writes under the signed-in user's reporter id; bad input refused with a
# clear 4xx while the node and its DICOM edge carry on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
. "$(dirname "$0")/http_lib.sh"
wl_need_pydicom

mesh_create 2
wl_mesh_up 1 2
UID1=$(new_uid)
import_study 1 "$T/studies" "$UID1" CT HEAD "CT head"
wait_until 20 item_is 2 "$UID1" "True"

user_add 2 alice reporter dr.alice
user_add 2 bob reporter dr.bob
user_add 2 audrey auditor
user_add 2 carol coordinator
[ "$(pmjson 2 user list -- 'len(d)')" = 4 ] || fail "user list does not show 4 users"
grep -q 'alice-password' "${NODE_DIR[2]}/users" && fail "a password is stored in clear"
[ "$(stat -c %a "${NODE_DIR[2]}/users")" = 600 ] || fail "the users file is not mode 0600"
expect_exit 2 "password" sh -c "printf 'short\n' | '$PACSMESH' user add eve --role admin --dir '${NODE_DIR[2]}'"
expect_exit 2 "role" sh -c "printf 'long-enough\n' | '$PACSMESH' user add eve --role boss --dir '${NODE_DIR[2]}'"
expect_exit 1 "exists" sh -c "printf 'long-enough\n' | '$PACSMESH' user add bob --role admin --reporter x --dir '${NODE_DIR[2]}'"

log "no user: 401 everywhere but the sign-in"
for p in /api/worklist /api/studies /api/status /dicom-web/studies /nonexistent; do
    http 2 GET "$p"
    expect_status 401
done
http 2 GET /viewer/ # a browser is sent to the sign-in page instead
expect_status 302
http 2 POST /api/claim -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 401

log "sign-in: wrong password 401, a session cookie HttpOnly SameSite=Strict"
http 2 POST /api/login -H 'Content-Type: application/json' -d '{"user":"alice","password":"nope-nope"}'
expect_status 401
http 2 POST /api/login -H 'Content-Type: application/json' -d '{"user":"nobody","password":"nope-nope"}'
expect_status 401
http 2 POST /api/login -H 'Content-Type: text/plain' -d '{"user":"alice"}'
expect_status 415
http 2 POST /api/login -H 'Content-Type: application/json' -d '{"user":'
expect_status 400
login 2 alice
grep -q 'pm_session' "$T/jar-alice" || fail "no session cookie"
http 2 POST /api/login -D "$T/headers" -H 'Content-Type: application/json' \
    -d '{"user":"alice","password":"alice-password"}'
grep -i '^set-cookie:' "$T/headers" | grep -q 'HttpOnly' || fail "the cookie is not HttpOnly"
grep -i '^set-cookie:' "$T/headers" | grep -q 'SameSite=Strict' || fail "the cookie is not SameSite=Strict"
http 2 GET /api/me -b "$T/jar-alice"
expect_status 200
[ "$(jq_body 'd["reporter"]')" = dr.alice ] || fail "/api/me: $(cat "$T/body")"

log "the REST API answers the CLI's JSON"
for what in worklist studies members tat; do
    http 2 GET "/api/$what" -b "$T/jar-alice"
    expect_status 200
    pm 2 "$what" --json >"$T/cli.json"
    same_json "$T/body" "$T/cli.json" || fail "/api/$what differs from '$what --json'"
done
pm 2 reporter add dr.alice --name "Dr Alice" >/dev/null || fail "reporter add failed"
http 2 GET /api/reporters -b "$T/jar-alice"
expect_status 200
pm 2 reporter list --json >"$T/cli.json"
same_json "$T/body" "$T/cli.json" || fail "/api/reporters differs from 'reporter list --json'"
http 2 GET /api/next -b "$T/jar-alice"
expect_status 200
pm 2 next --reporter dr.alice --json >"$T/cli.json"
same_json "$T/body" "$T/cli.json" || fail "/api/next differs from 'next --reporter dr.alice --json'"
http 2 GET /api/next -u audrey:audrey-password
expect_status 403
http 2 GET "/api/worklist?state=unreported&priority=routine" -b "$T/jar-alice"
expect_status 200
pm 2 worklist --state unreported --priority routine --json >"$T/cli.json"
same_json "$T/body" "$T/cli.json" || fail "/api/worklist?state= differs from the CLI"
http 2 GET "/api/worklist?colour=red" -b "$T/jar-alice"
expect_status 400
http 2 GET "/api/worklist?state=sideways" -b "$T/jar-alice"
expect_status 400
http 2 GET /api/status -b "$T/jar-alice"
expect_status 200
[ "$(jq_body 'd["running"]')" = true ] || fail "/api/status: $(head -c 300 "$T/body")"

log "writes: CSRF header for cookies, the reporter is the signed-in user"
http 2 POST /api/claim -b "$T/jar-alice" -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 403
http 2 POST /api/claim -b "$T/jar-alice" -H 'X-Requested-With: t' -H 'Origin: http://evil.example' \
    -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 403
http 2 POST /api/claim -b "$T/jar-alice" -H 'X-Requested-With: t' -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID1\",\"reporter\":\"dr.bob\"}"
expect_status 400
unchanged_by 2 true
http 2 POST /api/claim -b "$T/jar-alice" -H 'X-Requested-With: t' -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID1\"}"
expect_status 200
wait_until 20 item_is 1 "$UID1" "w['claimed_by'] == 'dr.alice'"
http 2 POST /api/claim -u bob:bob-password -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 409
grep -q dr.alice "$T/body" || fail "a refused claim does not name the holder: $(cat "$T/body")"
http 2 POST /api/claim -u bob:bob-password -H 'Content-Type: application/json' -d '{"study_uid":"1.2.3.999"}'
expect_status 404
http 2 POST /api/report -b "$T/jar-alice" -H 'X-Requested-With: t' -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID1\",\"text\":\"No acute abnormality.\"}"
expect_status 200
wait_until 20 item_is 1 "$UID1" "w['state'] == 'reported'"
[ "$(pmjson 1 reports "$UID1" -- 'd[0]["reporter"]')" = dr.alice ] || fail "the report is not dr.alice's"
http 2 POST /api/verify -u bob:bob-password -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 200
wait_until 20 item_is 1 "$UID1" "w['state'] == 'verified'"

log "a coordinator levels: assign (taking an item from its holder) and flag, named in the log"
UID3=$(new_uid)
import_study 1 "$T/studies" "$UID3" CR CHEST "chest"
wait_until 20 item_is 2 "$UID3" True
http 2 POST /api/claim -u bob:bob-password -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID3\"}"
expect_status 200
http 2 POST /api/assign -u alice:alice-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID3\",\"reporter\":\"dr.alice\"}"
expect_status 403 # a reporter may not assign
http 2 POST /api/assign -u carol:carol-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID3\",\"reporter\":\"dr.alice\",\"by\":\"someone\"}"
expect_status 400 # the coordinator is the signed-in user, never a field
http 2 POST /api/assign -u carol:carol-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID3\",\"reporter\":\"dr.alice\"}"
expect_status 200
wait_until 20 item_is 1 "$UID3" "w['claimed_by'] == 'dr.alice' and w['assigned_by'] == 'carol'"
http 2 POST /api/flag -u carol:carol-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID3\",\"priority\":\"high\",\"reason\":\"x\"}"
expect_status 400
http 2 POST /api/flag -u carol:carol-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID3\",\"priority\":\"immediate\",\"reason\":\"AI: suspected pneumothorax\"}"
expect_status 200
wait_until 20 item_is 1 "$UID3" "w['priority'] == 'immediate' and w['flags'][0]['by'] == 'carol'"
http 2 POST /api/assign -u carol:carol-password -H 'Content-Type: application/json' \
    -d "{\"study_uid\":\"$UID1\",\"reporter\":\"dr.bob\"}"
expect_status 409 # reported and verified: nothing to assign

log "the CLI against the node's API (COMMAND --node URL): no account on the node's host"
UID2=$(new_uid)
import_study 1 "$T/studies" "$UID2" MR KNEE "MR knee"
wait_until 20 item_is 2 "$UID2" True
URL2=http://127.0.0.1:${NODE_HTTP_PORT[2]}
remote() { PACSMESH_USER=bob PACSMESH_PASSWORD=bob-password "$PACSMESH" "$@" --node "$URL2"; }
remote worklist --json >"$T/remote.json" || fail "worklist --node failed"
pm 2 worklist --json >"$T/cli.json"
same_json "$T/remote.json" "$T/cli.json" || fail "worklist --node differs from the local CLI"
out=$(remote claim "$UID2") || fail "claim --node failed: $out"
printf '%s\n' "$out" | grep -q "claimed $UID2 for dr.bob" || fail "claim --node said: $out"
wait_until 20 item_is 1 "$UID2" "w['claimed_by'] == 'dr.bob'"
expect_exit 2 "leave out --reporter" remote claim "$UID2" --reporter dr.eve
expect_exit 1 "role coordinator" env PACSMESH_USER=carol PACSMESH_PASSWORD=carol-password \
    "$PACSMESH" release "$UID2" --node "$URL2"
expect_exit 1 "wrong user name or password" env PACSMESH_USER=bob PACSMESH_PASSWORD=nope-nope \
    "$PACSMESH" worklist --node "$URL2"
expect_exit 2 "does not take --node" "$PACSMESH" import /tmp --node "$URL2"

log "roles: 403 for the wrong one"
http 2 POST /api/claim -u audrey:audrey-password -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 403
http 2 POST /api/claim -u carol:carol-password -H 'Content-Type: application/json' -d "{\"study_uid\":\"$UID1\"}"
expect_status 403
http 2 GET "/api/audit?study=$UID1" -b "$T/jar-alice"
expect_status 403
http 2 GET /dicom-web/studies -u audrey:audrey-password
expect_status 403
http 2 GET "/api/audit?study=$UID1" -u audrey:audrey-password
expect_status 200
[ "$(jq_body "sum(1 for e in d if e['type'] == 'item-claimed' and e.get('reporter') == 'dr.alice')")" = 1 ] ||
    fail "the audit log does not show dr.alice's claim: $(head -c 600 "$T/body")"
http 2 GET "/api/audit?user=alice" -u audrey:audrey-password
expect_status 200
[ "$(jq_body "len(d) >= 2 and all(e.get('reporter') == 'dr.alice' for e in d)")" = true ] ||
    fail "/api/audit?user=alice: $(head -c 600 "$T/body")"
# An event naming the user's name (a claim made at the node's own CLI for reporter id
# "alice"): user= lists it with dr.alice's, in the log's order, as the whole log filtered.
UID4=$(new_uid)
import_study 1 "$T/studies4" "$UID4" CT HEAD "CT head"
wait_until 20 item_is 2 "$UID4" "True"
pm 2 claim "$UID4" --reporter alice >/dev/null || fail "claim for reporter id alice failed"
wait_until 20 item_is 2 "$UID4" "w['claimed_by'] == 'alice'"
# (asked again until an event logged between the two requests is in both)
audit_user_is_filtered_log()
{
    http 2 GET "/api/audit?user=alice" -u audrey:audrey-password
    [ "$HSTATUS" = 200 ] && cp "$T/body" "$T/audit-alice.json" || return 1
    http 2 GET "/api/audit" -u audrey:audrey-password
    [ "$HSTATUS" = 200 ] &&
        [ "$(jq_body "[e for e in d if e.get('reporter') in ('alice', 'dr.alice')] == json.load(open('$T/audit-alice.json'))")" = true ]
}
wait_until 20 audit_user_is_filtered_log
[ "$(jq_body "sorted({e.get('reporter') for e in json.load(open('$T/audit-alice.json'))}) == ['alice', 'dr.alice']")" = true ] ||
    fail "/api/audit?user=alice does not list events naming both alice and dr.alice"

log "tokens: issued, used, forged, expired"
http 2 POST /api/tokens -u carol:carol-password -H 'Content-Type: application/json' -d '{"expires_in": 2}'
expect_status 201
TOK=$(jq_body 'd["token"]')
http 2 GET /api/me -H "Authorization: Bearer $TOK"
expect_status 200
[ "$(jq_body 'd["user"]')" = carol ] || fail "the token is not carol's"
http 2 GET /api/me -H "Authorization: Bearer ${TOK%?}0"
[ "${TOK: -1}" = 0 ] || expect_status 401
http 2 GET /api/me -H "Authorization: Bearer not-a-token"
expect_status 401
token_expired() { http 2 GET /api/me -H "Authorization: Bearer $TOK"; [ "$HSTATUS" = 401 ]; }
wait_until 10 token_expired
http 2 POST /api/tokens -u carol:carol-password -H 'Content-Type: application/json' -d '{"expires_in": "soon"}'
expect_status 400

log "sign-in is rate limited per user"
for k in 1 2 3 4 5; do
    http 2 POST /api/login -H 'Content-Type: application/json' -d '{"user":"carol","password":"wrong-wrong"}'
    expect_status 401
done
http 2 POST /api/login -H 'Content-Type: application/json' -d '{"user":"carol","password":"carol-password"}'
expect_status 429
login 2 bob # others are not locked out

log "sign-in is rate limited per client address: 30 failures, then that address only"
for k in $(seq 1 30); do
    http 2 POST /api/login --interface 127.0.0.2 -H 'Content-Type: application/json' \
        -d "{\"user\":\"nobody$k\",\"password\":\"wrong-wrong\"}"
    expect_status 401
done
http 2 POST /api/login --interface 127.0.0.2 -H 'Content-Type: application/json' \
    -d '{"user":"bob","password":"bob-password"}'
expect_status 429
login 2 bob # from 127.0.0.1: not locked out

log "a removed user's session ends"
pm 2 user remove alice >/dev/null || fail "user remove failed"
http 2 GET /api/me -b "$T/jar-alice"
expect_status 401

log "bad input: clear 4xx, the node and its DICOM edge unaffected"
http 2 GET /viewer/../../etc/passwd -u bob:bob-password
expect_status 400
http 2 GET '/api//worklist' -u bob:bob-password
expect_status 400
head -c 3000000 /dev/zero | tr '\0' a >"$T/big"
http 2 POST /api/claim -u bob:bob-password -H 'Content-Type: application/json' --data-binary @"$T/big"
expect_status 413
http 2 GET /api/me -u bob:bob-password -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' b)"
case $HSTATUS in 413 | 431) ;; *) fail "a 40 kB header answered $HSTATUS" ;; esac
http 2 GET /api/me -H 'Authorization: Basic !!!!'
expect_status 401
http 2 GET /api/me -H 'Authorization: Digest x'
expect_status 401
http 2 DELETE /api/worklist -u bob:bob-password
expect_status 405
raw=$($PYTHON - "${NODE_HTTP_PORT[2]}" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GARBAGE\r\n\r\n")
print(s.recv(200).split(b"\r\n")[0].decode(errors="replace"))
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /api/me HTTP/9.9\r\nHost: x\r\n\r\n")
print(s.recv(200).split(b"\r\n")[0].decode(errors="replace"))
PY
)
# Malformed request lines get 400 or a closed connection; an unknown version 505.
case $raw in $'\n'*" 505 "* | *" 400 "*" 505 "*) ;; *) fail "garbage bytes answered '$raw'" ;; esac
# A slow client holds one connection; everyone else is still served.
$PYTHON - "${NODE_HTTP_PORT[2]}" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")
time.sleep(4)
PY
slow=$!
STARTED_PIDS+=("$slow")
http 2 GET /api/me -u bob:bob-password
expect_status 200
dicom_ok() { echoscu -to 5 -aet ECHO -aec PACSMESH 127.0.0.1 "${NODE_DICOM_PORT[2]}" >/dev/null 2>&1; }
if command -v echoscu >/dev/null; then dicom_ok || fail "the DICOM edge stopped answering"; fi
node_alive 2 || fail "node 2 died"
log "PASS"
