#!/bin/bash
# `studies` and `audit log --study/--patient/--reporter/--type` through the indexes, on one running
# node, driven through the CLI: accession exact (never a prefix match) and by wildcard,
# patient name case-insensitively by prefix, every modality of a study (CT behind OCT),
# and the audit log of one study, of one patient's two studies and of one reporter,
# equal to the full log filtered by hand.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

mesh_create 1
node_start 1
S=$T/studies
ONE=$(new_uid) TWO=$(new_uid) THREE=$(new_uid)
# make_study names the patient after the UID's last 8 digits: FOUR is TWO's patient's.
FOUR=2.25.9${TWO: -8}
import_study 1 "$S" "$ONE" OCT,CT EYE "EYE OCT AND CT"
import_study 1 "$S" "$TWO" CR CHEST "CHEST"
import_study 1 "$S" "$THREE" MR KNEE "KNEE"
acc_one=$(pmjson 1 studies -- "next(s['accession'] for s in d if s['study_uid'] == '$ONE')")
uids() { pmjson 1 studies "$@" -- '",".join(sorted(s["study_uid"] for s in d))'; }
sorted() { printf '%s\n' "$@" | sort | paste -sd,; }

log "1. accession: exact finds one study; a wildcard finds by prefix"
[ "$(uids --accession "$acc_one")" = "$ONE" ] || fail "--accession $acc_one: $(uids --accession "$acc_one")"
[ "$(uids --accession "${acc_one:0:4}")" = "" ] || fail "an accession prefix matched without a wildcard"
[ "$(uids --accession "ACC*")" = "$(sorted $ONE $TWO $THREE)" ] || fail "--accession 'ACC*'"

log "2. patient name: case-insensitive prefix"
[ "$(uids --name 'synthetic^test*')" = "$(sorted $ONE $TWO $THREE)" ] || fail "--name 'synthetic^test*'"
[ "$(uids --name 'NOBODY*')" = "" ] || fail "--name NOBODY* matched"

log "3. modality: every series counts (CT behind OCT)"
[ "$(uids --modality CT)" = "$ONE" ] || fail "--modality CT: $(uids --modality CT)"
[ "$(uids --modality 'C*')" = "$(sorted $ONE $TWO)" ] || fail "--modality 'C*'"

log "4. audit log --study: the study's own events, as the full log filtered"
study_log() { pmjson 1 audit log "$@" -- '[(e["origin"], e["seq"]) for e in d if e.get("study_uid") == "'"$TWO"'"]'; }
[ "$(study_log --study "$TWO")" = "$(study_log)" ] || fail "audit log --study differs from the filtered log"
[ "$(pmjson 1 audit log --study "$TWO" -- 'len(d)')" -ge 1 ] || fail "no events for $TWO"

log "5. audit log --patient: both studies of the patient, in the log's order, as filtered"
import_study 1 "$S" "$FOUR" CT CHEST "CHEST FOLLOW-UP"
pid=$(pmjson 1 studies -- "next(s['patient_id'] for s in d if s['study_uid'] == '$TWO')")
[ "$(uids --patient-id "$pid")" = "$(sorted $TWO $FOUR)" ] || fail "the test's two studies are not one patient's"
pm 1 reporter add dr.query --name "Query Reporter" >/dev/null || fail "reporter add failed"
out=$(pm 1 claim "$FOUR" --reporter dr.query 2>&1) || fail "claim failed: $out"
patient_log() { pmjson 1 audit log "$@" -- '[(e["origin"], e["seq"], e["type"]) for e in d if e.get("study_uid") in ("'"$TWO"'", "'"$FOUR"'")'"$TYPE_FILTER"']'; }
TYPE_FILTER=
want=$(patient_log)
[ "$(patient_log --patient "$pid")" = "$want" ] || fail "audit log --patient differs from the filtered log"
[ "$(pmjson 1 audit log --patient "$pid" -- 'len({e["study_uid"] for e in d})')" = 2 ] ||
    fail "audit log --patient does not list both studies"
[ "$(pmjson 1 audit log --patient NOBODY -- 'len(d)')" = 0 ] || fail "an unknown patient has events"
TYPE_FILTER=' and e["type"] == "study-announced"'
[ "$(patient_log --patient "$pid" --type study-announced)" = "$(patient_log)" ] ||
    fail "audit log --patient --type differs from the filtered log"
[ "$(pmjson 1 audit log --type study-announced -- 'len({e["type"] for e in d})')" = 1 ] ||
    fail "audit log --type lists other types"

log "6. audit log --reporter: the events naming the reporter, as the full log filtered"
reporter_log() { pmjson 1 audit log "$@" -- '[(e["origin"], e["seq"], e["type"]) for e in d if e.get("reporter") == "dr.query"]'; }
want=$(reporter_log)
[ "$(reporter_log --reporter dr.query)" = "$want" ] || fail "audit log --reporter differs from the filtered log"
[ "$(pmjson 1 audit log --reporter dr.query -- '",".join(sorted({e["type"] for e in d}))')" = \
    "item-claimed,reporter-registered" ] || fail "audit log --reporter lacks the claim or the registration"
[ "$(reporter_log --reporter dr.query --patient "$pid")" = "$(pmjson 1 audit log --patient "$pid" -- \
    '[(e["origin"], e["seq"], e["type"]) for e in d if e.get("reporter") == "dr.query"]')" ] ||
    fail "audit log --reporter --patient is not the patient's events naming the reporter"
pm 1 audit export --out "$T/log.pmaudit" >/dev/null || fail "audit export failed"
[ "$(reporter_log "$T/log.pmaudit" --reporter dr.query)" = "$want" ] ||
    fail "audit log FILE --reporter differs from the store's"
[ "$(pmjson 1 audit log --reporter dr.nobody -- 'len(d)')" = 0 ] || fail "an unknown reporter has events"

log "7. audit log refuses what it cannot answer, naming it"
out=$(pm 1 audit log --type no-such-type 2>&1) && fail "an unknown --type was accepted"
echo "$out" | grep -q "unknown event type 'no-such-type' (one of: genesis," || fail "unclear: $out"
out=$(pm 1 audit log --study "$TWO" --patient "$pid" 2>&1) && fail "--study with --patient was accepted"
echo "$out" | grep -q -- "--study or --patient, not both" || fail "unclear: $out"
out=$(pm 1 audit log --reporter "$(printf 'r%.0s' {1..65})" 2>&1) && fail "a 65-character --reporter was accepted"
echo "$out" | grep -q -- "--reporter is a reporter id, at most 64 characters" || fail "unclear: $out"
exit 0
